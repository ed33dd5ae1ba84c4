"""`past report`: the headline first, each change against its noise floor, the rest folded; the noise floors
benchmarks/seeds.py writes; the offline plots page and the refusals.

The report runs on a real git + DVC repository without a pipeline: dvc.yaml declares metric and plot files that
the test writes itself (a committed base, then a workspace), so every change and its noise floor are known. The
report of a real pipeline is in tests/test_pr_workflow.py (a pull request's runner restoring main's outputs from a
DVC remote, nothing changed) and tests/test_pipeline_e2e.py (a params change re-run).
"""

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from past.cli import main
from past.evaluation.metrics_diff import changes, dvc_json
from past.evaluation.noise import BEYOND, CHANGED, UNCHANGED, UNKNOWN, WITHIN, NoiseFloors, measure, \
    metric_values, table_spread, verdict
from past.pipeline_repo import ROOT, run

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@past.invalid",
                "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@past.invalid"}
DVC_YAML = """\
metrics: [metrics/eval.json, dvclive/base/metrics.json]
plots:
  - plots/lambda_sweep.csv: {x: lambda, y: exact_match}
  - plots/reward_curve.csv: {x: step, y: reward}
  - plots/cosine_per_matrix.csv: {x: cos, y: tensor}
  - dvclive/base/plots/metrics/loss.tsv: {x: step, y: loss}
  - training loss: {x: step, y: {dvclive/base/plots/metrics/loss.tsv: loss}}
"""
# The seeds of tests/params_small.yaml (its table: exact match of target SFT and PaST, the gain) as
# benchmarks/seeds.py reads them back, the noise floors `measure` makes of them: sigma 0.090 (target SFT), 0.099
# (PaST), 0.054 (gain), 0 for lambda (0.5 on every seed); nothing measured for the control
SEEDS = {0: (0.70, 0.82), 1: (0.64, 0.88), 2: (0.76, 0.96), 3: (0.56, 0.70), 4: (0.78, 0.90)}
BASE_EVAL = {"lambda": 0.5, "metric": "exact_match", "past_gain_over_target_sft": 0.12,
             "exact_match": {"target_sft": 0.70, "past": 0.82, "oracle": 0.76, "control": 0.02},
             "f1": {"target_sft": 0.70, "past": 0.82, "oracle": 0.76, "control": 0.02}}
# the workspace: PaST -0.06 (within 2 x 0.099), target SFT -0.20 (beyond 2 x 0.090), the gain +0.14 (beyond
# 2 x 0.054), oracle and lambda exactly as they were, the control +0.02 with no floor
HEAD_EVAL = {"lambda": 0.5, "metric": "exact_match", "past_gain_over_target_sft": 0.26,
             "exact_match": {"target_sft": 0.50, "past": 0.76, "oracle": 0.76, "control": 0.04},
             "f1": {"target_sft": 0.50, "past": 0.76, "oracle": 0.76, "control": 0.04}}


def seed_metrics(target_sft: float, past: float) -> dict:
    scores = {"target_sft": target_sft, "past": past, "oracle": 0.76}
    return {"metrics/eval.json": {"lambda": 0.5, "metric": "exact_match", "exact_match": scores, "f1": scores,
                                  "past_gain_over_target_sft": round(past - target_sft, 4)},
            "dvclive/base/metrics.json": {"loss": 1e-9 * (1 + past), "step": 100}}


def seed_sweep(past: float) -> list[dict]:
    return [{"lambda": str(lam), "exact_match": str(round(past * (0.9 + lam / 10), 3)), "chosen_lambda": "0.5"}
            for lam in (0.0, 0.5, 1.0)]


@pytest.fixture(scope="module")
def noise_file(tmp_path_factory) -> Path:
    floors = measure({seed: seed_metrics(*scores) for seed, scores in SEEDS.items()},
                     {seed: {"plots/lambda_sweep.csv": seed_sweep(past)} for seed, (_, past) in SEEDS.items()},
                     source="python benchmarks/seeds.py --params tests/params_small.yaml --seeds 0 1 2 3 4")
    path = tmp_path_factory.mktemp("noise") / "noise.json"
    path.write_text(json.dumps(floors, indent=2))
    return path


def write_results(repo: Path, eval_json: dict, loss: float, sweep: list[float], rewards: list[float]) -> None:
    files = {"metrics/eval.json": json.dumps(eval_json),
             "dvclive/base/metrics.json": json.dumps({"loss": loss, "step": 100}),
             "plots/lambda_sweep.csv": table(["lambda", "exact_match", "chosen_lambda"],
                                             [[lam, em, 0.5] for lam, em in zip((0.0, 0.5, 1.0), sweep)]),
             "plots/reward_curve.csv": table(["step", "reward"], [[1, rewards[0]], [2, rewards[1]]]),
             "plots/cosine_per_matrix.csv": table(["tensor", "cos"], [["lm_head.weight", 0.09]]),
             "dvclive/base/plots/metrics/loss.tsv": table(["step", "loss"], [[0, 5.7], [50, loss]], "\t")}
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)


