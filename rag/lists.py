"""Enumerations in a whole speech: from one sentence to every item of its list.

A list question (“提出了哪四点要求？”) is answered by the items of one enumeration, in
order. The items often lie far apart — each followed by paragraphs of explanation, in
later chunks, or under section headings — so they are found in the document's text, not
only inside the retrieved passages:

- from an item (“三要…”) back to its first item and on to its last, over any number of
  follow-on sentences, while the ordinals of the same family run on (一是, 二是, 三是…)
  and no heading of a higher level intervenes;
- from a sentence that announces a list (“提出三点要求：”, “…取得更大成效。” followed by
  “一是…”) to the first item after it;
- from a sentence that opens a run of clauses after a colon (“具体表现在:A；B；C。”) to
  the clauses of that paragraph.

How many items are wanted is read from the question or the lead-in (“四点”, “五个方面”,
the numerals packed in a slogan such as “两加强两坚持”); it stops a list early and lets a
caller prefer the candidate list whose length matches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.script import to_simplified
from rag.sentences import enum_item, is_lead_in, sentence_spans

__all__ = ["Enumeration", "expected_count", "find_enumeration", "doc_sentences", "inline_count"]

# heading level of each ordinal family: a heading of a lower number ends a list of a
# higher one (“二、…” ends the “一是/二是” items inside section “一、”)
FAMILY_LEVEL = {"dun": 0, "paren": 1, "arabic": 2, "di": 2, "shi": 3, "yao": 3, "word": 3}
LOOKAHEAD = 3  # sentences after an announcing sentence in which item one may start
MAX_GAP_CHARS = 1500  # follow-on text allowed between two items of an inner list
MAX_ITEMS = 12

_NUM = "一二三四五六七八九十两"
_NUM_VALUE = {c: i for i, c in enumerate("一二三四五六七八九十", start=1)} | {"两": 2}
_EN_NUM = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
# “哪四点”, “四个方面”, “三句话”, “五项”, “六个方面的关系”
_COUNT = re.compile(rf"([{_NUM}]|\d)\s*(?:个方面|个|项|点|条|句|方面|种|件|类)")
# a quoted slogan made of counted parts: “两加强两坚持”, “三懂四会”, “四化”
_SLOGAN = re.compile(r"[“「\"]([^”」\"]{2,12})[”」\"]")
_SLOGAN_PART = re.compile(rf"([{_NUM}])([^{_NUM}]{{1,3}})")
_EN_COUNT = re.compile(r"\b(two|three|four|five|six|seven|eight)\b", re.I)
_COLON = re.compile(r"[：:]")
_CLAUSE = re.compile(r"[，,。；;：:！？!?]")


@dataclass(frozen=True)
class Enumeration:
    """Sentence spans (document offsets) of the items, in order, and the kind of list."""

    items: tuple[tuple[int, int], ...]
    family: str  # an ordinal family, or "clauses" for a colon-led run of clauses

    def __len__(self) -> int:
        return len(self.items)


def _value(token: str) -> int:
    return int(token) if token.isdigit() else _NUM_VALUE.get(token, 0)


def expected_count(text: str) -> int | None:
    """How many items ``text`` (a question or a lead-in) asks for or announces."""
    simp = to_simplified(text)
    for slogan in _SLOGAN.findall(simp):
        parts = _SLOGAN_PART.findall(slogan)
        if parts and "".join(n + rest for n, rest in parts) == slogan:
            return sum(_value(n) for n, _ in parts) if len(parts) > 1 else _value(parts[0][0])
    m = _COUNT.search(simp)
    if m and _value(m.group(1)) >= 2:
        return _value(m.group(1))
    en = _EN_COUNT.search(text)
    return _EN_NUM[en.group(1).lower()] if en else None


def inline_count(sentence: str) -> int:
    """Parts of the longest run of 、-separated terms inside one clause of ``sentence``
    (“回答“为什么、干什么、怎么干”三个问题” → 3): a list written inline."""
    return max((clause.count("、") + 1 for clause in _CLAUSE.split(sentence)), default=1)


_CACHE: dict[tuple[int, str], list[tuple[int, int]]] = {}


def doc_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a whole document (cached: documents are immutable strings)."""
    key = (hash(text), text[:64])
    spans = _CACHE.get(key)
    if spans is None:
        if len(_CACHE) > 256:
            _CACHE.clear()
        spans = _CACHE[key] = sentence_spans(text)
    return spans


