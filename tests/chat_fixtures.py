"""A chat template and a tiny closed world of words for instruct-model tests."""

CHAT = ("{% for m in messages %}<|user|> {{ m['content'] }} <|end|> {% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")
WORDS = "question answer : ? where was ann bob born kelm tras <|user|> <|assistant|> <|end|>".split()
QUESTIONS = [{"id": "q1", "question": "where was ann born ?", "answers": ["kelm"]},
             {"id": "q2", "question": "where was bob born ?", "answers": ["tras"]}]
