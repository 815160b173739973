"""A tiny deterministic embedder for tests: hashed character n-grams.

Unit tests of the index and the retriever need vectors in milliseconds, with no
model download, that still rank a text that shares words with the query above
one that does not. Character uni- and bigrams of the simplified, lowercased text
do that for Chinese (where a bigram is roughly a word) and passably for Latin
script. Each gram is hashed with CRC-32 — stable across processes, unlike
Python's salted ``hash`` — into one of ``dim`` buckets with a ±1 sign, which
keeps collisions from adding up systematically.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from rag.embed.base import Embedder
from zh.script import to_simplified

__all__ = ["HashEmbedder", "HASH_DIM", "HASH_MODEL_ID"]

HASH_DIM = 256
HASH_MODEL_ID = "hash-256"
UNIGRAM_WEIGHT = 0.5  # bigrams carry more meaning than single characters
BIGRAM_WEIGHT = 1.0


def _grams(text: str) -> list[tuple[str, float]]:
    """Weighted uni- and bigrams over runs of letters and digits (spaces and
    punctuation only separate runs; they would make every text look alike)."""
    text = to_simplified(text).lower()
    grams: list[tuple[str, float]] = []
    prev = ""
    for ch in text:
        if not ch.isalnum():
            prev = ""
            continue
        grams.append((ch, UNIGRAM_WEIGHT))
        if prev:
            grams.append((prev + ch, BIGRAM_WEIGHT))
        prev = ch
    return grams


class HashEmbedder(Embedder):
    """Deterministic ``dim``-dimensional hashing embedder (numpy only).

    It takes no prefixes by default: ``query: ``/``passage: `` are instructions
    for e5 and would only add the same grams to every query or passage here.
    """

    def __init__(
        self,
        *,
        dim: int = HASH_DIM,
        batch_size: int = 64,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        if dim < 2:
            raise ValueError(f"dim must be at least 2, got {dim}")
        self.dim = dim
        self.model_id = HASH_MODEL_ID if dim == HASH_DIM else f"hash-{dim}"
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for gram, weight in _grams(text):
                h = zlib.crc32(gram.encode("utf-8"))
                sign = 1.0 if h & 0x80000000 else -1.0
                out[row, h % self.dim] += sign * weight
        return out
