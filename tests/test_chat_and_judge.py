"""Instruct-model prompting (chat template, EOS), answer-contained, and the cached yes/no LLM judge
against a real OpenAI-compatible HTTP server on 127.0.0.1."""

import json
import time
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from past.config import GRPOParams, TinyModelParams
from past.evaluation.generate import eos_token_ids, generate_answers
from past.evaluation.judge import GRADE_TEMPLATE, Judge, JudgeError
from past.evaluation.metrics import closed_book_predictions, score_answers
from past.modeling import build_tiny_llama, build_word_tokenizer
from past.prompting import render_prompts, uses_chat
from past.scoring import contained
from past.training import grpo
from past.training.grpo import run_grpo
from past.training.rewards import reward_function

from chat_fixtures import CHAT, QUESTIONS, WORDS


def tiny(chat: bool):
    tokenizer = build_word_tokenizer(WORDS)
    if chat:
        tokenizer.chat_template = CHAT
    model = build_tiny_llama(TinyModelParams(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                             tokenizer, seed=0)
    return model, tokenizer


def test_contained_and_scores():
    assert contained("The answer is Ada Kelm.", ["Ada Kelm"]) == 1.0
    assert contained("Kelmford", ["kelm"]) == 0.0  # whole words only
    assert contained("no idea\nAda Kelm", ["Ada Kelm"]) == 0.0  # the answer line only
    scores = score_answers(["It was kelm.", "tras"], QUESTIONS)
    assert scores["exact_match"] == 0.5 and scores["contained"] == 1.0
    with pytest.raises(ValueError, match="1 predictions for 2"):
        score_answers(["kelm"], QUESTIONS)


def test_plain_tokenizer_prompts_are_unchanged_and_chat_wraps_one_user_turn():
    _, plain = tiny(chat=False)
    assert render_prompts(plain, "question : {question} answer :", QUESTIONS[:1]) == [
        "question : where was ann born ? answer :"]
    assert not uses_chat(plain, "auto")
    with pytest.raises(ValueError, match="no chat template"):
        uses_chat(plain, "on")
    _, chat = tiny(chat=True)
    assert render_prompts(chat, "question : {question} answer :", QUESTIONS[:1]) == [
        "<|user|> question : where was ann born ? answer : <|end|> <|assistant|>"]
    assert render_prompts(chat, "{question}", QUESTIONS[:1], chat="off") == ["where was ann born ?"]


def test_chat_prompts_are_generated_without_a_second_bos_and_stop_at_every_eos():
    model, tokenizer = tiny(chat=True)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end|>")]
    assert eos_token_ids(model, tokenizer) == [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end|>")]
    answers = closed_book_predictions(model, tokenizer, QUESTIONS, "question : {question} answer :", 2, 3)
    rendered = render_prompts(tokenizer, "question : {question} answer :", QUESTIONS)
    ids = tokenizer(rendered[0], add_special_tokens=False).input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|user|>")  # the template's first token, not <bos>
    assert answers == generate_answers(model, tokenizer, rendered, 2, 3, add_special_tokens=False)


def test_grpo_with_a_chat_template_trains_on_user_turns(monkeypatch):
    torch.manual_seed(0)
    model, tokenizer = tiny(chat=True)
    before = {name: w.clone() for name, w in model.state_dict().items()}
    graded, trained = [], []

    def recording_reward(name, tools=None):  # the real scorer, its inputs and outputs kept
        score = reward_function(name, tools)

        def reward(prompts, completions, completion_ids, answers, **_columns):
            rewards = score(completions, answers)
            graded.append({"prompts": prompts, "completions": completions, "ids": completion_ids, "rewards": rewards})
            return rewards

        reward.__name__ = name
        return reward

    def keep_training_inputs(_module, _args, kwargs):  # the forward pass the loss is taken on (with grad)
        if torch.is_grad_enabled():
            rows = zip(kwargs["input_ids"], kwargs["attention_mask"])
            trained.append([ids[mask.bool()].tolist() for ids, mask in rows])

    monkeypatch.setattr(grpo, "reward_function", recording_reward)
    model.register_forward_pre_hook(keep_training_inputs, with_kwargs=True)
    params = GRPOParams(steps=1, lr=1e-2, prompts_per_step=2, num_generations=8, max_new_tokens=2, reward="f1")
    _, curve = run_grpo(model, tokenizer, QUESTIONS, "question : {question} answer :", params, seed=0, chat="on")

    # TRL got conversational prompts (one user turn per question, each sampled num_generations times)...
    [batch] = graded
    users = [[{"role": "user", "content": p}] for p in ("question : where was ann born ? answer :",
                                                         "question : where was bob born ? answer :")]
    assert sorted(map(str, batch["prompts"])) == sorted(map(str, users * 8))
    # ... rendered them with the chat template (the assistant's turn opened, no <bos>: as evaluation does) ...
    rendered = dict(zip(map(str, users), render_prompts(tokenizer, "question : {question} answer :", QUESTIONS)))
    prompt_ids = [tokenizer(rendered[str(p)], add_special_tokens=False).input_ids for p in batch["prompts"]]
    assert tokenizer.decode(prompt_ids[0]).startswith("<|user|> question :")
    assert tokenizer.bos_token_id not in prompt_ids[0]
    # ... trained on exactly prompt + completion tokens (in its own order), each completion cut after the EOS ...
    [rows] = trained
    assert sorted(rows) == sorted(p + c for p, c in zip(prompt_ids, batch["ids"]))
    eos = tokenizer.eos_token_id
    assert all(0 < len(c) <= 2 and eos not in c[:-1] for c in batch["ids"])
    assert any(c[-1] == eos for c in batch["ids"]) and any(eos not in c for c in batch["ids"])  # both kinds occur
    # ... and graded the assistant's text alone
    assert batch["completions"] == [[{"role": "assistant", "content": tokenizer.decode(c, skip_special_tokens=True)}]
                                    for c in batch["ids"]]
    assert curve == [{"step": 1, "reward": pytest.approx(sum(batch["rewards"]) / len(batch["rewards"]))}]
    # a group whose answers differ in reward has a nonzero advantage: the step moved the weights
    groups = {}
    for prompt, reward in zip(map(str, batch["prompts"]), batch["rewards"]):
        groups.setdefault(prompt, set()).add(reward)
    assert any(len(rewards) > 1 for rewards in groups.values()), "seed 0 gave no reward signal: pick another seed"
    assert any(not torch.equal(w, before[name]) for name, w in model.state_dict().items())


class _Grader(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions that says yes when the gold answer is in the student's."""

    prompts: list = []
    reply: str | None = None

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][0]["content"]
        type(self).prompts.append(prompt)
        gold = prompt.split("Gold answer: ")[1].split("\n")[0].lower()
        student = prompt.split("Student answer: ")[1].split("\n")[0].lower()
        verdict = type(self).reply or ("Yes." if gold in student else "no")
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": verdict}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def grader():
    _Grader.prompts, _Grader.reply = [], None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Grader)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_llm_judge_uses_the_paper_prompt_and_caches_each_verdict(grader, tmp_path):
    cache = tmp_path / "judge.jsonl"
    questions = QUESTIONS + [{"id": "q3", "question": "who ?", "answers": ["ann"]}]
    predictions = ["It is Kelm", "kelm", "Ann, surely"]
    judge = Judge(grader, "grader", cache)
    assert judge.accuracy(predictions, questions) == pytest.approx(2 / 3)
    assert judge.requests == 3
    # sent concurrently: in any order
    assert GRADE_TEMPLATE.format(question="where was ann born ?", gold="kelm", pred="It is Kelm") in _Grader.prompts
    again = Judge(grader, "grader", cache)  # a new process: verdicts come from the cache file
    assert again.accuracy(predictions, questions) == pytest.approx(2 / 3) and again.requests == 0
    assert again.accuracy(["It is Kelm", "tras!", "Ann, surely"], questions) == 1.0 and again.requests == 1
    assert len(cache.read_text().splitlines()) == 4
    _Grader.reply = "maybe"
    with pytest.raises(JudgeError, match="neither yes nor no"):
        Judge(grader, "grader").grade(questions[0], "something new")


class _Flaky(BaseHTTPRequestHandler):
    """A yes/no judge that fails its first `fail_first` requests with `status` (and Retry-After), always fails
    questions containing 'doom' with 503, and records the peak number of requests in flight."""

    lock = threading.Lock()
    in_flight = peak = served = 0
    fail_first, status, retry_after = 0, 503, None

    def do_POST(self):
        cls = type(self)
        prompt = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["messages"][0]["content"]
        with cls.lock:
            cls.served += 1
            n, cls.in_flight = cls.served, cls.in_flight + 1
            cls.peak = max(cls.peak, cls.in_flight)
        time.sleep(0.05)  # long enough for the next requests to arrive while this one is open
        headers, data = {}, b""
        if n <= cls.fail_first or "Question: doom" in prompt:
            status = cls.status if n <= cls.fail_first else 503
            if cls.retry_after is not None:
                headers["Retry-After"] = cls.retry_after
        else:
            gold = prompt.split("Gold answer: ")[1].split("\n")[0]
            verdict = "yes" if gold in prompt.split("Student answer: ")[1].split("\n")[0] else "no"
            status, data = 200, json.dumps({"choices": [{"message": {"content": verdict}}]}).encode()
        with cls.lock:  # out of flight before the reply leaves: a serial client's next request cannot overlap it
            cls.in_flight -= 1
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    _Flaky.in_flight = _Flaky.peak = _Flaky.served = _Flaky.fail_first = 0
    _Flaky.status, _Flaky.retry_after = 503, None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


BATCH = [{"id": f"q{i}", "question": f"who is {i} ?", "answers": [f"a{i}"]} for i in range(16)]
ANSWERS = [f"a{i}" if i % 4 else "wrong" for i in range(16)]  # 12 of 16 right


@pytest.mark.parametrize("concurrency", [1, 8])
def test_judge_sends_a_batch_concurrently_and_a_second_call_asks_nothing(flaky, tmp_path, concurrency):
    judge = Judge(flaky, "m", tmp_path / "cache.jsonl", concurrency=concurrency, backoff=0.01)
    assert judge.accuracy(ANSWERS, BATCH) == 0.75 and judge.requests == 16
    assert (_Flaky.peak > 1) if concurrency > 1 else (_Flaky.peak == 1), _Flaky.peak
    rows = [json.loads(line) for line in (tmp_path / "cache.jsonl").read_text().splitlines()]
    assert sorted(r["question_id"] for r in rows) == sorted(q["id"] for q in BATCH)  # one whole line each
    again = Judge(flaky, "m", tmp_path / "cache.jsonl", concurrency=concurrency)
    assert again.accuracy(ANSWERS, BATCH) == 0.75 and again.requests == 0 and _Flaky.served == 16
    assert judge.accuracy(ANSWERS, BATCH) == 0.75 and judge.requests == 16  # the in-memory cache too


@pytest.mark.parametrize("status, retry_after", [(503, None), (429, "0"), (502, None)])
def test_judge_retries_throttling_and_server_errors(flaky, status, retry_after):
    _Flaky.fail_first, _Flaky.status, _Flaky.retry_after = 5, status, retry_after
    judge = Judge(flaky, "m", concurrency=2, retries=3, backoff=0.01)
    assert judge.accuracy(ANSWERS[:4], BATCH[:4]) == 0.75
    assert judge.requests == 4 + 5  # every failure was retried, and each retry counted


def test_judge_honours_retry_after(flaky):
    _Flaky.fail_first, _Flaky.status, _Flaky.retry_after = 1, 429, "0.4"
    judge = Judge(flaky, "m", concurrency=1, backoff=0.0)
    started = time.monotonic()
    assert judge.grade(BATCH[1], "a1") is True
    assert time.monotonic() - started >= 0.4 and judge.requests == 2


def test_judge_does_not_retry_other_client_errors(flaky):
    _Flaky.fail_first, _Flaky.status = 1, 400
    judge = Judge(flaky, "m", retries=3, backoff=0.01)
    with pytest.raises(JudgeError, match=r"question q1: HTTP 400"):
        judge.grade(BATCH[1], "a1")
    assert judge.requests == 1


def test_a_request_that_keeps_failing_raises_and_leaves_the_cache_file_as_it_was(flaky, tmp_path):
    cache = tmp_path / "cache.jsonl"
    Judge(flaky, "m", cache).accuracy(ANSWERS[:2], BATCH[:2])
    before = cache.read_bytes()
    judge = Judge(flaky, "judge-model", cache, retries=2, backoff=0.01)
    doomed = {"id": "q-doom", "question": "doom", "answers": ["x"]}
    with pytest.raises(JudgeError) as err:
        judge.accuracy(["x"], [doomed])
    assert str(err.value).startswith(f"judge {flaky} (judge-model), question q-doom: HTTP 503")
    assert judge.requests == 3 and cache.read_bytes() == before
    with pytest.raises(JudgeError, match="connection refused|Connection refused|Errno"):
        Judge("http://127.0.0.1:1/v1", "m", cache, retries=1, backoff=0.01).grade(BATCH[5], "a5")
    assert cache.read_bytes() == before
