"""An optional LLM judge through any OpenAI-compatible endpoint, with the paper's yes/no protocol.

PaST and SEAL graded closed-book SQuAD answers with GPT-4.1 and this prompt (greedy, one word back);
"yes" counts as correct. Every verdict is cached in a JSONL file keyed by the judge model, the question
and the answer being judged, so re-scoring an unchanged model costs no request, and a new model's
answers are judged once each. The key for the endpoint, if it needs one, comes from an environment
variable (never from params.yaml).
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from past.files import sha256_bytes

GRADE_TEMPLATE = (
    "You are a grading assistant. Your job is to determine whether a student's answer correctly answers the "
    "question based solely on the provided gold answer. Do not use any outside knowledge. The student answer can "
    "include additional information, but it must at least fully convey the gold answer and must not contradict it. "
    "Ignore style, phrasing, or extra details that do not affect correctness. Respond ONLY with 'yes' or 'no'.\n\n"
    "Question: {question}\nGold answer: {gold}\nStudent answer: {pred}\n"
    "Is the student answer correct based solely on the gold answer? Respond 'yes' or 'no'."
)


class JudgeError(RuntimeError):
    """The judge endpoint could not be reached or answered something that is neither yes nor no."""


class Judge:
    def __init__(self, url: str, model: str, cache: str | Path | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.model = model
        self.cache_path = Path(cache) if cache else None
        self.api_key = os.environ.get(api_key_env, "")
        self.timeout = timeout
        self.requests = 0
        self.verdicts: dict[str, bool] = {}
        if self.cache_path and self.cache_path.exists():
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.verdicts[row["key"]] = bool(row["correct"])

    def key(self, question: dict, prediction: str) -> str:
        text = json.dumps([self.model, question["id"], question["question"], question["answers"], prediction.strip()])
        return sha256_bytes(text.encode("utf-8"))

    def grade(self, question: dict, prediction: str) -> bool:
        """Whether the judge accepts `prediction` for `question` (any of its gold answers)."""
        key = self.key(question, prediction)
        if key not in self.verdicts:
            prompt = GRADE_TEMPLATE.format(question=question["question"], gold=" / ".join(question["answers"]),
                                           pred=prediction.strip())
            self.verdicts[key] = parse_verdict(self._ask(prompt))
            if self.cache_path:
                self.cache_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.cache_path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"key": key, "question_id": question["id"],
                                             "correct": self.verdicts[key]}) + "\n")
        return self.verdicts[key]

    def accuracy(self, predictions: list[str], questions: list[dict]) -> float:
        if not questions:
            raise ValueError("no questions to judge")
        return sum(self.grade(q, p) for p, q in zip(predictions, questions)) / len(questions)

    def _ask(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": prompt}],
                           "temperature": 0, "max_tokens": 3}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(f"{self.url}/chat/completions", data=body, headers=headers)
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read().decode("utf-8"))
            return reply["choices"][0]["message"]["content"]
        except (OSError, ValueError, KeyError, IndexError) as err:
            raise JudgeError(f"judge {self.url} ({self.model}): {err}") from None


def parse_verdict(text: str) -> bool:
    word = text.strip().lower().split()[0].strip(".,;:!'\"`*") if text.strip() else ""
    if word not in ("yes", "no"):
        raise JudgeError(f"judge answered {text!r}, neither yes nor no")
    return word == "yes"
