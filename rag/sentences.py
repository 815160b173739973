"""Enumerations inside paragraphs: which sentence opens an item, which announces a list.

Where a sentence ends is decided in ``zh.text`` (``sentence_spans`` and
``insert_markers`` are re-exported here for the modules that import them from here).
"""

from __future__ import annotations

import re

from zh.text import insert_markers, ordinal_value, sentence_spans

__all__ = ["sentence_spans", "ENUM_START", "insert_markers", "enum_item", "is_lead_in"]

# enumeration openers that start an item of a list inside a paragraph
ENUM_START = re.compile(
    r"^(?:[一二三四五六七八九十]+是|[一二三四五六七八九十]要|第[一二三四五六七八九十]+[，,、：:是要点条句]|"
    r"[（(][一二三四五六七八九十\d]+[）)]|[一二三四五六七八九十]+、|\d+[.、．]|首先|其次|再次|最后|另一方面|一方面)"
)


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


def enum_item(sentence: str) -> tuple[str, int] | None:
    """``(family, ordinal)`` when ``sentence`` opens an item of an enumeration
    (“二是…” → ("shi", 2), “（三）…” → ("paren", 3), “其次，…” → ("word", 2))."""
    m = _ITEM.match(sentence.lstrip())
    if not m:
        return None
    family = m.lastgroup or ""
    word = m.group(family)
    number = ordinal_value(word)
    return (family, number) if number > 0 else None


def is_lead_in(sentence: str) -> bool:
    """True for a sentence that only announces what follows (ends in a comma or colon,
    or counts the items: “提出三点要求”)."""
    return bool(_LEAD_IN.search(sentence.strip()))
