"""Read access to the indexed speeches for answer backends: a speech's whole cleaned
text, and the indexed chunk that holds a span of it. Backends that read past the
retrieved passages (the items of a long list, a speech's opening lines) cite what they
quote through these chunks."""

from __future__ import annotations

from bisect import bisect_right

from index.store import IndexState
from rag.types import Chunk, Document

__all__ = ["IndexedSpeeches"]


class IndexedSpeeches:
    """A ``CorpusView`` over one loaded index generation."""

    def __init__(self, state: IndexState) -> None:
        self.state = state
        by_doc: dict[str, list[Chunk]] = {}
        for chunk in state.chunks:
            by_doc.setdefault(chunk.doc_id, []).append(chunk)
        for chunks in by_doc.values():
            chunks.sort(key=lambda c: c.start)
        self._chunks = by_doc
        self._starts = {d: [c.start for c in cs] for d, cs in by_doc.items()}

    def document(self, doc_id: str) -> Document | None:
        return self.state.documents.get(doc_id)

    def chunk_covering(self, doc_id: str, start: int, end: int) -> Chunk | None:
        """The chunk that holds ``[start, end)`` whole (the last such, so the span sits
        nearest its start), or ``None``."""
        chunks = self._chunks.get(doc_id, [])
        i = bisect_right(self._starts.get(doc_id, []), start)
        for chunk in reversed(chunks[max(0, i - 3) : i]):
            if chunk.start <= start and end <= chunk.end:
                return chunk
        return None
