"""Hybrid retrieval: dense (FAISS) + keyword (BM25) → fusion → filters → optional MMR.

Both sides work on simplified-script text, so traditional and simplified
questions and speeches retrieve each other; passages keep their original script.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from index.store import IndexState
from rag.bilingual import is_english
from rag.chunk import SECTION_SEPARATOR, common_path
from rag.embed.base import Embedder
from rag.intent import asked_count, asks_across, asks_date, asks_header, asks_list
from rag.sentences import enum_item, is_lead_in
from rag.types import Chunk, Passage
from zh.script import normalize_for_match, to_simplified
from zh.text import sentence_spans

__all__ = ["Filters", "Retriever", "RETRIEVERS", "FUSIONS", "rrf_fuse", "convex_fuse"]

RETRIEVERS = ("dense", "bm25", "hybrid")
FUSIONS = ("rrf", "convex")
# Questions about a speech's date, occasion or speaker's post are answered by its
# header (title, dated line, speaker line) — the opening chunk — which shares few words
# with the question. A small prior lifts opening chunks (and, for "when", chunks that
# carry a full date) for such questions.
_FULL_DATE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|\d{1,2}月\d{1,2}日")
INTENT_BONUS = 0.3
# Swept by `benchmarks/retrieval_sweep.py --constants` on speeches.jsonl (hit@1 / MRR):
# INTENT_BONUS 0 → 0.809/0.877, 0.15 → 0.825/0.886, 0.3 → 0.825/0.887, 0.5 → 0.818/0.883;
# SENTENCE_MIX 0 → 0.825/0.878, 0.25 → 0.825/0.881, 0.5 → 0.825/0.887, 1 → 0.802/0.875;
# SENTENCE_DEPTH 1–8 and MAX_LIST_CONTINUATION 4–20 change nothing on these sets;
# MAX_CONTINUATION 0 → 0.809/0.877, 2 → 0.818/0.883, 4 and 8 → 0.825/0.887.
SENTENCE_MIX = 0.5  # weight of the best sentence in a chunk's dense score
SENTENCE_DEPTH = 4  # sentence candidates fetched per chunk candidate
# A passage that ends by announcing a list (“他要求，”) or in the middle of one continues
# into the chunks that hold the rest of the items, up to this many more chunks.
MAX_CONTINUATION = 4
MAX_LIST_CONTINUATION = 12  # for list questions, whose items may each run over paragraphs
# Only the first passages of an answer-sized search read that far, so a large k (a
# browse of the corpus) still gets k passages rather than a few long ones.
LONG_LISTS = 3
MAX_K_LONG = 20
_ISO_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass
class Filters:
    speaker: str | None = None
    date_from: str | None = None  # ISO prefix, inclusive: "2012", "2012-01", "2012-01-04"
    date_to: str | None = None
    doc_ids: Sequence[str] = field(default_factory=tuple)

    def is_empty(self) -> bool:
        return not (self.speaker or self.date_from or self.date_to or self.doc_ids)


def _date_in_range(date: str, lo: str | None, hi: str | None) -> bool:
    if not _ISO_DATE.match(date or ""):
        return False
    if lo and date[: len(lo)] < lo[: len(date)]:
        return False
    return not (hi and date[: len(hi)] > hi[: len(date)])


def rrf_fuse(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int = 60
) -> dict[int, float]:
    """Reciprocal-rank fusion: sum of w / (k + rank) over the rankings a row appears in."""
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + w / (k + rank)
    return fused


def convex_fuse(scored: Sequence[dict[int, float]], weights: Sequence[float]) -> dict[int, float]:
    """Min-max normalise each side's scores over its candidates, then a weighted sum."""
    fused: dict[int, float] = {}
    for scores, w in zip(scored, weights, strict=True):
        if not scores:
            continue
        vals = np.array(list(scores.values()), dtype=np.float64)
        lo, hi = float(vals.min()), float(vals.max())
        span = hi - lo or 1.0
        for row, s in scores.items():
            fused[row] = fused.get(row, 0.0) + w * (s - lo) / span
    return fused


