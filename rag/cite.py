"""Citation verification: every ``[n]`` in a draft is checked against passage n.

For each sentence of a draft, each cited passage is searched for the span (one
sentence, or two adjacent ones) that best supports the sentence. A citation is
kept when the support reaches a threshold; otherwise it is dropped, or repaired by
pointing it at another retrieved passage that does support the sentence. Sentences
left without support are reported. Citations carry the verbatim span and its offsets
into the cleaned speech, so ``document.text[start:end] == quote`` always holds.

Support is lexical for Chinese claims (share of the claim's character bigrams found
in the span, both sides in simplified script) and, when an embedding function is
given, semantic for claims in other languages (cosine of query/passage embeddings).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.answer.base import Citation
from rag.types import Passage
from zh.script import to_simplified
from zh.text import CLOSERS, CONTENT, SENTENCE_END, insert_markers, is_chinese, sentence_spans

__all__ = [
    "LEXICAL_THRESHOLD",
    "SEMANTIC_THRESHOLD",
    "Verified",
    "bigram_support",
    "best_span",
    "verify",
    "MARKER",
]

# Measured by benchmarks/cite_thresholds.py on the bundled speeches (150 claims): a
# claim copied or shortened from a sentence scores ≥ 0.72 against it (5th percentile),
# while the best span of another speech reaches 0.5 for 2.7 % of claims (0.35 for 15 %).
LEXICAL_THRESHOLD = 0.5
# For claims in other languages (cosine of e5 embeddings). No script measures this one
# yet: the gold sets hold no translated claims to measure it on.
SEMANTIC_THRESHOLD = 0.82

MARKER = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_TRAILING_MARKERS = re.compile(
    rf"([{SENTENCE_END}]+[{CLOSERS}]*)((?:\[\d+(?:\s*[,，、]\s*\d+)*\])+)"
)

EmbedPair = Callable[[str, Sequence[str]], np.ndarray]  # (claim, spans) -> cosine per span


def _units(text: str) -> list[str]:
    return [c for c in to_simplified(text).lower() if CONTENT.match(c)]


def _bigrams(text: str) -> set[str]:
    u = _units(text)
    if len(u) < 2:
        return set(u)
    return {u[i] + u[i + 1] for i in range(len(u) - 1)}


def bigram_support(claim: str, span: str) -> float:
    """Share of the claim's character bigrams that occur in ``span`` (0..1)."""
    c = _bigrams(claim)
    if not c:
        return 0.0
    return len(c & _bigrams(span)) / len(c)


def _candidate_spans(passage: Passage) -> list[tuple[int, int]]:
    spans = sentence_spans(passage.chunk.text)
    pairs = [(spans[i][0], spans[i + 1][1]) for i in range(len(spans) - 1)]
    return spans + pairs


def best_span(
    claim: str, passage: Passage, embed_pair: EmbedPair | None = None
) -> tuple[int, int, float]:
    """Best supporting span of ``passage`` for ``claim``: (start, end, score), offsets
    relative to the passage's chunk text. Single sentences win ties over pairs."""
    text = passage.chunk.text
    if is_chinese(claim) or embed_pair is None:
        spans = _candidate_spans(passage)
        scores = [bigram_support(claim, text[s:e]) for s, e in spans]
    else:  # semantic support: single sentences, whose vectors the index already holds
        spans = sentence_spans(text)
        scores = (
            [float(x) for x in embed_pair(claim, [text[s:e] for s, e in spans])] if spans else []
        )
    if not spans:
        return (0, 0, 0.0)
    best = max(range(len(spans)), key=lambda i: (scores[i], -(spans[i][1] - spans[i][0])))
    s, e = spans[best]
    return (s, e, scores[best])


@dataclass
class Verified:
    text: str  # the answer with markers renumbered to citation numbers
    citations: list[Citation] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    dropped: int = 0  # citations removed because they did not support their sentence
    repaired: int = 0  # citations re-pointed to a passage that supports the sentence


def verify(
    draft: str,
    passages: Sequence[Passage],
    *,
    embed_pair: EmbedPair | None = None,
    lexical_threshold: float = LEXICAL_THRESHOLD,
    semantic_threshold: float = SEMANTIC_THRESHOLD,
) -> Verified:
    # “…作用。[1]” → “…作用[1]。”: a marker after the full stop belongs to that sentence
    draft = _TRAILING_MARKERS.sub(r"\2\1", draft)
    result = Verified(text="")
    keyed: dict[tuple[str, int, int], int] = {}
    pieces: list[str] = []
    pos = 0
    for s, e in sentence_spans(draft):
        pieces.append(draft[pos:s])
        pos = e
        sentence = draft[s:e]
        claim = MARKER.sub("", sentence).strip()
        if not _units(claim):  # nothing to verify (stray markers, punctuation)
            pieces.append(MARKER.sub("", sentence))
            continue
        cited = [
            int(n)
            for m in MARKER.finditer(sentence)
            for n in re.split(r"[,，、\s]+", m.group(1))
            if n
        ]
        threshold = (
            lexical_threshold if (is_chinese(claim) or embed_pair is None) else semantic_threshold
        )
        numbers: list[int] = []
        for n in dict.fromkeys(cited):
            if not 1 <= n <= len(passages):
                result.dropped += 1
                continue
            st, en, score = best_span(claim, passages[n - 1], embed_pair)
            if score >= threshold:
                numbers.append(_cite(result, keyed, passages[n - 1], st, en))
            else:
                result.dropped += 1
        lead_in = not cited and claim.endswith(("：", ":"))
        if not numbers and not lead_in and len(_units(claim)) >= 4:
            # repair: the sentence may be supported by another retrieved passage
            best = max(
                ((i, *best_span(claim, p, embed_pair)) for i, p in enumerate(passages)),
                key=lambda t: t[3],
                default=None,
            )
            if best is not None and best[3] >= threshold:
                numbers.append(_cite(result, keyed, passages[best[0]], best[1], best[2]))
                if cited:
                    result.repaired += 1
            elif _is_substantive(claim):
                result.unsupported.append(claim)
        body = MARKER.sub("", sentence).rstrip()
        tail = "".join(f"[{k}]" for k in dict.fromkeys(numbers))
        pieces.append(insert_markers(body, tail))
    pieces.append(draft[pos:])
    result.text = "".join(pieces).strip()
    return result


def _is_substantive(claim: str) -> bool:
    """Lead-ins such as “讲话提出了以下几点：” need no citation."""
    stripped = claim.strip()
    return len(_units(stripped)) >= 8 and not stripped.endswith(("：", ":"))


def _cite(
    result: Verified, keyed: dict[tuple[str, int, int], int], passage: Passage, s: int, e: int
) -> int:
    chunk = passage.chunk
    key = (chunk.doc_id, chunk.start + s, chunk.start + e)
    if key not in keyed:
        keyed[key] = len(result.citations) + 1
        result.citations.append(
            Citation(
                n=keyed[key],
                quote=chunk.text[s:e],
                doc_id=chunk.doc_id,
                title=passage.meta.title,
                speaker=passage.meta.speaker,
                date=passage.meta.date,
                section=chunk.section,
                start=key[1],
                end=key[2],
            )
        )
    return keyed[key]
