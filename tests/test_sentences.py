from __future__ import annotations

import pytest

from rag.sentences import enum_item, insert_markers, is_lead_in, sentence_spans


def test_spans_slice_back_to_sentences() -> None:
    text = "第一句。第二句！\n第三句"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["第一句。", "第二句！", "第三句"]


def test_a_list_glued_to_its_lead_in_starts_a_sentence() -> None:
    text = "他要求,一是抓好学习。二是制定措施；三是强化保障。"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "他要求,",
        "一是抓好学习。",
        "二是制定措施；",
        "三是强化保障。",
    ]


def test_a_comma_before_ordinary_words_does_not_split() -> None:
    text = "要统一思想,统一要求,是否可行。"
    assert len(sentence_spans(text)) == 1


@pytest.mark.parametrize(
    ("sentence", "item"),
    [
        ("二是制定落实措施。", ("shi", 2)),
        ("十一是加强领导。", ("shi", 11)),
        ("三要引领风气之先。", ("yao", 3)),
        ("第四,加强作风建设。", ("di", 4)),
        ("（二）加强领导", ("paren", 2)),
        ("三、改进作风", ("dun", 3)),
        ("2. 落实责任", ("arabic", 2)),
        ("其次,要改进作风。", ("word", 2)),
        ("是否可行。", None),
        ("统一思想。", None),
    ],
)
def test_enum_item(sentence: str, item: tuple[str, int] | None) -> None:
    assert enum_item(sentence) == item


@pytest.mark.parametrize(
    ("sentence", "lead"),
    [
        ("他要求,", True),
        ("提供保障:", True),
        ("我讲三点意见。", True),
        ("主要有以下几个方面。", True),
        ("政治性是群团组织的灵魂。", False),
    ],
)
def test_is_lead_in(sentence: str, lead: bool) -> None:
    assert is_lead_in(sentence) is lead


def test_markers_go_before_the_final_punctuation() -> None:
    assert insert_markers("作用很大。", "[1]") == "作用很大[1]。"
    assert insert_markers("他要求,", "[2]") == "他要求,[2]"