class Retriever:
    def __init__(
        self,
        state: IndexState,
        embedder: Embedder | None,
        *,
        mode: str = "hybrid",
        fusion: str = "rrf",
        candidates: int = 50,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        bm25_weight: float = 1.0,
        mmr_lambda: float = 1.0,
        embed_query: Callable[[str], np.ndarray] | None = None,
        translate: Callable[[str], list[str]] | None = None,
    ) -> None:
        if mode not in RETRIEVERS:
            raise ValueError(f"unknown retriever {mode!r}; choose one of: {', '.join(RETRIEVERS)}")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
        if mode != "bm25" and embedder is None:
            raise ValueError(f"the {mode} retriever needs an embedder")
        self.state = state
        self.embedder = embedder
        self.mode = mode
        self.fusion = fusion
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.mmr_lambda = mmr_lambda
        self._embed_query = embed_query
        self._translate = translate
        self._rows_by_doc: dict[str, list[int]] | None = None  # chunk rows per speech, by start

    # -- filters -------------------------------------------------------------
    def allowed_rows(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or filters.is_empty():
            return None
        wanted_speaker = normalize_for_match(filters.speaker) if filters.speaker else None
        doc_ids = set(filters.doc_ids)
        ok_docs = set()
        for doc_id, doc in self.state.documents.items():
            if doc_ids and doc_id not in doc_ids:
                continue
            if wanted_speaker and wanted_speaker not in normalize_for_match(doc.meta.speaker):
                continue
            if (filters.date_from or filters.date_to) and not _date_in_range(
                doc.meta.date, filters.date_from, filters.date_to
            ):
                continue
            ok_docs.add(doc_id)
        return np.array(
            [i for i, c in enumerate(self.state.chunks) if c.doc_id in ok_docs], dtype=np.int64
        )

    # -- the two sides ---------------------------------------------------------
    def dense(self, query: str, depth: int, allowed: np.ndarray | None) -> dict[int, float]:
        """Cosine per chunk; with sentence vectors, the mean of the chunk's own cosine and
        its best sentence's, so the one sentence that answers a short question counts."""
        assert self.embedder is not None and self.state.vector_index is not None
        text = to_simplified(query)
        if self._embed_query is not None:
            qv = self._embed_query(text)
        else:
            qv = self.embedder.embed_queries([text])[0]
        chunk_scores = dict(self.state.vector_index.search(qv, depth, allowed))
        si, owner = self.state.sentence_index, self.state.sentence_owner
        if si is None or si.size == 0:
            return chunk_scores
        sent_allowed = None if allowed is None else np.flatnonzero(np.isin(owner, allowed))
        best: dict[int, float] = {}
        for row, score in si.search(qv, depth * SENTENCE_DEPTH, sent_allowed):
            c = int(owner[row])
            best[c] = max(best.get(c, -1.0), score)
        fused: dict[int, float] = {}
        for c in set(chunk_scores) | set(best):
            cs = chunk_scores.get(c)
            if cs is None:
                cs = float(self.state.vectors[c] @ qv)
            bs = best.get(c)
            if bs is None:
                lo, hi = np.searchsorted(owner, [c, c + 1])
                bs = float((self.state.sentence_vectors[lo:hi] @ qv).max()) if hi > lo else cs
            fused[c] = SENTENCE_MIX * bs + (1 - SENTENCE_MIX) * cs
        top = sorted(fused, key=lambda r: -fused[r])[:depth]
        return {r: fused[r] for r in top}

    def keyword(self, query: str, depth: int, allowed: np.ndarray | None) -> dict[int, float]:
        assert self.state.bm25 is not None
        scores = self.state.bm25.scores(query)
        if allowed is not None:
            mask = np.full(len(scores), -np.inf, dtype=np.float32)
            mask[allowed] = scores[allowed]
            scores = mask
        order = np.argsort(-scores, kind="stable")[:depth]
        return {int(i): float(scores[i]) for i in order if scores[i] > 0}

    def keyword_query(self, query: str) -> str:
        """The text the keyword side searches: an English question gains the Chinese
        terms its words and names translate to (it shares no token with the speeches)."""
        if self._translate is None or not is_english(query):
            return query
        terms = self._translate(query)
        return f"{query} {' '.join(terms)}" if terms else query

    # -- public ----------------------------------------------------------------
    def search(self, query: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        if not self.state.chunks or k <= 0:
            return []
        allowed = self.allowed_rows(filters)
        depth = max(self.candidates, 2 * k)  # continued passages swallow candidates
        keywords = self.keyword_query(query)
        if self.mode == "dense":
            fused = self.dense(query, depth, allowed)
        elif self.mode == "bm25":
            fused = self.keyword(keywords, depth, allowed)
        else:
            dense = self.dense(query, depth, allowed)
            kw = self.keyword(keywords, depth, allowed)
            weights = (self.dense_weight, self.bm25_weight)
            if self.fusion == "rrf":
                rankings = [
                    sorted(dense, key=lambda r: -dense[r]),
                    sorted(kw, key=lambda r: -kw[r]),
                ]
                fused = rrf_fuse(rankings, weights, self.rrf_k)
            else:
                fused = convex_fuse([dense, kw], weights)
        self._intent_prior(query, fused)
        ranked = sorted(fused, key=lambda r: (-fused[r], r))
        if self.mmr_lambda < 1.0 and len(self.state.vectors):
            ranked = self._mmr(ranked[:depth], fused, k)
        if asks_across(query, (d.meta.speaker for d in self.state.documents.values())):
            ranked = _speeches_first(ranked, self.state.chunks)
        lists = asks_list(query)
        want = asked_count(query) if lists else 0
        out: list[Passage] = []
        for row in ranked:
            if len(out) >= k:
                break
            if any(_covers(p.chunk, self.state.chunks[row]) for p in out):
                continue  # already inside a passage continued over it
            chunk = self.continued(
                row,
                lists,
                taken=[p.chunk for p in out],
                want=want if len(out) < LONG_LISTS and k <= MAX_K_LONG else -1,
            )
            meta = self.state.documents[chunk.doc_id].meta
            out.append(Passage(chunk=chunk, meta=meta, score=fused[row], rank=len(out) + 1))
        return out

    # -- continuing a passage over the rest of its list ---------------------------
    def continued(
        self, row: int, lists: bool = True, taken: Sequence[Chunk] = (), want: int = 0
    ) -> Chunk:
        """The chunk at ``row``, extended over the following chunks of its speech while
        they carry on an enumeration: always over the list a chunk ends by announcing
        (“他要求，” here, “一是…”, “二是…” next), and for list questions also when it
        stops between two items (“一是…” here, “二是…” next), or when a following chunk
        of the section holds the next item after the rest of the current one (long items,
        each with its paragraphs), until ``want`` items (the count the question asks
        for, 0 if none; -1 keeps such a passage as short as a plain one) are reached.
        A list question's passage that opens in the middle of a list (its first item is
        “三要…”) also starts earlier, at the chunk holding item one. Chunks already
        inside one of the ``taken`` passages are not taken again."""
        chunk = self.state.chunks[row]
        doc = self.state.documents.get(chunk.doc_id)
        if doc is None:
            return chunk
        rows = self._doc_rows().get(chunk.doc_id, [])
        start, end, parts = chunk.start, chunk.end, [chunk]
        announced = False
        budget = MAX_LIST_CONTINUATION if lists and want >= 0 else MAX_CONTINUATION
        if lists and want >= 0:
            earlier = self._back_to_first_item(chunk, rows, taken, budget)
            if earlier:
                parts = [*earlier, chunk]
                start = earlier[0].start

        def after(pos: int) -> Chunk | None:
            nxt = next((self.state.chunks[r] for r in rows
                        if self.state.chunks[r].start >= pos - 1
                        and self.state.chunks[r].end > pos), None)  # fmt: skip
            if (
                nxt is None
                or doc.text[pos : nxt.start].strip()
                or any(_covers(t, nxt) for t in taken)
            ):
                return None
            return nxt

        while len(parts) <= budget:
            nxt = after(end)
            if nxt is None:
                break
            spans = sentence_spans(doc.text[start:end])
            following = sentence_spans(doc.text[nxt.start : nxt.end])
            if not spans or not following:
                break
            item = enum_item(doc.text[nxt.start + following[0][0] : nxt.start + following[0][1]])
            last = _last_item(doc.text, start, spans)
            last_sentence = doc.text[start + spans[-1][0] : start + spans[-1][1]]
            run = [nxt]
            if item is not None and end == chunk.end and item[1] == 1 and is_lead_in(last_sentence):
                announced = True  # the list this chunk announces starts in the next one
            elif item is not None and (lists or announced) and last == (item[0], item[1] - 1):
                pass  # the next chunk opens with the next item
            elif lists and want >= 0 and last is not None:
                # a list question reads on over the rest of a long item, through chunks
                # of the same section, to the chunk that holds the next item
                run = self._to_next_item(doc.text, nxt, last, after, budget - len(parts))
                if not run:
                    break
            else:
                break
            parts.extend(run)
            end = run[-1].end
            now = _last_item(doc.text, start, sentence_spans(doc.text[start:end]))
            if want > 0 and now is not None and now[1] >= want:
                break  # every item asked for is in
        if len(parts) == 1:
            return chunk
        path = common_path([p.section_path for p in parts])
        return Chunk(
            chunk_id=f"{chunk.chunk_id}+{len(parts) - 1}",
            doc_id=chunk.doc_id,
            start=start,
            end=end,
            text=doc.text[start:end],
            section=SECTION_SEPARATOR.join(path),
            section_path=path,
            index_text="",
        )

    def _back_to_first_item(
        self, chunk: Chunk, rows: Sequence[int], taken: Sequence[Chunk], budget: int
    ) -> list[Chunk]:
        """The chunks before ``chunk`` back to the one holding item one of the list
        ``chunk`` opens in the middle of (same section, adjacent, no other list of the
        kind in between); [] when ``chunk`` does not open mid-list."""
        first = next(
            (m for s, e in sentence_spans(chunk.text) if (m := enum_item(chunk.text[s:e]))), None
        )
        if first is None or first[1] <= 1:
            return []
        family, want = first[0], first[1] - 1
        back: list[Chunk] = []
        pos = chunk.start
        while len(back) < budget:
            prev = next((self.state.chunks[r] for r in reversed(rows)
                         if self.state.chunks[r].end <= pos + 1
                         and self.state.chunks[r].start < pos), None)  # fmt: skip
            if (
                prev is None
                or prev.section_path[:1] != chunk.section_path[:1]
                or any(_covers(t, prev) for t in taken)
            ):
                return []
            back.insert(0, prev)
            marks = [m for s, e in sentence_spans(prev.text)
                     if (m := enum_item(prev.text[s:e])) and m[0] == family]  # fmt: skip
            for m in reversed(marks):
                if m[1] != want:
                    return []  # another list of the same kind
                if want == 1:
                    return back
                want -= 1
            pos = prev.start
        return []

    @staticmethod
    def _to_next_item(
        text: str,
        nxt: Chunk,
        last: tuple[str, int],
        after: Callable[[int], Chunk | None],
        budget: int,
    ) -> list[Chunk]:
        """The chunks from ``nxt`` on to the first one holding an item of ``last``'s
        kind, when that item is the next number and no chunk leaves the section;
        else []."""
        run: list[Chunk] = []
        chunk: Chunk | None = nxt
        while chunk is not None and len(run) < budget:
            if chunk.section_path[:1] != nxt.section_path[:1]:
                return []
            run.append(chunk)
            for s, e in sentence_spans(chunk.text):
                item = enum_item(chunk.text[s:e])
                if item is not None and item[0] == last[0]:
                    return run if item[1] == last[1] + 1 else []
            chunk = after(chunk.end)
        return []

    def _doc_rows(self) -> dict[str, list[int]]:
        cached = self._rows_by_doc
        if cached is None:
            cached = {}
            for row, c in enumerate(self.state.chunks):
                cached.setdefault(c.doc_id, []).append(row)
            for rows in cached.values():
                rows.sort(key=lambda r: self.state.chunks[r].start)
            self._rows_by_doc = cached
        return cached

    def _intent_prior(self, query: str, fused: dict[int, float]) -> None:
        when, header = asks_date(query), asks_header(query)
        if not (when or header) or not fused:
            return
        scale = max(fused.values()) - min(fused.values()) or max(fused.values()) or 1.0
        firsts = self._opening_rows()
        for row in fused:
            opening = row in firsts
            dated = when and bool(_FULL_DATE.search(self.state.chunks[row].text))
            if opening or dated:
                fused[row] += INTENT_BONUS * scale * (1.0 if opening else 0.5)

    def _opening_rows(self) -> set[int]:
        first: dict[str, tuple[int, int]] = {}
        for row, c in enumerate(self.state.chunks):
            if c.doc_id not in first or c.start < first[c.doc_id][0]:
                first[c.doc_id] = (c.start, row)
        return {row for _, row in first.values()}

    def _mmr(self, rows: list[int], scores: dict[int, float], k: int) -> list[int]:
        """Maximal marginal relevance over the fused candidates (relevance rescaled to 0..1)."""
        vals = np.array([scores[r] for r in rows])
        rel = (vals - vals.min()) / ((vals.max() - vals.min()) or 1.0)
        vecs = self.state.vectors[rows]
        chosen: list[int] = []
        remaining = list(range(len(rows)))
        while remaining and len(chosen) < k:
            if chosen:
                sim = vecs[remaining] @ vecs[chosen].T
                penalty = sim.max(axis=1)
            else:
                penalty = np.zeros(len(remaining))
            mmr = self.mmr_lambda * rel[remaining] - (1 - self.mmr_lambda) * penalty
            best = remaining[int(np.argmax(mmr))]
            chosen.append(best)
            remaining.remove(best)
        return [rows[i] for i in chosen] + [r for i, r in enumerate(rows) if i not in chosen]


def _last_item(text: str, start: int, spans: list[tuple[int, int]]) -> tuple[str, int] | None:
    for s, e in reversed(spans):
        item = enum_item(text[start + s : start + e])
        if item is not None:
            return item
    return None


def _covers(outer: Chunk, inner: Chunk) -> bool:
    return outer.doc_id == inner.doc_id and outer.start <= inner.start and inner.end <= outer.end


def _speeches_first(ranked: list[int], chunks: Sequence[Chunk]) -> list[int]:
    """For questions across speeches: each speech's best chunk first (in rank order),
    then the rest, so one speech cannot fill every slot."""
    seen: set[str] = set()
    firsts = []
    for row in ranked:
        if chunks[row].doc_id not in seen:
            seen.add(chunks[row].doc_id)
            firsts.append(row)
    chosen = set(firsts)
    return firsts + [r for r in ranked if r not in chosen]
