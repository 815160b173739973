"""rag.intent: what a question asks for, in simplified, traditional and English wording."""

from __future__ import annotations

import pytest

from rag.intent import (
    asked_count,
    asks_across,
    asks_cross_doc,
    asks_date,
    asks_header,
    asks_list,
    asks_meeting,
    asks_person,
)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("这次讲话是哪一天发表的？", True),
        ("座谈会是什么时候召开的？", True),
        ("這次講話是哪一天發表的？", True),  # traditional script
        ("When was the speech given?", True),
        ("群团组织的灵魂是什么？", False),
    ],
)
def test_asks_date(question: str, expected: bool) -> None:
    assert asks_date(question) is expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("这篇讲话是谁作的？", True),
        ("是哪位领导提出的？", True),
        ("Who gave the speech?", True),
        ("工会的职责是什么？", False),
    ],
)
def test_asks_person(question: str, expected: bool) -> None:
    assert asks_person(question) is expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("讲话是在什么会上发表的？", True),
        ("在哪次會議上講的？", True),
        ("At which meeting was it given?", True),
        ("社会组织有哪些作用？", False),  # 社会 is no meeting
    ],
)
def test_asks_meeting(question: str, expected: bool) -> None:
    assert asks_meeting(question) is expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("讲话人担任什么职务？", True),
        ("这是谁的讲话？", True),
        ("What position does the speaker hold?", True),
        ("讲话提出了哪些要求？", False),
    ],
)
def test_asks_header(question: str, expected: bool) -> None:
    assert asks_header(question) is expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("讲话提出了哪些要求？", True),
        ("苏宁讲话主要回答了哪三个问题？", True),
        ("有几点意见？", True),
        ("提出了什么措施？", True),
        ("What are the three tasks?", True),
        ("群团组织的灵魂是什么？", False),
    ],
)
def test_asks_list(question: str, expected: bool) -> None:
    assert asks_list(question) is expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("哪些讲话提到了志愿服务？", True),
        ("哪两篇讲话谈到了工会？", True),
        ("這些講話都提到了什麼？", True),
        ("Which speeches mention volunteers?", True),
        ("讲话提出了哪些要求？", False),  # a list from one speech
    ],
)
def test_asks_cross_doc(question: str, expected: bool) -> None:
    assert asks_cross_doc(question) is expected


def test_asks_across_by_wording_or_by_two_named_speakers() -> None:
    speakers = ["苏宁", "王东明", "", "苏宁"]
    assert asks_across("哪些讲话提到了志愿服务？", [])
    assert asks_across("苏宁和王东明都谈到了什么？", speakers)
    assert asks_across("蘇寧和王東明都談到了什麼？", speakers)  # traditional script
    assert not asks_across("苏宁谈到了什么？", speakers)  # one speaker, named twice in the list
    assert not asks_across("工会有什么作用？", speakers)  # the empty name matches nothing


@pytest.mark.parametrize(
    ("question", "count"),
    [
        ("要把握哪五个方面的重点？", 5),
        ("提了哪两点要求？", 2),
        ("Which three projects?", 3),
        ("有哪些问题？", 0),
    ],
)
def test_the_count_a_question_asks_for(question: str, count: int) -> None:
    assert asked_count(question) == count
