"""How questions become prompts, and QA pairs become training text."""

from __future__ import annotations


def question_prompt(template: str, question: dict) -> str:
    return template.format(question=question["question"])


def qa_text(template: str, question: dict) -> str:
    """A worked question/answer pair, as seen in pre-training (it gives the base its QA ability)."""
    return f"{question_prompt(template, question)} {question['answers'][0]}"
