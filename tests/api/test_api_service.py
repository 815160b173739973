"""The server's hold on the index: the shared embedder's lock, generation swaps, refresh."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

from api.service import FifoLock, LockedEmbedder, Service
from rag.embed.hashing import HashEmbedder
from tests.api.helpers import UNIQUE, UPLOAD_TEXT, api_settings

TEXTS = ["群团组织要保持和增强政治性", "工会要做好困难职工帮扶工作", "妇联", ""]


def test_locked_embedder_gives_the_inner_embedders_vectors() -> None:
    inner = HashEmbedder(batch_size=2)
    locked = LockedEmbedder(inner)
    assert (locked.model_id, locked.dim) == (inner.model_id, inner.dim)
    np.testing.assert_allclose(locked.embed_queries(TEXTS), inner.embed_queries(TEXTS), atol=1e-6)
    np.testing.assert_allclose(locked.embed_passages(TEXTS), inner.embed_passages(TEXTS), atol=1e-6)


class _BorrowChecking(HashEmbedder):
    """Fails like a fast tokenizer does when two threads use it at once."""

    def __init__(self) -> None:
        super().__init__(batch_size=2)
        self.active = 0
        self.batches = 0

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.active += 1
        try:
            if self.active > 1:
                raise RuntimeError("Already borrowed")
            time.sleep(0.001)
            self.batches += 1
            return super().embed_batch(texts)
        finally:
            self.active -= 1


def test_locked_embedder_never_runs_two_batches_at_once() -> None:
    inner = _BorrowChecking()
    locked = LockedEmbedder(inner)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                locked.embed_passages(TEXTS)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert inner.batches == 6 * 10 * 2  # four texts in batches of two


def test_fifo_lock_hands_over_in_arrival_order() -> None:
    lock = FifoLock()
    order: list[int] = []
    lock.__enter__()
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: _take(lock, order, i))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 5
        while len(lock._waiters) < i + 1:  # wait until thread i is queued
            assert time.monotonic() < deadline
            time.sleep(0.001)
    lock.__exit__()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]


def _take(lock: FifoLock, order: list[int], i: int) -> None:
    with lock:
        order.append(i)


class _GatedPassages(HashEmbedder):
    """Blocks embedding passages (marked by their prefix) until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(passage_prefix="passage: ")
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        if texts and texts[0].startswith("passage: "):
            self.waiting.set()
            assert self.gate.wait(30)
        return super().embed_batch(texts)


def test_reads_during_a_write_are_served_from_the_old_generation(
    home: Path, tmp_path: Path
) -> None:
    embedder = _GatedPassages()
    service = Service(api_settings(home), embedder=embedder)
    service.start()
    old = service.current().generation
    new_file = tmp_path / "new.txt"
    new_file.write_text(UPLOAD_TEXT, encoding="utf-8")
    writer = threading.Thread(target=service.ingest, args=([new_file],))
    writer.start()
    assert embedder.waiting.wait(30)  # the write is in progress, holding the writer lock
    during = service.current()
    assert during.generation == old
    hits = during.search(UNIQUE, 3, mode="bm25")
    assert all(p.chunk.doc_id != "new" for p in hits)
    embedder.gate.set()
    writer.join(30)
    after = service.current()
    assert after.generation != old
    assert after.search(UNIQUE, 1, mode="bm25")[0].chunk.doc_id == "new"
    assert during.generation == old  # a request holding the old pipeline keeps it
    service.close()


def test_refresh_keeps_serving_when_a_new_generation_is_broken(home: Path) -> None:
    service = Service(api_settings(home), embedder=HashEmbedder())
    service.start()
    good = service.current()
    with closing(sqlite3.connect(home / "index" / "index.db")) as con, con:
        saved = list(con.execute("SELECT value, key FROM meta"))
        con.execute("UPDATE meta SET value = '{\"half' WHERE key = 'manifest'")
        con.execute("UPDATE meta SET value = '999999' WHERE key = 'generation'")
    service.refresh()
    assert service.current() is good
    with closing(sqlite3.connect(home / "index" / "index.db")) as con, con:
        con.executemany("UPDATE meta SET value = ? WHERE key = ?", saved)
    service.refresh()
    assert service.current() is good  # same generation: nothing reloaded
    service.close()


def test_a_service_without_an_index_says_how_to_make_one(tmp_path: Path) -> None:
    service = Service(api_settings(tmp_path / "empty"), embedder=HashEmbedder())
    service.start()
    assert "rag ingest" in service.problem
    service.close()
