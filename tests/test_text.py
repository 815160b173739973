"""zh.text: the one home of the text rules, and every consumer agreeing with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import prompts
from rag import chunk, cite, sentences
from rag.answer import budget
from zh.text import (
    REFUSALS,
    byline,
    cn_number,
    count_tokens,
    has_han,
    insert_markers,
    is_chinese,
    ordinal_value,
    question_language,
    refusal_for,
    sentence_spans,
    sentence_starts,
)

CORPUS = Path(__file__).resolve().parent.parent / "rag" / "corpus"


def _corpus_pieces() -> list[str]:
    """Sentences and half-sentences of the bundled speeches, the material generated
    texts are built from (so the property runs over real punctuation habits)."""
    pieces: list[str] = []
    for path in sorted(CORPUS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        for s, e in sentence_spans(text):
            sentence = text[s:e]
            pieces += [sentence, sentence[: len(sentence) // 2]]
    return sorted(set(pieces))[:4000]


_PIECES = _corpus_pieces()
# the characters where the old copies of the rule disagreed
_TRICKY = ["。", "！", "？", "!", "?", "；", ";", "…", "……", ".", ". ", "3.5", "”", "）", "“",
           "，", "：", "，一是", "，二要", "：第三，", "，（四）", "\n", "\n\n", " ", "\u3000",
           "一是", "最后，", "A", "Dr. Li", "十十是"]  # fmt: skip
texts = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.sampled_from(_TRICKY), st.text("甲乙丙丁", max_size=3)),
    max_size=25,
).map("".join)


def _pieces(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *cuts, len(text)]
    return [
        text[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False) if text[a:b].strip()
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
@example("甲乙……丙丁；戊己。庚")  # the prompt budget used to cut after … and not after ；
@example("他说。Dr. Li came. 好")  # the chunker used to cut after an ASCII full stop
@example("他要求，一是抓好学习。二是制定措施。")  # ... and not before “一是”
def test_every_consumer_splits_sentences_the_same_way(text: str) -> None:
    want = [text[s:e] for s, e in sentence_spans(text)]
    # the modules that import the rule use the very same function
    assert sentences.sentence_spans is sentence_spans
    assert cite.sentence_spans is sentence_spans
    # the prompt budget cuts passages at sentence starts
    assert _pieces(text, budget.sentence_cuts(text)) == want
    assert budget.sentence_cuts(text) == sentence_starts(text)
    # the chunker's units, under a budget every sentence fits, are the sentences
    units = chunk._units(text, 0, len(text), 10**6, lambda a, b: count_tokens(text[a:b]))
    assert [text[a:b].strip() for a, b in units if text[a:b].strip()] == want
    # a citation marker goes inside the sentence it belongs to
    for sentence in want:
        marked = insert_markers(sentence, "[1]")
        assert [marked[s:e] for s, e in sentence_spans(marked)] == [marked]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("一", 1), ("九", 9), ("十", 10), ("十一", 11), ("二十", 20), ("九十九", 99), ("12", 12),
        ("十十", 0), ("二十三四", 0), ("一二", 0), ("最后", 0), ("", 0), ("〇", 0),
    ],
)  # fmt: skip
def test_cn_number(text: str, number: int) -> None:
    assert cn_number(text) == number


def test_cn_number_reads_years_digit_by_digit_only_when_asked() -> None:
    assert cn_number("二〇一五", positional=True) == 2015
    assert cn_number("十二", positional=True) == 12
    assert cn_number("二〇一五") == 0


def test_word_ordinals_and_last() -> None:
    assert [ordinal_value(w) for w in ("首先", "其次", "再次", "三")] == [1, 2, 3, 3]
    assert ordinal_value("最后") == 0  # closes a series wherever it comes: no number


def test_malformed_numeral_opens_no_item() -> None:
    assert sentences.enum_item("十十是加强领导。") is None
    assert sentences.enum_item("十二是加强领导。") == ("shi", 12)


def test_language_rules() -> None:
    # an English question quoting a Chinese term is English (its quotes keep their script)
    assert question_language("What is 群团 about?") == "en"
    assert question_language("群团是什么?") == "zh-hans"
    assert question_language("群團組織的靈魂是什麼？") == "zh-hant"
    assert question_language("What is the soul of mass organisations?") == "en"
    assert is_chinese("十四五 plan") and not is_chinese("the 14th Five-Year Plan (十四五)")
    assert has_han("a群") and not has_han("abc")


def test_refusals_have_one_home() -> None:
    assert prompts.REFUSALS is REFUSALS
    assert refusal_for("en") == REFUSALS["en"] and refusal_for("xx") == REFUSALS["zh-hans"]
    assert prompts.is_refusal(REFUSALS["zh-hant"])


def test_byline_leaves_out_empty_parts() -> None:
    assert byline("标题", "张三", "2015-01-01", "一、总体") == "《标题》 张三 2015-01-01 · 一、总体"
    assert byline("标题") == "《标题》"
    assert byline("", "", "", "开头") == "开头"
    assert byline("") == ""


def test_token_counting_is_one_function() -> None:
    assert chunk.count_tokens is count_tokens
    assert count_tokens("") == 0 and count_tokens("<|endoftext|>") > 1
