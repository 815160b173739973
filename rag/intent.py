"""What a question asks for, read from its wording: a date, a person, a meeting, a
list, or a comparison across speeches. Retrieval and the extractive backend both
steer by these; the patterns live here once so the two agree.

Each function takes the question as typed (simplified, traditional or English).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from zh.script import normalize_for_match, to_simplified
from zh.text import cn_number

__all__ = [
    "asks_date",
    "asks_person",
    "asks_meeting",
    "asks_header",
    "asks_list",
    "asks_cross_doc",
    "asks_across",
    "asked_count",
]

_DATE = re.compile(
    r"哪一?天|哪年|哪一年|什么时候|何时|日期|时间|几月几日|when|what date|which year|which day",
    re.I,
)
_PERSON = re.compile(r"谁|哪位|什么人|who|whom", re.I)
_MEETING = re.compile(r"什么会|哪个会|哪次会|会议|座谈会|occasion|meeting|event", re.I)
# questions answered by a speech's header (title, dated line, speaker's post)
_HEADER = re.compile(
    r"什么会议|哪个会议|哪次会议|什么会上|在什么场合|什么形式的会|职务|职位|身份|担任|"
    r"谁(的|作|发表|讲)|哪位|who\b|what (post|position|meeting)|at which meeting",
    re.I,
)
_LIST = re.compile(
    r"哪些|哪几|哪[一二三四五六两七八九十\d]+[个项点条方句]|几[个项点条方]|什么[措施要求任务问题方面]|"
    r"分别|有哪|列举|what are|which (?:two|three|four|five|six|seven|eight|nine|ten|several)\b|"
    r"\blist\b|\bname the\b",
    re.I,
)
# “哪些讲话…”, “哪两篇讲话…”: the answer comes from several speeches (a question naming
# two speakers is recognised by the retriever, which knows the speakers)
_CROSS_DOC = re.compile(
    r"哪些(讲话|领导|人)|哪[几两三四五]篇|几篇|各篇|[两三四五几]篇讲话|这些讲话|都提到|"
    r"which speeches|which speakers|both speeches|each speech",
    re.I,
)


def _s(question: str) -> str:
    return to_simplified(question)


def asks_date(question: str) -> bool:
    return bool(_DATE.search(_s(question)))


def asks_person(question: str) -> bool:
    return bool(_PERSON.search(_s(question)))


def asks_meeting(question: str) -> bool:
    return bool(_MEETING.search(_s(question)))


def asks_header(question: str) -> bool:
    return bool(_HEADER.search(_s(question)))


def asks_list(question: str) -> bool:
    return bool(_LIST.search(_s(question)))


_COUNT_ASKED = re.compile(
    r"哪([一二三四五六七八九十两]|\d{1,2})[个项点条方句大种类]|which (two|three|four|five|six|seven|eight|nine|ten)\b",
    re.I,
)
_EN_COUNTS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}


def asked_count(question: str) -> int:
    """How many items the question asks for (“哪五个方面” → 5, “which three” → 3), or 0."""
    m = _COUNT_ASKED.search(_s(question))
    if not m:
        return 0
    word = m.group(1) or m.group(2)
    if word.isdigit():
        return int(word)
    if word.lower() in _EN_COUNTS:
        return _EN_COUNTS[word.lower()]
    return 2 if word == "两" else cn_number(word)


def asks_cross_doc(question: str) -> bool:
    return bool(_CROSS_DOC.search(_s(question)))


def asks_across(question: str, speakers: Iterable[str]) -> bool:
    """Whether the question wants answers from several speeches: it says so (“哪些讲话”)
    or names two of the ``speakers``."""
    if asks_cross_doc(question):
        return True
    q = normalize_for_match(question)
    named = {normalize_for_match(sp) for sp in speakers}
    return sum(1 for sp in named if len(sp) >= 2 and sp in q) >= 2
