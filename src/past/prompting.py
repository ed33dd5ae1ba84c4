"""How questions become prompts, and QA pairs become training text."""

from __future__ import annotations


def question_prompt(template: str, question: dict) -> str:
    return template.format(question=question["question"])


def qa_text(template: str, question: dict) -> str:
    """A worked question/answer pair, as seen in pre-training (it gives the base its QA ability)."""
    return f"{question_prompt(template, question)} {question['answers'][0]}"


def uses_chat(tokenizer, chat: str = "auto") -> bool:
    """Whether prompts go through the tokenizer's chat template (`chat`: auto, on or off)."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat == "on" and not has_template:
        raise ValueError("chat: on, but the tokenizer has no chat template")
    return has_template and chat != "off"


def render_prompts(tokenizer, template: str, questions: list[dict], chat: str = "auto") -> list[str]:
    """The model-ready prompt of each question: the template filled in, then, for an instruct model,
    wrapped as one user turn with the assistant's turn opened (so the answer ends with the tokenizer's
    EOS, e.g. <|im_end|>). The text already holds the template's special tokens: tokenize it with
    `add_special_tokens=False`."""
    prompts = [question_prompt(template, q) for q in questions]
    if not uses_chat(tokenizer, chat):
        return prompts
    return [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                          add_generation_prompt=True) for p in prompts]
