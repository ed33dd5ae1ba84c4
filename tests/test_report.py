"""`past report` for real: a temporary git + DVC repository, `dvc repro`, a commit, `inject.lam` changed and
`dvc repro` again; the report against the commit names the param and the metrics that changed, with both
values and the delta, and its PNGs (dvc.yaml's plots through vl-convert) exist. Also: the offline plots page.

Tiny params (the models learn little; what changes with lambda is checked, not how good they are): ~90 s.
"""

import io
import re
from pathlib import Path

import pytest
import yaml
from PIL import Image

from past.cli import main
from past.pipeline_repo import ROOT, make_pipeline_repo, run

pytestmark = pytest.mark.e2e
TINY = {
    "seed": 0, "threads": 1,
    "prepare": {"world": {"p0_people": 40, "source_people": 12, "target_oracle_people": 6, "target_eval_people": 6,
                          "renders_per_person": 8}},
    "base": {"steps": 60, "batch_size": 16},
    "source_sft": {"steps": 20, "batch_size": 16},
    "skill_rl": {"rounds": 1, "grpo": {"steps": 2, "prompts_per_step": 4, "num_generations": 4}},
    "target_sft": {"steps": 10, "batch_size": 16},
    "oracle": {"grpo": {"steps": 2, "prompts_per_step": 4, "num_generations": 4}},
    "evaluate": {"lambdas": [0.0, 0.5, 1.0]},
    "inject": {"lam": 0.5},
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    folder = make_pipeline_repo(tmp_path_factory.mktemp("report"), TINY)
    run(["dvc", "repro"], folder)
    run(["git", "add", "-A"], folder)
    run(["git", "commit", "-qm", "results at lambda 0.5"], folder)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["inject"]["lam"] = 1.0  # a number, not null (chosen automatically): the diff is known in advance
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro"], folder)
    return folder


@pytest.fixture(scope="module")
def report(repo, tmp_path_factory):
    output = tmp_path_factory.mktemp("out") / "report.md"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        assert main(["report", "--base", "HEAD", "-o", str(output)]) == 0
    return output


def test_report_names_the_changed_param_and_metrics_with_both_values_and_the_delta(report):
    text = report.read_text()
    assert "| `params.yaml:inject.lam` | 0.5 | 1 | ▲ +0.5 |" in text
    assert "| `metrics/eval.json:lambda` | 0.5 | 1 | ▲ +0.5 |" in text
    # every other metric row is a real change (dvc's diff without --all), with its arrow
    rows = [line for line in text.splitlines() if line.startswith("| `metrics/")]
    assert rows and all(re.search(r"\| [▲▼] [+-]\S+ \|$", row) for row in rows), rows
    assert "params.yaml:seed" not in text  # unchanged params are not listed


def test_report_images_are_the_changed_plots_as_pngs(report):
    images = re.findall(r"!\[([^\]]+)\]\(([^)]+)\)", report.read_text())
    names = [name for name, _ in images]
    # the sweep's chosen_lambda column moved; the reward curve (skill_rl did not rerun) did not
    assert "plots/lambda_sweep.csv" in names and "plots/reward_curve.csv" not in names
    for _, relative in images:
        assert not Path(relative).is_absolute() and relative.startswith("report_files/")
        data = (report.parent / relative).read_bytes()
        assert data[:8] == PNG and len(data) > 10_000
        image = Image.open(io.BytesIO(data)).convert("RGB")
        assert image.width > 300 and image.height > 300
        assert len(image.getcolors(1 << 24)) > 20  # drawn: axes, text, coloured lines, not a blank canvas


def test_plots_show_writes_the_offline_page(repo):
    run(["dvc", "plots", "show", "plots/lambda_sweep.csv", "-o", "page"], repo)
    page = (repo / "page/index.html").read_text()
    assert "vegaEmbed(" in page and "window.vegaEmbed=" in page  # DVC's plot div, and the inlined library
    assert not re.search(r"<script[^>]*\ssrc=", page)


def test_offline_template_inlines_vega_and_loads_nothing():
    template = (ROOT / ".dvc/plots/offline.html").read_text()
    assert "{plot_divs}" in template and "{scripts}" not in template  # DVC would put its CDN tags there
    assert not re.search(r"<script[^>]*\ssrc=", template) and "cdn.jsdelivr" not in template
    assert "window.vega=" in template and "window.vegaLite=" in template and "window.vegaEmbed=" in template
    assert len(template) > 500_000  # the libraries themselves, not a stub
    assert "html_template = plots/offline.html" in (ROOT / ".dvc/config").read_text()


def test_report_refuses_outside_git_and_an_unknown_base(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--base", "HEAD", "-o", "r.md"]) == 2
    assert "is not in a git repository" in capsys.readouterr().err
    monkeypatch.chdir(repo)
    assert main(["report", "--base", "no-such-branch", "-o", str(tmp_path / "r.md")]) == 2
    assert "unknown base revision 'no-such-branch'" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()
