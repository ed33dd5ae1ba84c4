"""`past repro`: `dvc repro` with independent stages side by side, in a real git + DVC repository.

A four-stage diamond (a -> b, c -> d) of shell commands that record when they ran and the OpenMP wait policy they
were given: b and c must overlap, d must wait for both, and the lock must be the one `dvc repro` writes. On the
PaST pipeline itself, tests/test_pipeline_killed.py compares a `past repro` run's dvc.lock with `dvc repro`'s.
"""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from past.kernels import SIDE_BY_SIDE
from past.pipeline_repo import run

# each stage records "start end OMP_WAIT_POLICY" in times/<stage>; b and c sleep long enough to overlap visibly
DVC_YAML = """
stages:
  a:
    cmd: sh record.sh a 0.2 a.txt
    deps: [record.sh]
    outs: [a.txt]
  b:
    cmd: sh record.sh b 1 b.txt a.txt
    deps: [record.sh, a.txt]
    outs: [b.txt]
  c:
    cmd: sh record.sh c 1 c.txt a.txt
    deps: [record.sh, a.txt]
    outs: [c.txt]
  d:
    cmd: sh record.sh d 0 d.txt b.txt c.txt
    deps: [record.sh, b.txt, c.txt]
    outs: [d.txt]
"""
RECORD = """set -e
name=$1; pause=$2; out=$3; shift 3
mkdir -p times
start=$(date +%s.%N)
[ "$name" = "${FAIL:-}" ] && { echo "stage $name: failing as asked" >&2; exit 3; }
sleep "$pause"
cat "$@" /dev/null > "$out"; echo "$name" >> "$out"
echo "$start $(date +%s.%N) ${OMP_WAIT_POLICY:-unset}" > "times/$name"
"""


@pytest.fixture
def diamond(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "record.sh").write_text(RECORD)
    (repo / ".gitignore").write_text("times/\n")
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    return repo


def past_repro(repo, *args, env=None):
    """`past repro ARGS` in `repo`, in an environment without the suite's OpenMP wait policy (conftest.py) plus `env`."""
    environ = {key: value for key, value in os.environ.items() if key not in SIDE_BY_SIDE}
    return subprocess.run([sys.executable, "-m", "past.cli", "repro", *args], cwd=repo, env={**environ, **(env or {})},
                          capture_output=True, text=True)


def times(repo):
    return {path.name: path.read_text().split() for path in (repo / "times").iterdir()}


def outs(repo):
    return {name: stage["outs"] for name, stage in yaml.safe_load((repo / "dvc.lock").read_text())["stages"].items()}


def test_independent_stages_run_side_by_side_and_write_what_dvc_repro_writes(diamond, tmp_path):
    sequential = shutil.copytree(diamond, tmp_path / "sequential", symlinks=True)
    result = past_repro(diamond)
    assert result.returncode == 0, result.stdout + result.stderr
    t = {name: (float(start), float(end), policy) for name, (start, end, policy) in times(diamond).items()}
    assert t["b"][0] < t["c"][1] and t["c"][0] < t["b"][1], t  # b and c overlapped
    assert t["d"][0] >= max(t["b"][1], t["c"][1]) and min(t["b"][0], t["c"][0]) >= t["a"][1], t
    # only the stages that may run beside another let idle OpenMP threads sleep
    assert {name: policy for name, (_, _, policy) in t.items()} == {"a": "unset", "b": "PASSIVE", "c": "PASSIVE",
                                                                    "d": "unset"}
    assert "past repro: done" in result.stdout and (diamond / ".dvc/tmp/repro/b.log").is_file()
    assert run(["dvc", "status", "-q"], diamond).returncode == 0
    run(["dvc", "repro"], sequential)
    assert outs(diamond) == outs(sequential)  # the same outputs, the same hashes as plain `dvc repro`
    assert (diamond / "d.txt").read_text() == "a\nb\na\nc\nd\n"
    before = times(diamond)
    again = past_repro(diamond)
    assert again.returncode == 0 and again.stdout.count("unchanged") == 4, again.stdout
    assert times(diamond) == before  # nothing reran


def test_targets_run_with_what_they_depend_on_only_and_one_job_runs_them_one_at_a_time(diamond):
    result = past_repro(diamond, "--jobs", "1", "b", "c")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 stages" in result.stdout and not (diamond / "d.txt").exists()
    t = {name: (float(start), float(end), policy) for name, (start, end, policy) in times(diamond).items()}
    assert sorted(t) == ["a", "b", "c"]
    assert t["b"][1] <= t["c"][0] or t["c"][1] <= t["b"][0], t
    assert {policy for *_, policy in t.values()} == {"unset"}  # nothing runs beside anything


def test_a_failed_stage_stops_what_depends_on_it_and_keeps_the_rest(diamond):
    result = past_repro(diamond, env={"FAIL": "c", "OMP_WAIT_POLICY": "ACTIVE"})
    assert result.returncode == 1
    assert "c                FAILED" in result.stdout and "stage 'c' failed" in result.stdout
    assert "stage c: failing as asked" in result.stdout  # the tail of its log
    assert "not run (they depend on a failed stage or came after it): d" in result.stdout
    assert not (diamond / "d.txt").exists()
    # b finished beside c and is recorded: a rerun without the fault runs c and d only
    assert set(outs(diamond)) == {"a", "b"}
    assert times(diamond)["b"][2] == "ACTIVE"  # a wait policy the user set is kept
    shutil.rmtree(diamond / "times")
    assert past_repro(diamond).returncode == 0 and sorted(times(diamond)) == ["c", "d"]


def test_keep_going_runs_what_does_not_depend_on_the_failure_and_force_reruns_everything(diamond):
    stopped = past_repro(diamond, "--jobs", "1", env={"FAIL": "b"})  # one at a time: c would start after b failed
    assert stopped.returncode == 1 and sorted(times(diamond)) == ["a"]
    assert "not run (they depend on a failed stage or came after it): c, d" in stopped.stdout
    going = past_repro(diamond, "--jobs", "1", "--keep-going", env={"FAIL": "b"})
    assert going.returncode == 1 and sorted(times(diamond)) == ["a", "c"] and "a                unchanged" in going.stdout
    assert "not run (they depend on a failed stage): d" in going.stdout
    assert past_repro(diamond).returncode == 0
    before = times(diamond)
    forced = past_repro(diamond, "--force")
    assert forced.returncode == 0 and forced.stdout.count(" done (") == 4
    assert all(times(diamond)[name] != before[name] for name in "abcd")  # every stage ran again


def test_a_target_dvc_does_not_know_is_refused_before_anything_runs(diamond):
    result = past_repro(diamond, "bb")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("past: error: ") and "'bb' not found" in result.stderr
    assert not (diamond / ".dvc/tmp/repro").exists() and not (diamond / "times").exists()
    nowhere = subprocess.run([sys.executable, "-m", "past.cli", "repro", "--root", str(diamond / "nowhere")],
                             capture_output=True, text=True)
    assert nowhere.returncode == 2 and "dvc.yaml: no such file" in nowhere.stderr
