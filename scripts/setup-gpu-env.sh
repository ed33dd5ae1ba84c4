#!/usr/bin/env bash
# The GPU training environment (default .venv-gpu): vLLM 0.31 + TRL 1.16 and every DVC stage, without Prefect.
# Usage: bash scripts/setup-gpu-env.sh [VENV]    then: source VENV/bin/activate && dvc repro
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-gpu}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -r requirements-gpu.txt
"$venv/bin/pip" install -q --no-deps -e .     # pyproject's pins include Prefect and a transformers vLLM refuses
"$venv/bin/python" -c "import vllm, trl, past; print('vllm', vllm.__version__, 'trl', trl.__version__, 'ready in $venv')"
