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
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
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


RETRY_STATUS = {429, 500, 502, 503, 504}  # throttled or the server's fault; any other 4xx is ours: not retried


class Judge:
    """Grades a batch with `concurrency` requests in flight; each is retried `retries` times on a connection error,
    a timeout, HTTP 429 or 5xx (exponential backoff from `backoff` seconds with jitter; a Retry-After header wins).
    Only verdicts go into the cache, one whole line each, written by the calling thread as they arrive: a failed
    request leaves the file as it was, a crash keeps what was already judged."""

    def __init__(self, url: str, model: str, cache: str | Path | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 60.0, concurrency: int = 8, retries: int = 3, backoff: float = 1.0):
        self.url = url.rstrip("/")
        self.model = model
        self.cache_path = Path(cache) if cache else None
        self.api_key = os.environ.get(api_key_env, "")
        self.timeout = timeout
        self.concurrency, self.retries, self.backoff = concurrency, retries, backoff
        self.requests = 0  # HTTP requests sent, retries included
        self._lock = threading.Lock()
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
        return self.grade_all([prediction], [question])[0]

    def accuracy(self, predictions: list[str], questions: list[dict]) -> float:
        if not questions:
            raise ValueError("no questions to judge")
        return sum(self.grade_all(predictions, questions)) / len(questions)

    def grade_all(self, predictions: list[str], questions: list[dict]) -> list[bool]:
        """Verdicts for every (prediction, question), the uncached ones asked concurrently (each distinct pair
        once). Raises JudgeError for the first request that failed for good, after the others have finished."""
        keys = [self.key(q, p) for p, q in zip(predictions, questions)]
        todo = {}
        for key, p, q in zip(keys, predictions, questions):
            if key not in self.verdicts:
                todo.setdefault(key, (q, p))
        if todo:
            failure = None
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                futures = {pool.submit(self._verdict, q, p): (key, q) for key, (q, p) in todo.items()}
                for future in as_completed(futures):
                    key, question = futures[future]
                    try:
                        verdict = future.result()
                    except JudgeError as err:
                        failure = failure or err
                        continue
                    self._remember(key, question, verdict)
            if failure is not None:
                raise failure
        return [self.verdicts[k] for k in keys]

    def _remember(self, key: str, question: dict, verdict: bool) -> None:
        # only this (the calling) thread writes: one whole line per verdict, flushed, so a crash keeps them
        self.verdicts[key] = verdict
        if self.cache_path:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.cache_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"key": key, "question_id": question["id"], "correct": verdict}) + "\n")

    def _verdict(self, question: dict, prediction: str) -> bool:
        prompt = GRADE_TEMPLATE.format(question=question["question"], gold=" / ".join(question["answers"]),
                                       pred=prediction.strip())
        try:
            return parse_verdict(self._ask(prompt))  # a reply neither yes nor no: an error, not retried
        except JudgeError as err:
            raise JudgeError(f"judge {self.url} ({self.model}), question {question['id']}: {err}") from None

    def _ask(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": prompt}],
                           "temperature": 0, "max_tokens": 3}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(f"{self.url}/chat/completions", data=body, headers=headers)
            with self._lock:
                self.requests += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    reply = json.loads(response.read().decode("utf-8"))
                return reply["choices"][0]["message"]["content"]
            except urllib.error.HTTPError as err:  # before OSError: HTTPError is one
                if err.code not in RETRY_STATUS or attempt == self.retries:
                    raise JudgeError(f"HTTP {err.code} {err.reason} (after {attempt + 1} attempts)") from None
                wait = _retry_after(err.headers.get("Retry-After"))
            except (OSError, TimeoutError) as err:  # refused, reset, timed out
                if attempt == self.retries:
                    raise JudgeError(f"{err} (after {attempt + 1} attempts)") from None
                wait = None
            except (ValueError, KeyError, IndexError, TypeError) as err:  # a 200 that is not a chat completion
                raise JudgeError(f"unexpected reply: {err!r}") from None
            time.sleep(wait if wait is not None else self.backoff * 2 ** attempt * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds; an HTTP date is left to the backoff)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def parse_verdict(text: str) -> bool:
    word = text.strip().lower().split()[0].strip(".,;:!'\"`*") if text.strip() else ""
    if word not in ("yes", "no"):
        raise JudgeError(f"judge answered {text!r}, neither yes nor no")
    return word == "yes"
