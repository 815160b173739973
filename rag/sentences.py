"""Sentence spans in Chinese (and mixed) text, with exact offsets.

A sentence ends after 。！？；!?; (and a following closing quote or bracket) or at a
newline. Spans exclude surrounding whitespace, so ``text[s:e]`` is the sentence.
"""

from __future__ import annotations

import re

__all__ = ["sentence_spans", "ENUM_START", "insert_markers", "enum_item", "is_lead_in"]

# Sentence ends; also a comma or colon right before an enumeration opener, so the
# first item of “他要求，一是…；二是…” is a sentence of its own, like the items after it.
_END = re.compile(
    r"[。！？!?；;]+[”’」』）)\"']*|\n+"
    r"|[，,：:](?=[ \t\u3000]*(?:[一二三四五六七八九十]+是(?!否)|[一二三四五六七八九十]要"
    r"|第[一二三四五六七八九十]+[，,、：:]|[（(][一二三四五六七八九十]+[）)]))"
)
# enumeration openers that start an item of a list inside a paragraph
ENUM_START = re.compile(
    r"^(?:[一二三四五六七八九十]+是|[一二三四五六七八九十]要|第[一二三四五六七八九十]+[，,、：:是要点条句]|"
    r"[（(][一二三四五六七八九十\d]+[）)]|[一二三四五六七八九十]+、|\d+[.、．]|首先|其次|再次|最后|另一方面|一方面)"
)


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, shifted by ``offset``."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _END.finditer(text):
        end = m.end() if not m.group().startswith("\n") else m.start()
        _add(text, pos, end, offset, spans)
        pos = m.end()
    _add(text, pos, len(text), offset, spans)
    return spans


def _add(text: str, s: int, e: int, offset: int, spans: list[tuple[int, int]]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        spans.append((s + offset, e + offset))


def insert_markers(body: str, tail: str) -> str:
    """Put markers before the sentence's final punctuation: “…作用[1]。”"""
    if not tail:
        return body
    m = re.search(r"[。！？!?；;.]+[”’」』）)\"']*$", body)
    if m:
        return body[: m.start()] + tail + body[m.start() :]
    return body + tail


_CN_DIGITS = "一二三四五六七八九"
_WORD_ORDINALS = {"首先": 1, "其次": 2, "再次": 3}
_ITEM = re.compile(
    r"^(?:(?P<shi>[一二三四五六七八九十]+)是(?!否)|(?P<yao>[一二三四五六七八九十])要"
    r"|第(?P<di>[一二三四五六七八九十]+)(?=[，,、：:是要点条句])"
    r"|[（(](?P<paren>[一二三四五六七八九十]+|\d+)[）)]|(?P<dun>[一二三四五六七八九十]+)、"
    r"|(?P<arabic>\d{1,2})[.、．](?!\d)|(?P<word>首先|其次|再次))"
)
# a sentence that announces what follows: “他要求，” “提出三点意见：” “主要有以下几个方面。”
_LEAD_IN = re.compile(
    r"(?:[，,：:]|以下|如下|[一二三四五六七八九十两几]+[个项点条句方](?:面)?[^。！？；]{0,8}[。：:]?)\s*$"
)


def _cn_number(word: str) -> int:
    if word.isdigit():
        return int(word)
    tens, ten, ones = word.partition("十")
    if not ten:
        return _CN_DIGITS.find(word) + 1 if len(word) == 1 else 0
    return (_CN_DIGITS.find(tens) + 1 if tens else 1) * 10 + (
        _CN_DIGITS.find(ones) + 1 if ones else 0
    )


def enum_item(sentence: str) -> tuple[str, int] | None:
    """``(family, ordinal)`` when ``sentence`` opens an item of an enumeration
    (“二是…” → ("shi", 2), “（三）…” → ("paren", 3), “其次，…” → ("word", 2))."""
    m = _ITEM.match(sentence.lstrip())
    if not m:
        return None
    family = m.lastgroup or ""
    word = m.group(family)
    number = _WORD_ORDINALS[word] if family == "word" else _cn_number(word)
    return (family, number) if number > 0 else None


def is_lead_in(sentence: str) -> bool:
    """True for a sentence that only announces what follows (ends in a comma or colon,
    or counts the items: “提出三点要求”)."""
    return bool(_LEAD_IN.search(sentence.strip()))