def table(header: list[str], rows: list[list], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows([header, *rows])
    return out.getvalue()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git + DVC repository whose commit holds the base's results and whose workspace holds the head's."""
    repo = tmp_path_factory.mktemp("reported")
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    write_results(repo, BASE_EVAL, 6.985e-10, [0.70, 0.82, 0.74], [0.5, 0.6])
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "base"], repo, env=GIT_IDENTITY)
    write_results(repo, HEAD_EVAL, 3.26e-09, [0.70, 0.78, 0.74], [0.5, 0.9])
    return repo


@pytest.fixture(scope="module")
def report(repo, noise_file, tmp_path_factory) -> str:
    output = tmp_path_factory.mktemp("report") / "report.md"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        assert main(["report", "--base", "HEAD", "-o", str(output), "--noise", str(noise_file)]) == 0
    return output.read_text()


def headline_rows(report: str) -> dict[str, list[str]]:
    table = report.split("| headline |")[1].split("\n\n")[0]
    return {cells[0]: cells[1:] for cells in (
        [cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:])}


def folded(report: str, summary_start: str) -> str:
    match = re.search(rf"<details><summary>{re.escape(summary_start)}[^<]*</summary>(.*?)</details>", report, re.S)
    assert match, f"no <details> section {summary_start!r}"
    return match.group(1)


def test_the_report_leads_with_the_headline_each_change_against_its_noise(report):
    lines = report.splitlines()
    assert lines[0] == "## PaST pipeline: workspace against `HEAD`"
    assert lines[2] == ("**Headline** (`metrics/eval.json`): 2 beyond noise, 1 noise floor unknown, 1 within noise, "
                        "2 unchanged.")
    assert lines[4] == "| headline | HEAD | workspace | change | σ over seeds | vs noise |"
    rows = headline_rows(report)
    assert list(rows) == ["PaST", "target SFT", "oracle", "control (base + λ v)", "gain (PaST − target SFT)",
                          "chosen lambda"]
    assert rows["PaST"] == ["0.82", "0.76", "▼ -0.06", "0.09859", "within noise"]
    assert rows["target SFT"] == ["0.7", "0.5", "▼ -0.2", "0.09011", "**beyond noise**"]
    assert rows["oracle"][2:] == ["0", "0", "unchanged"]  # no spread over seeds, and none needed
    assert rows["control (base + λ v)"] == ["0.02", "0.04", "▲ +0.02", "?", "noise floor unknown"]
    assert rows["gain (PaST − target SFT)"] == ["0.12", "0.26", "▲ +0.14", "0.05367", "**beyond noise**"]
    assert rows["chosen lambda"] == ["0.5", "0.5", "0", "0", "unchanged"]
    assert report.index("| headline |") < report.index("<details>") < report.index("### Params")
    assert "within noise* when |change| ≤ 2σ" in report and "over seeds 0, 1, 2, 3, 4" in report
    assert "--params tests/params_small.yaml --seeds 0 1 2 3 4" in report  # where the floors come from


def test_other_metrics_and_dvclive_internals_are_folded(report):
    others = folded(report, "Other metrics: 3 changed (1 beyond noise, 1 noise floor unknown, 1 within noise)")
    assert "| `metrics/eval.json:f1.target_sft` | 0.7 | 0.5 | ▼ -0.2 | 0.09011 | **beyond noise** |" in others
    assert "| `metrics/eval.json:f1.past` | 0.82 | 0.76 | ▼ -0.06 | 0.09859 | within noise |" in others
    assert "| `metrics/eval.json:f1.control` | 0.02 | 0.04 | ▲ +0.02 | ? | noise floor unknown |" in others
    internals = folded(report, "Training internals (DVCLive): 1 changed")
    assert "| `dvclive/base/metrics.json:loss` | 6.985e-10 | 3.26e-09 |" in internals
    outside = re.sub(r"<details>.*?</details>", "", report, flags=re.S)
    assert "dvclive/" not in outside and "f1." not in outside
    assert "exact_match.past" not in report  # a headline metric is in the headline only


def test_plots_open_only_when_they_changed_beyond_noise(report, repo):
    plots = report.split("### Plots")[1].split("\n---\n")[0]
    first_fold = plots.index("<details>")
    # the reward curve has no noise floor and its data differ: shown; the cosine plot did not change: left out
    assert plots.index("![plots/reward_curve.csv](report_files/plots-reward_curve-csv.png)") < first_fold
    assert "cosine_per_matrix" not in report
    # the sweep's point at lambda 0.5 moved 0.04, within 2 x its pooled spread over seeds
    assert "![plots/lambda_sweep.csv]" in folded(report, "1 plot changed within noise")
    curves = folded(report, "DVCLive training curves: 2 changed")
    assert "![dvclive/base/plots/metrics/loss.tsv]" in curves and "![training loss]" in curves
    images = re.findall(r"\]\((report_files/[^)]+)\)", report)
    assert len(images) == 4


def test_without_a_noise_file_every_floor_is_unknown(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo)
    output = tmp_path / "report.md"
    assert main(["report", "--base", "HEAD", "-o", str(output)]) == 0  # benchmarks/results/noise.json: not here
    text = output.read_text()
    rows = headline_rows(text)
    assert rows["PaST"][3:] == ["?", "noise floor unknown"] and rows["oracle"][3:] == ["?", "unchanged"]
    assert "No `benchmarks/results/noise.json` here: noise floor unknown" in text
    plots = text.split("### Plots")[1]
    assert plots.index("![plots/lambda_sweep.csv]") < plots.index("<details>")  # no floor, its data differ: open


def test_noise_floors_name_metrics_as_the_report_does(repo):
    """The noise file's keys are the report's row names: DVC's own flattening of the same files."""
    files = {name: json.loads((repo / name).read_text()) for name in ("metrics/eval.json", "dvclive/base/metrics.json")}
    rows = {row.key for row in changes(dvc_json("metrics", "diff", "HEAD", "--all", cwd=repo))
            if isinstance(row.new, (int, float))}
    assert set(metric_values(files)) == rows


def test_measure_gives_mean_std_and_count_per_metric_and_plot_column():
    floors = measure({0: {"m.json": {"a": {"b": 1.0}, "flag": True, "name": "x", "rounds": [{"r": 1}]}},
                      1: {"m.json": {"a": {"b": 3.0}}},
                      2: {"m.json": {"a": {"b": 2.0}, "only": 5}}},
                     {0: {"p.csv": [{"x": "0", "y": "0.1"}, {"x": "1", "y": "0.5"}]},
                      1: {"p.csv": [{"x": "0", "y": "0.3"}, {"x": "1", "y": "0.5"}]}},
                     source="python benchmarks/seeds.py --seeds 0 1 2")
    assert floors["seeds"] == [0, 1, 2] and floors["source"] == "python benchmarks/seeds.py --seeds 0 1 2"
    assert floors["metrics"] == {"m.json:a.b": {"mean": 2.0, "std": 1.0, "n": 3}}  # "only": one seed is no spread
    # per row: std 0.1414 at x=0, 0 at x=1; one point's spread: the root mean square, 0.1
    assert floors["plots"]["p.csv:y"] == {"std": pytest.approx(0.1), "n": 2, "rows": 2}
    assert floors["plots"]["p.csv:x"]["std"] == 0
    assert table_spread([[{"y": "1"}], [{"y": "1"}, {"y": "2"}]]) == {}  # rows that do not pair up: no floor


def test_verdicts_at_the_edges():
    assert verdict(0.70, 0.82, 0.06) == WITHIN  # 0.12000000000000001 is 2 x 0.06
    assert verdict(0.70, 0.83, 0.06) == BEYOND
    assert verdict(0.5, 0.5, None) == UNCHANGED and verdict(0.5, 1.0, 0.0) == BEYOND
    assert verdict(0.5, 0.6, None) == UNKNOWN and verdict(None, 0.6, 0.1) == CHANGED and verdict("a", "b", 1) == CHANGED


def test_seeds_writes_the_noise_file_the_report_reads(tmp_path, monkeypatch):
    """benchmarks/seeds.py --noise: what write_noise makes of the seeds' results loads as the floors; one seed is
    refused before any run."""
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as `python benchmarks/seeds.py` has it
    spec = importlib.util.spec_from_file_location("seeds", ROOT / "benchmarks/seeds.py")
    seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeds)
    results = [{"seed": seed, "metrics": seed_metrics(*scores),
                "plots": {"plots/lambda_sweep.csv": seed_sweep(scores[1])}} for seed, scores in SEEDS.items()]
    seeds.write_noise(tmp_path / "results/noise.json", results, source="python benchmarks/seeds.py --noise x")
    floors = NoiseFloors.load(tmp_path / "results/noise.json")
    assert floors.seeds == [0, 1, 2, 3, 4] and floors.metric("metrics/eval.json:lambda") == 0
    assert floors.metric("metrics/eval.json:exact_match.target_sft") == pytest.approx(0.0901, abs=1e-4)
    assert floors.plot("plots/lambda_sweep.csv:exact_match") > 0
    refused = subprocess.run([sys.executable, str(ROOT / "benchmarks/seeds.py"), "--seeds", "0", "--noise", "n.json"],
                             cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2 and "--noise needs at least two seeds" in refused.stderr


def test_offline_template_inlines_vega_and_loads_nothing():
    template = (ROOT / ".dvc/plots/offline.html").read_text()
    assert "{plot_divs}" in template and "{scripts}" not in template  # DVC would put its CDN tags there
    assert not re.search(r"<script[^>]*\ssrc=", template) and "cdn.jsdelivr" not in template
    assert "window.vega=" in template and "window.vegaLite=" in template and "window.vegaEmbed=" in template
    assert len(template) > 500_000  # the libraries themselves, not a stub
    assert "html_template = plots/offline.html" in (ROOT / ".dvc/config").read_text()


def test_report_refuses_outside_git(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--base", "HEAD", "-o", "r.md"]) == 2
    assert "is not in a git repository" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()
