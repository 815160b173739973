"""Fit numbered passages into the prompt's token budget.

Passages arrive in rank order and the model cites them as ``[n]`` by that rank, so
fitting never reorders or renumbers: it keeps passages while they fit, cuts the first
one that does not fit at a sentence end (a clean prefix, so quotes taken from it are
still verbatim), and stops there. A later, shorter passage is not pulled forward to
fill the gap, because that would leave a hole in the numbering the verifier relies on.

Tokens are counted with ``zh.text.count_tokens`` (tiktoken's offline ``cl100k_base``);
the server's own tokenizer may count differently, so the budget is a size guard, not
an exact fit. Sentence ends are ``zh.text``'s, the same the citation verifier uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from rag.types import Passage
from zh.text import count_tokens, sentence_starts

__all__ = ["SEPARATOR", "fit_passages", "sentence_cuts"]

SEPARATOR = "\n\n"  # what the caller puts between rendered passages

RenderOne = Callable[[int, Passage], str]


def sentence_cuts(text: str) -> list[int]:
    """Where ``text`` may be cut into a clean prefix: the start of every sentence after
    the first (``text[:cut]`` is whole sentences plus the whitespace after them)."""
    return sentence_starts(text)


def _truncated(passage: Passage, length: int) -> Passage:
    """``passage`` cut to its first ``length`` characters, offsets kept consistent."""
    text = passage.chunk.text[:length].rstrip()
    chunk = replace(passage.chunk, text=text, end=passage.chunk.start + len(text))
    return replace(passage, chunk=chunk)


def _longest_fitting_prefix(n: int, passage: Passage, render_one: RenderOne, room: int) -> str:
    """The rendering of the longest sentence prefix of ``passage`` within ``room`` tokens."""
    cuts = sentence_cuts(passage.chunk.text)
    best = ""
    lo, hi = 0, len(cuts) - 1
    while lo <= hi:  # token count grows with the prefix, so binary search
        mid = (lo + hi) // 2
        rendered = render_one(n, _truncated(passage, cuts[mid]))
        if count_tokens(rendered) <= room:
            best, lo = rendered, mid + 1
        else:
            hi = mid - 1
    return best


def fit_passages(
    passages: Sequence[Passage], *, budget_tokens: int, render_one: RenderOne
) -> list[str]:
    """Render passages ``1..k`` (k as large as fits) within ``budget_tokens``.

    ``render_one(n, passage)`` renders passage number ``n`` (its 1-based rank). The
    result's i-th element is always passage number ``i + 1``; the last one may be a
    sentence-aligned prefix of its passage. Separators between passages count too.
    """
    out: list[str] = []
    used = 0
    sep = count_tokens(SEPARATOR)
    for n, passage in enumerate(passages, start=1):
        room = budget_tokens - used - (sep if out else 0)
        if room <= 0:
            break
        rendered = render_one(n, passage)
        cost = count_tokens(rendered)
        if cost <= room:
            out.append(rendered)
            used += cost + (sep if len(out) > 1 else 0)
            continue
        partial = _longest_fitting_prefix(n, passage, render_one, room)
        if partial:
            out.append(partial)
        break
    return out
