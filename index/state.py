"""What a loaded index is: its manifest (the settings it was built with and what it
holds), the in-memory state a query reads, and the changes a write applies.

The store (:mod:`index.store`) reads a state and writes changes; retrieval reads the
state. Neither needs the other's internals, so they live apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from index.keywords import BM25Index
from index.types import Chunk, Document
from index.vectors import VectorIndex, make_vector_index
from zh.script import to_simplified
from zh.text import sentence_spans

__all__ = [
    "DEFAULT_VECTOR_CODEC",
    "FORMAT_VERSION",
    "Changes",
    "IndexState",
    "Manifest",
    "corpus_hash",
]

FORMAT_VERSION = 3
DEFAULT_VECTOR_CODEC = "i8"


@dataclass
class Manifest:
    model_id: str
    dim: int
    chunker_version: str
    chunk_max_tokens: int
    chunk_overlap_tokens: int
    tokenizer: str
    ann: str
    sentence_vectors: bool = True
    vector_codec: str = DEFAULT_VECTOR_CODEC
    corpus_hash: str = ""
    n_documents: int = 0
    n_chunks: int = 0
    generation: str = ""
    created: str = ""
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def corpus_hash(documents: dict[str, Document]) -> str:
    return _corpus_hash((doc_id, documents[doc_id].sha256) for doc_id in sorted(documents))


def _corpus_hash(pairs: Iterable[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for doc_id, sha in pairs:
        h.update(f"{doc_id}\0{sha}\n".encode())
    return h.hexdigest()


def sentence_texts(chunks: Sequence[Chunk]) -> tuple[list[str], list[int]]:
    """The sentences whose vectors are stored, in stored order: each chunk's sentences
    (``zh.text.sentence_spans``), simplified, and the chunk row each belongs to. The
    writer embeds them in this order and the reader finds a sentence's row by it."""
    texts: list[str] = []
    owner: list[int] = []
    for row, c in enumerate(chunks):
        for s, e in sentence_spans(c.text):
            texts.append(to_simplified(c.text[s:e]))
            owner.append(row)
    return texts, owner


@dataclass
class IndexState:
    """Everything a query needs, held in memory. Chunk row i ↔ vector row i ↔ BM25 row i."""

    manifest: Manifest
    documents: dict[str, Document] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    vector_index: VectorIndex | None = None
    bm25: BM25Index | None = None
    # Optional second vector set: one vector per sentence of each chunk, so a short
    # question can match the one sentence that answers it (``sentence_owner[i]`` is the
    # chunk row of sentence vector i; ascending).
    sentence_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    sentence_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sentence_index: VectorIndex | None = None
    _sentence_rows: dict[str, int] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def rebuild_indexes(self) -> None:
        """(Re)build FAISS and BM25 from ``chunks``, ``vectors`` and ``sentence_vectors``."""
        self.rebuild_vector_indexes()
        bm = BM25Index(self.manifest.tokenizer)
        bm.build([c.index_text or c.text for c in self.chunks])
        self.bm25 = bm
        self.manifest.n_documents = len(self.documents)
        self.manifest.n_chunks = len(self.chunks)
        self.manifest.corpus_hash = corpus_hash(self.documents)

    def rebuild_vector_indexes(self) -> None:
        dim = self.manifest.dim
        vi = make_vector_index(self.manifest.ann, dim)
        vi.build(self.vectors.reshape(-1, dim))
        self.vector_index = vi
        si = make_vector_index(self.manifest.ann, dim)
        si.build(self.sentence_vectors.reshape(-1, dim))
        self.sentence_index = si

    def sentence_rows(self) -> dict[str, int]:
        """Simplified sentence text → row of its stored sentence vector (the first, for a
        sentence said twice); empty when the stored vectors are not in the layout of
        :func:`sentence_texts`, so callers embed on demand instead."""
        if self._sentence_rows is None:
            table: dict[str, int] = {}
            if self.manifest.sentence_vectors:
                texts, _ = sentence_texts(self.chunks)
                for row, text in enumerate(texts):
                    table.setdefault(text, row)
                if len(texts) != len(self.sentence_vectors):
                    table = {}
            self._sentence_rows = table
        return self._sentence_rows

    def chunk_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {doc_id: 0 for doc_id in self.documents}
        for c in self.chunks:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        return counts


@dataclass
class Changes:
    """Documents to (re)write, with their chunks and vectors; ``sentence_owner[i]`` is
    the row in ``chunks`` of sentence vector i."""

    documents: list[Document] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    sentence_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    sentence_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # doc_id → the distinct stripped lines of its raw file (for boilerplate statistics)
    lines: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of_state(cls, state: IndexState) -> Changes:
        return cls(list(state.documents.values()), list(state.chunks), state.vectors,
                   state.sentence_vectors, state.sentence_owner)  # fmt: skip
