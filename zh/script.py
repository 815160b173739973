"""Traditional/simplified Chinese: detection, normalisation and display conversion.

Retrieval works on simplified text (both the dense and the keyword side), while
stored text and offsets keep the document's original script. OpenCC conversions
here are character-for-character (``t2s``/``s2t``), which keeps lengths equal so
offsets computed on the normalised text are valid on the original too.
"""

from __future__ import annotations

from functools import lru_cache

from opencc import OpenCC

__all__ = ["to_simplified", "to_traditional", "detect_script", "normalize_for_match"]


@lru_cache(maxsize=2)
def _converter(config: str) -> OpenCC:
    return OpenCC(config)


def _convert_aligned(text: str, config: str) -> str:
    """Convert with OpenCC; if a phrase rule changed the length, redo it character
    by character so that position i of the output is character i of the input."""
    out = str(_converter(config).convert(text))
    if len(out) == len(text):
        return out
    conv = _converter(config)
    chars = []
    for ch in text:
        c = str(conv.convert(ch))
        chars.append(c if len(c) == 1 else ch)
    return "".join(chars)


def to_simplified(text: str) -> str:
    """Traditional → simplified, same length as the input (offsets stay valid)."""
    return _convert_aligned(text, "t2s")


def to_traditional(text: str) -> str:
    """Simplified → traditional, same length as the input."""
    return _convert_aligned(text, "s2t")


def detect_script(text: str) -> str:
    """Return ``"traditional"`` when converting to simplified changes a notable
    share of the Han characters, else ``"simplified"``."""
    han = [c for c in text if "\u4e00" <= c <= "\u9fff"]
    if not han:
        return "simplified"
    sample = "".join(han[:5000])
    changed = sum(a != b for a, b in zip(sample, to_simplified(sample), strict=False))
    back = sum(a != b for a, b in zip(sample, to_traditional(sample), strict=False))
    return "traditional" if changed > max(3, back) else "simplified"


def normalize_for_match(text: str) -> str:
    """Traditional→simplified, drop whitespace, lowercase (the gold-set matching rule)."""
    return "".join(to_simplified(text).split()).lower()
