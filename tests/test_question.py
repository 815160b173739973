"""The question rules shared by the pipeline, the API and the CLI (rag/question.py)."""

from __future__ import annotations

import pytest

from rag.question import MAX_QUERY_CHARS, NO_CONTENT, check_question, check_text, shorten


@pytest.mark.parametrize(
    "text",
    ["？？？", "a", "X?", "😀", "👍🏽", "\u200b\u200b", "\u200d\ufeff", "…——!!", "2015", " \t "],
)
def test_questions_without_content_are_refused(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_question(text)
    assert str(caught.value) in (NO_CONTENT, "the question is empty")


@pytest.mark.parametrize(
    "text", ["工会", "党", "C语言", "who spoke?", "苏宁讲话主要回答了哪三个问题？", "2015年的讲话"]
)
def test_questions_with_words_pass_unchanged(text: str) -> None:
    assert check_question(text) == text


@pytest.mark.parametrize("text", ["\ud800", "工会\udcff", "\udfff?"])
def test_lone_surrogates_are_refused_with_their_position(text: str) -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        check_question(text)
    with pytest.raises(ValueError, match=r"--speaker is not valid Unicode"):
        check_text(text, "--speaker")


def test_length_limit_and_echo_shortening() -> None:
    with pytest.raises(ValueError, match=str(MAX_QUERY_CHARS)):
        check_question("工" * (MAX_QUERY_CHARS + 1))
    assert shorten("x" * 200) == "x" * 79 + "…" and shorten("short") == "short"
