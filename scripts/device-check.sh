#!/usr/bin/env bash
# The GPU check in one command, for a GPU node without network (docs/planner.md, "The device check").
#
#   scripts/device-check.sh fetch [--python 3.12]   # with network: the wheels the node lacks, into .device-wheels/
#   scripts/device-check.sh run [--tiny] [--out DIR] # on the node: install them into a folder, run gpu_check.py
#   scripts/device-check.sh list                     # the pinned requirements the wheels are
#
# The node (Python 3.12, torch 2.11 + CUDA, transformers 5.17, accelerate, peft, safetensors, numpy, pandas, pyarrow,
# pyyaml, ml-dtypes and what those need; xxhash, datasets' one other need) lacks what benchmarks/gpu_check.py imports
# beyond that: TRL, datasets (and its dill, multiprocess) and pydantic (past.config's schema). The rest of `past` it
# reaches needs nothing more, or imports it lazily (Great Expectations, DVC, DVCLive, Prefect, vLLM: gpu_check skips
# the generated world's data contracts and turns vLLM off), and `past` runs from src/ (PYTHONPATH), not installed.
# tests/test_device_check.py runs `run --tiny` on CPU with nothing but the node's packages and these wheels visible.
#
# Environment: DEVICE_WHEELS (the wheel folder, .device-wheels), DEVICE_TARGET (where `run` installs them,
# /tmp/past-device-site), PYTHON (the interpreter, python3), OUT (run's output folder when --out is not given).
set -euo pipefail
usage="usage: scripts/device-check.sh fetch [--python 3.12] | run [--tiny] [--out DIR] | list"
cd "$(dirname "$0")/.."

# pins: trl and datasets as pyproject.toml pins them; pydantic (pyproject: >=2.7,<3) and the rest as the project's
# environment has them. typing-extensions: pydantic 2.14 needs >= 4.16, newer than the node may have.
requirements=(trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pydantic==2.14.4 pydantic-core==2.50.5
              annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0)
limit_mb=40
wheels="${DEVICE_WHEELS:-.device-wheels}"
target="${DEVICE_TARGET:-/tmp/past-device-site}"
python="${PYTHON:-python3}"

die() { echo "device-check: FAILED: $*" >&2; exit 1; }
say() { echo "device-check: $*"; }

# the one wheel in $wheels for a requirement (name==version), or nothing
wheel_of() {
    local name="${1%%==*}" version="${1#*==}"
    compgen -G "$wheels/${name//-/_}-${version}-*.whl" || true
}

fetch() {
    local py=3.12
    while (($#)); do
        case "$1" in
            --python) py="${2:?--python needs a version}"; shift 2 ;;
            *) die "fetch: unknown argument $1; $usage" ;;
        esac
    done
    mkdir -p "$wheels"
    rm -f "$wheels"/*.whl  # one version of each: two would stop the install on the node
    say "downloading ${#requirements[@]} wheels for CPython $py manylinux x86_64 into $wheels/"
    for req in "${requirements[@]}"; do  # one at a time, --no-deps: exactly these, nothing pulled in
        "$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
            --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d "$wheels" "$req" \
            || die "pip download $req"
    done
    local total=0 bytes file
    for req in "${requirements[@]}"; do
        file="$(wheel_of "$req")"
        [[ -n "$file" ]] || die "no wheel for $req in $wheels/"
        bytes=$(stat -c %s "$file"); total=$((total + bytes))
        printf '  %8d KB  %s\n' $((bytes / 1024)) "$(basename "$file")"
    done
    say "total $((total / 1000000)).$(((total % 1000000) / 100000)) MB in ${#requirements[@]} wheels"
    ((total <= limit_mb * 1000000)) || die "the wheels are over ${limit_mb} MB: they travel in a 64 MiB tree"
}

run() {
    local tiny=() out="${OUT:-}"
    while (($#)); do
        case "$1" in
            --tiny) tiny=(--tiny); shift ;;
            --out) out="${2:?--out needs a folder}"; shift 2 ;;
            *) die "run: unknown argument $1; $usage" ;;
        esac
    done
    [[ -n "$out" ]] || die "no output folder: give --out DIR or set OUT; $usage"
    mkdir -p "$out"
    local files=() missing=() file
    for req in "${requirements[@]}"; do
        file="$(wheel_of "$req")"
        if [[ -n "$file" ]]; then files+=("$file"); else missing+=("$req"); fi
    done
    ((${#missing[@]} == 0)) || die "no wheel in $wheels/ for: ${missing[*]} (run 'scripts/device-check.sh fetch' where there is network)"

    say "1/3 installing ${#files[@]} wheels from $wheels/ into $target (no index, no dependencies)"
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$target" \
        --disable-pip-version-check --root-user-action=ignore "${files[@]}" || die "pip install into $target"
    export PYTHONPATH="$target:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
    export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # no network: never wait on one

    say "2/3 checking what imports from where (PYTHONPATH=$PYTHONPATH)"
    "$python" - "$target" "${#tiny[@]}" "${requirements[@]}" <<'EOF' || die "the environment is not what the check needs (above)"
import importlib, os, sys
target, tiny = os.path.realpath(sys.argv[1]), sys.argv[2] == "1"
carried = [req.split("==")[0].replace("-", "_") for req in sys.argv[3:]]  # each one's module is its name
bad = []
node = ["torch", "transformers", "accelerate", "peft", "safetensors", "tokenizers", "huggingface_hub", "numpy", "pandas",
        "pyarrow", "fsspec", "xxhash", "ml_dtypes"]
for name in carried + node + ["past.config", "past.steps", "past.training.sft", "past.training.grpo"]:
    try:
        module = importlib.import_module(name)
    except Exception as error:
        bad.append(f"{name}: {type(error).__name__}: {error}")
        continue
    where = os.path.realpath(module.__file__)
    print(f"  {name:18} {getattr(module, '__version__', ''):14} {where}")
    if name in carried and not where.startswith(target + os.sep):
        bad.append(f"{name} comes from {where}, not from the carried wheels in {target}")
try:  # what every training step does first: datasets' fingerprint pickles through dill, over pyarrow
    import datasets
    datasets.Dataset.from_dict({"text": ["a b"]})
except Exception as error:
    bad.append(f"datasets.Dataset.from_dict: {type(error).__name__}: {error}")
import torch
print(f"  cuda: {torch.cuda.is_available()}" + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""))
if not tiny and not torch.cuda.is_available():
    bad.append("no CUDA device (on a CPU use --tiny)")
if bad:
    sys.exit("  " + "\n  ".join(bad))
EOF

    say "3/3 running benchmarks/gpu_check.py ${tiny[*]} -> $out/gpu_check.json (log: $out/gpu_check.log)"
    local started=$SECONDS rc=0
    "$python" benchmarks/gpu_check.py "${tiny[@]}" --out "$out/gpu_check.json" 2>&1 | tee "$out/gpu_check.log" || rc=$?
    ((rc == 0)) || die "gpu_check.py exited $rc after $((SECONDS - started)) s (what it measured is in $out/gpu_check.json)"
    say "ok in $((SECONDS - started)) s: $out/gpu_check.json"
}

case "${1:-}" in
    fetch) shift; fetch "$@" ;;
    run) shift; run "$@" ;;
    list) printf '%s\n' "${requirements[@]}" ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
