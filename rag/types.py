"""The nouns of the pipeline: documents, chunks, passages.

Documents and chunks are what the index stores, so they are defined in
``index.types`` (the floor below) and handed on from here; offsets (``start``/``end``)
always index into ``Document.text``, so ``doc.text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from index.types import Chunk, DocMeta, Document

__all__ = ["DocMeta", "Document", "Chunk", "Passage", "SkippedFile"]


@dataclass
class Passage:
    """A retrieved chunk with its document metadata and a score."""

    chunk: Chunk
    meta: DocMeta
    score: float
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.chunk.text,
            "doc_id": self.chunk.doc_id,
            "title": self.meta.title,
            "speaker": self.meta.speaker,
            "date": self.meta.date,
            "section": self.chunk.section,
            "start": self.chunk.start,
            "end": self.chunk.end,
            "score": round(float(self.score), 6),
        }


@dataclass
class SkippedFile:
    path: str
    reason: str
