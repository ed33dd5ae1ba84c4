"""The pull-request workflow's pipeline half, for real: the very script .github/workflows/pr-report.yml runs
(scripts/ci-dvc.sh) with a DVC remote in a local folder, real git and real DVC.

main is reproduced once (no remote yet: the script says every stage is retrained) and pushed; a pull request's
runner, a fresh `git clone` whose only change is README.md, then restores every stage from the remote and trains
none, and `past report` against main shows no change. The smallest params (tests/pipeline_params.py: every stage,
two refinement rounds): the machinery, not the headline.
"""

from pathlib import Path

import pytest
import yaml

from past.files import sha256_file
from past.pipeline_repo import ROOT, make_pipeline_repo, run
from pipeline_params import MINIMAL

pytestmark = pytest.mark.e2e
SCRIPT = ROOT / "scripts/ci-dvc.sh"
TINY = {**MINIMAL, "evaluate": {"lambdas": [0.0, 0.5, 1.0]}}  # a sweep: the report compares its plot
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@past.invalid",
                "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@past.invalid"}


def ci(step: str, repo: Path):
    return run(["bash", str(SCRIPT), step], repo)


def weights(repo: Path) -> dict[str, str]:
    return {str(path.relative_to(repo)): sha256_file(path) for path in sorted(repo.glob("models/**/*.safetensors"))}


@pytest.fixture(scope="module")
def main_branch(tmp_path_factory):
    """main after its first run and the push job: results committed, the remote declared and filled."""
    repo = make_pipeline_repo(tmp_path_factory.mktemp("main"), TINY)
    first = ci("restore", repo)
    assert "no default DVC remote: every stage is retrained" in first.stderr
    assert first.stdout.count("Running stage") == len(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
    remote = tmp_path_factory.mktemp("remote")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "results"], repo)
    run(["dvc", "remote", "add", "-d", "local", str(remote)], repo)
    run(["git", "commit", "-qm", "the team's DVC remote", ".dvc/config"], repo)
    ci("push", repo)
    assert any(remote.rglob("*")), "nothing pushed"
    return repo


def test_a_pull_request_that_changes_no_stage_restores_them_all_and_reports_no_change(main_branch, tmp_path):
    clone = tmp_path / "pr"
    run(["git", "clone", "-q", str(main_branch), str(clone)], tmp_path)
    (clone / "README.md").write_text("A pull request that changes only the README.\n")
    run(["git", "add", "README.md"], clone)
    run(["git", "commit", "-qm", "README"], clone, env=GIT_IDENTITY)

    restored = ci("restore", clone)
    assert "DVC remote 'local': fetched what it holds of dvc.lock's outputs" in restored.stdout
    assert "Running stage" not in restored.stdout, restored.stdout
    stages = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]
    assert all(f"Stage '{stage}' didn't change, skipping" in restored.stdout for stage in stages)
    assert weights(clone) == weights(main_branch) and weights(clone)  # main's weights, byte for byte
    assert run(["git", "status", "--porcelain"], clone).stdout == ""  # dvc.lock, metrics and plots as committed

    base = run(["git", "rev-parse", "HEAD~1"], clone).stdout.strip()
    run(["past", "report", "--base", base, "-o", str(tmp_path / "report.md")], clone)
    report = (tmp_path / "report.md").read_text()
    assert "**Headline** (`metrics/eval.json`): 6 unchanged." in report
    assert report.count(" | unchanged |") == 6 and "beyond noise**" not in report
    assert "No other metric changed." in report and "No param changed." in report and "No plot changed." in report
