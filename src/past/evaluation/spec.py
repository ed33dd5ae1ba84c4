"""What a score depends on, in one value: every setting that can change an answer or its grade.

The evaluate stage, skill_rl's before/after report and the flows all score through an `EvalSpec`, and
the flows' caches key on `EvalSpec.key`: change `chat` or `max_new_tokens` and every cached score is
recomputed, never reused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from past.files import sha256_json


@dataclass(frozen=True)
class EvalSpec:
    # what is asked and how it is graded: these make up the key
    prompt: str
    chat: str = "auto"
    max_new_tokens: int = 2
    metric: str = "exact_match"
    backend: str = "hf"
    judge_url: str = ""
    judge_model: str = ""
    # how the answers are computed, not what they are: outside the key
    batch_size: int = field(default=256, compare=False)
    vllm_venv: str = field(default=".venv-vllm", compare=False)
    vllm_args: tuple = field(default=(), compare=False)
    tensor_parallel_size: int = field(default=1, compare=False)  # where vLLM runs, not what it answers
    judge_cache: str = field(default="", compare=False)
    judge_concurrency: int = field(default=8, compare=False)
    judge_retries: int = field(default=3, compare=False)

    @classmethod
    def from_params(cls, params) -> "EvalSpec":
        """The spec `params.yaml` describes (top-level prompt and chat, the `evaluate:` group)."""
        ev = params.evaluate
        return cls(prompt=params.prompt, chat=params.chat, max_new_tokens=ev.max_new_tokens, metric=ev.metric,
                   backend=ev.backend, judge_url=ev.judge_url, judge_model=ev.judge_model if ev.judge_url else "",
                   batch_size=ev.batch_size, vllm_venv=ev.vllm_venv, vllm_args=tuple(str(a) for a in ev.vllm_args),
                   tensor_parallel_size=ev.tensor_parallel_size, judge_cache=ev.judge_cache,
                   judge_concurrency=ev.judge_concurrency, judge_retries=ev.judge_retries)

    @property
    def key(self) -> str:
        """Identity of the grading: equal for specs that give equal scores to the same model and questions."""
        what = {k: v for k, v in asdict(self).items() if k not in ("batch_size", "vllm_venv", "vllm_args",
                                                                   "tensor_parallel_size", "judge_cache",
                                                                   "judge_concurrency", "judge_retries")}
        return sha256_json(what)[:16]

    def judge(self):
        """The configured LLM judge, or None."""
        if not self.judge_url:
            return None
        from past.evaluation.judge import Judge

        return Judge(self.judge_url, self.judge_model, self.judge_cache or None,
                     concurrency=self.judge_concurrency, retries=self.judge_retries)
