"""What a question must be before anything searches for it, checked in one place.

The pipeline (``validate_query``), the API's request schemas and the CLI all call
``check_question``, so the three refuse the same input with the same words:

* text, not half of a UTF-16 pair: a lone surrogate (``"\\ud800"`` in JSON, or an
  undecodable byte the OS handed the CLI as ``\\udcff``) cannot be encoded, searched or
  logged;
* not empty and not longer than ``MAX_QUERY_CHARS``;
* some content: after punctuation, symbols (emoji included), spaces, zero-width and
  other format characters, combining marks and digits are set aside, a letter or a CJK
  character must remain, and more than a lone Latin letter ("a", "x?"). Without one,
  retrieval ranks passages by noise and the answer is an arbitrary quote, so the
  question is refused with a message instead.

Digits alone ("2015") are refused too: a year is a filter, not a question.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "MAX_QUERY_CHARS",
    "NO_CONTENT",
    "check_question",
    "check_text",
    "has_content",
    "shorten",
]

MAX_QUERY_CHARS = 2000
NO_CONTENT = (
    "the question has no words to search for (only punctuation, symbols, emoji, "
    "invisible characters or a single letter); ask with words"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_LATIN_LETTER = re.compile(r"^[A-Za-z\u00c0-\u024f]$")
ECHO_CHARS = 80


def shorten(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with "…") for echoing in an error message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_text(text: str, what: str = "the text") -> str:
    """``text`` unchanged, or ValueError when it holds a lone surrogate."""
    found = _SURROGATE.search(text)
    if found is not None:
        raise ValueError(
            f"{what} is not valid Unicode text: it holds a lone surrogate "
            f"(U+{ord(found.group()):04X}) at character {found.start() + 1}; "
            "send UTF-8 text (in JSON, a \\ud83d-style escape must be one of a pair)"
        )
    return text


def _words(text: str) -> list[str]:
    """Runs of letters (Unicode category L*), everything else treated as a separator."""
    words: list[str] = []
    current: list[str] = []
    for ch in text:
        if unicodedata.category(ch).startswith("L"):
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def has_content(text: str) -> bool:
    """Whether ``text`` has a letter or CJK character beyond a lone Latin letter."""
    words = _words(text)
    return not (not words or (len(words) == 1 and _LATIN_LETTER.match(words[0])))


def check_question(text: str) -> str:
    """``text`` unchanged when it may be searched, else ValueError saying why."""
    check_text(text, "the question")
    if not text.strip():
        raise ValueError("the question is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise ValueError(
            f"the question is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}"
        )
    if not has_content(text):
        raise ValueError(NO_CONTENT)
    return text
