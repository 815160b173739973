"""Query vectors, kept: an answer, its evaluation and a chat turn often search the same
question more than once, and request threads share what one of them embedded."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["QUERY_CACHE_SIZE", "QueryVectors"]

QUERY_CACHE_SIZE = 1024  # questions; 1,024 × 384 floats is 1.5 MB


class QueryVectors:
    """A least-recently-used cache in front of ``embed_queries``; safe across threads
    (the embedding itself runs outside the lock)."""

    def __init__(
        self,
        embed_queries: Callable[[Sequence[str]], np.ndarray],
        size: int = QUERY_CACHE_SIZE,
    ) -> None:
        self._embed = embed_queries
        self._size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, text: str) -> np.ndarray:
        with self._lock:
            vec = self._vectors.get(text)
            if vec is not None:
                self._vectors.move_to_end(text)
                return vec
        vec = self._embed([text])[0]
        with self._lock:
            self._vectors[text] = vec
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)
        return vec

    def __len__(self) -> int:
        return len(self._vectors)

    def clear(self) -> None:
        """Forget every vector (benchmarks that time real query embedding)."""
        with self._lock:
            self._vectors.clear()
