"""The query-vector cache: each question embedded once, least recently used dropped."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from rag.embed.query_cache import QueryVectors


class Counting:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)


def test_a_question_is_embedded_once_and_the_oldest_is_dropped() -> None:
    embed = Counting()
    cache = QueryVectors(embed, size=2)
    assert cache("甲").tolist() == [1.0, 1.0]
    cache("乙乙")
    cache("甲")  # hit: 甲 is now the most recent
    assert embed.seen == ["甲", "乙乙"]
    cache("丙丙丙")  # evicts 乙乙, the least recently used
    assert len(cache) == 2
    cache("甲")
    cache("乙乙")
    assert embed.seen == ["甲", "乙乙", "丙丙丙", "乙乙"]
    cache.clear()
    assert len(cache) == 0


def test_threads_share_the_cache() -> None:
    embed = Counting()
    cache = QueryVectors(embed, size=64)
    questions = [f"问题{i}" for i in range(32)]

    def ask() -> None:
        for q in questions:
            assert cache(q)[0] == len(q)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 32 and set(embed.seen) == set(questions)