def find_enumeration(
    text: str, anchor: tuple[int, int], expected: int | None = None
) -> Enumeration | None:
    """The enumeration that the sentence at ``anchor`` (document offsets) belongs to,
    opens or announces, or ``None`` when it has no part in a list of two or more."""
    spans = doc_sentences(text)
    idx = next((i for i, sp in enumerate(spans) if sp[0] <= anchor[0] < sp[1]), None)
    if idx is None:
        return None
    items = [enum_item(text[s:e]) for s, e in spans]
    first = _first_item(text, spans, items, idx, expected)
    if first is not None:
        found = _collect(spans, items, first, expected)
        if len(found) >= 2:
            return Enumeration(tuple(spans[i] for i in found), items[first][0])  # type: ignore[index]
    clauses = _colon_clauses(text, spans, idx, expected)
    return Enumeration(tuple(clauses), "clauses") if len(clauses) >= 2 else None


def _first_item(
    text: str,
    spans: Sequence[tuple[int, int]],
    items: Sequence[tuple[str, int] | None],
    idx: int,
    expected: int | None,
) -> int | None:
    here = items[idx]
    if here is not None:  # walk back to item one of this list
        family, number = here
        cur = idx
        for j in range(idx - 1, -1, -1):
            if number == 1:
                break
            it = items[j]
            if it is None:
                if _too_far(spans, j, cur, family):
                    return None
                continue
            if FAMILY_LEVEL.get(it[0], 3) < FAMILY_LEVEL.get(family, 3):
                return None  # a higher heading before item one: not a list we can complete
            if it[0] == family and it[1] == number - 1:
                cur, number = j, number - 1
        return cur if number == 1 else None
    sentence = text[spans[idx][0] : spans[idx][1]]
    announces = is_lead_in(sentence) or expected_count(sentence) is not None
    for j in range(idx + 1, min(idx + 1 + LOOKAHEAD, len(spans))):
        it = items[j]
        if it is not None and it[1] == 1:
            between = [text[a:b] for a, b in spans[idx + 1 : j]]
            if announces or expected is not None or all(is_lead_in(t) for t in between):
                return j  # (nothing between, or only lead-ins such as “他要求，”)
            return None
        if it is not None:
            return None  # another list's later item comes first
    return None


def _too_far(spans: Sequence[tuple[int, int]], a: int, b: int, family: str) -> bool:
    if FAMILY_LEVEL.get(family, 3) <= 1:
        return False  # section headings: whole sections lie between them
    return spans[b][0] - spans[a][1] > MAX_GAP_CHARS


def _collect(
    spans: Sequence[tuple[int, int]],
    items: Sequence[tuple[str, int] | None],
    first: int,
    expected: int | None,
) -> list[int]:
    family, number = items[first]  # type: ignore[misc]
    level = FAMILY_LEVEL.get(family, 3)
    out = [first]
    for j in range(first + 1, len(spans)):
        if len(out) >= (expected or MAX_ITEMS):
            break
        it = items[j]
        if it is None:
            if _too_far(spans, out[-1], j, family):
                break
            continue
        if it[0] == family:
            if it[1] != number + 1:
                break  # the family starts over: another list
            out.append(j)
            number += 1
        elif FAMILY_LEVEL.get(it[0], 3) < level:
            break  # a higher heading closes the list
    return out


def _colon_clauses(
    text: str, spans: Sequence[tuple[int, int]], idx: int, expected: int | None
) -> list[tuple[int, int]]:
    """“具体表现在:A…；B…；C…。”: the sentence with the colon and the clauses after it in
    the same paragraph (sentences split at ；)."""
    s, e = spans[idx]
    colon = _COLON.search(text, s, e)
    if colon is None or e - colon.end() < 4:
        # the colon may close a lead-in sentence of its own: the clauses follow it
        if not (text[s:e].rstrip().endswith(("：", ":"))):
            return []
    out = [spans[idx]] if colon is not None and e - colon.end() >= 4 else []
    for j in range(idx + 1, len(spans)):
        if len(out) >= (expected or MAX_ITEMS):
            break
        gap = text[spans[j - 1][1] : spans[j][0]]
        if "\n" in gap:
            break  # the paragraph ends
        out.append(spans[j])
        if not text[spans[j][0] : spans[j][1]].rstrip().endswith(("；", ";")):
            break  # the last clause ends the run
    if not all(text[a:b].rstrip().endswith(("；", ";")) for a, b in out[:-1]):
        return []
    return out
