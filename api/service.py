"""What the server holds between requests: the embedder and one pipeline per index generation.

Consistency comes from never changing a pipeline that requests can see. Each index
generation is served by its own ``ServedPipeline``, whose state is loaded once and
then only read. A request takes the current pipeline *once* (one reference read) and
uses it to the end, so everything it returns comes from that one generation.

Writes (uploads, deletions) are serialised by a lock in this process and by the
store's file lock across processes. Each write runs on a *fresh* pipeline: the store
builds a complete new generation on disk while requests keep being answered from the
old one, and only then is the reference swapped. Generations written by another
process (``rag ingest``) are picked up by ``refresh``, which the app calls periodically.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from api.uploads import UPLOAD_DIR, clean_orphans
from index.store import IndexStore, StoreError
from rag.answer import AnswerBackend, backend_spec
from rag.embed.base import Embedder
from rag.ingest import IngestReport, build_embedder
from rag.pipeline import Pipeline
from rag.settings import Settings

__all__ = ["FifoLock", "LockedEmbedder", "NotReady", "ServedPipeline", "Service", "SharedBackends"]

log = logging.getLogger("api.service")

WARM_UP_TEXT = "群团工作"  # one query embedded at start-up, so the first request is not slow


class NotReady(RuntimeError):
    """No index generation can be served (none built yet, model missing, mismatch)."""


class FifoLock:
    """A lock handed to waiters in arrival order.

    ``threading.Lock`` lets the thread that just released it take it straight back, so
    an upload embedding batch after batch could starve every query waiting for the
    model. Here a release passes the lock to the longest waiter.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()
        self._held = False

    def __enter__(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the holder handing over

    def __exit__(self, *exc: object) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()  # still held: now by that waiter
            else:
                self._held = False


class LockedEmbedder(Embedder):
    """Serialises calls into an embedder shared by all request threads.

    Hugging Face fast tokenizers raise "Already borrowed" when one instance is used
    from two threads at once, and on a two-core machine parallel encodes gain nothing.
    The lock is taken per batch (the base class splits texts into ``batch_size``
    batches and adds the prefixes), in arrival order: a query waits for at most one
    batch of an upload being indexed, never for the whole document.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.query_prefix = inner.query_prefix
        self.passage_prefix = inner.passage_prefix
        self.batch_size = inner.batch_size
        self._lock = FifoLock()

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self.inner.embed_batch(texts)


class _PatientStore(IndexStore):
    """The index store with a bounded wait for the writer lock (a request must not hang
    for the store's default ten minutes behind a long ``rag ingest``)."""

    def __init__(self, home: Path, wait: float) -> None:
        super().__init__(home)
        self.wait = wait

    @contextmanager
    def writer(self, timeout: float | None = None) -> Iterator[None]:
        with super().writer(self.wait if timeout is None else timeout):
            yield


class SharedBackends:
    """LLM backends hold HTTP connection pools: one instance serves every generation."""

    def __init__(self) -> None:
        self._backends: dict[str, AnswerBackend] = {}
        self._lock = threading.Lock()

    def get(self, name: str, make: Callable[[], AnswerBackend]) -> AnswerBackend:
        with self._lock:
            if name not in self._backends:
                self._backends[name] = make()
            return self._backends[name]

    def close(self) -> None:
        with self._lock:
            for backend in self._backends.values():
                backend.close()
            self._backends.clear()


class ServedPipeline(Pipeline):
    """A pipeline pinned to one index generation, safe to share between request threads."""

    def __init__(self, settings: Settings, embedder: Embedder, shared: SharedBackends) -> None:
        store = _PatientStore(settings.home, settings.api_write_lock_wait)
        super().__init__(settings, embedder=embedder, store=store)
        self._shared = shared

    @property
    def generation(self) -> str:
        return self.state().manifest.generation

    def backend(self, name: str | None = None) -> AnswerBackend:
        name = name or self.settings.backend
        if backend_spec(name).per_index:  # built from this generation's statistics
            return super().backend(name)
        return self._shared.get(name, lambda: Pipeline.backend(self, name))


class Service:
    """Owns the embedder, the served pipeline and the write lock; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        on_publish: Callable[[ServedPipeline], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = IndexStore(settings.home)
        self.embedder: Embedder | None = LockedEmbedder(embedder) if embedder else None
        self.backends = SharedBackends()
        self._current: ServedPipeline | None = None
        self._problem = "the server is starting"
        self._write_lock = threading.Lock()
        self._failed_generation: str | None = None
        self._on_publish = on_publish

    # -- life cycle ----------------------------------------------------------------
    def start(self) -> None:
        """Load the embedding model (once) and the current index generation."""
        if self.embedder is None:
            s = self.settings
            try:
                inner = build_embedder(s)
                inner.embed_queries([WARM_UP_TEXT])
            except Exception as exc:  # the server stays up and says why it is not ready
                self._problem = (
                    f"the embedding model {s.embed_model!r} could not be loaded ({exc}); "
                    "run `rag model install`, or set RAG_EMBED_MODEL"
                )
                log.error("embedder unavailable", extra={"detail": str(exc)})
                return
            self.embedder = LockedEmbedder(inner)
        self.refresh()
        if self._current is None:
            log.warning("not ready", extra={"detail": self._problem})
        self.clean_uploads()

    def clean_uploads(self) -> None:
        """Remove what an upload killed half-way left behind (see ``clean_orphans``),
        under both write locks, so no upload of this or another server runs meanwhile."""
        with self._write_lock:
            try:
                with self.store.writer(timeout=0):
                    state = self.store.load()
                    sources = {d.source for d in state.documents.values()} if state else set()
                    removed = clean_orphans(self.settings.home / UPLOAD_DIR, sources)
            except StoreError as exc:  # another writer holds the index: try next start
                log.info("uploads not cleaned", extra={"detail": str(exc)})
                return
        if removed:
            log.info("removed orphaned uploads", extra={"files": removed})

    def close(self) -> None:
        self.backends.close()

    # -- reading -------------------------------------------------------------------
    def current(self) -> ServedPipeline:
        """The pipeline for the generation being served; take it once per request."""
        pipeline = self._current
        if pipeline is None:
            raise NotReady(self._problem)
        return pipeline

    @property
    def problem(self) -> str:
        return self._problem

    def refresh(self) -> None:
        """Serve the generation ``CURRENT`` names, if it is not the one being served.

        Skipped while this process writes (the write publishes its own result). A
        generation that fails to load is logged once and the old one kept.
        """
        if self.embedder is None or not self._write_lock.acquire(blocking=False):
            return
        try:
            try:
                name = self.store.current_generation()
            except StoreError as exc:
                name = None
                self._note_problem(str(exc), None)
            current = self._current
            if current is not None and name == current.generation:
                return
            if name is not None and name == self._failed_generation:
                return
            pipeline = self._new_pipeline()
            try:
                pipeline.state()
            except StoreError as exc:
                self._note_problem(str(exc), name)
                return
            self._publish(pipeline)
        finally:
            self._write_lock.release()

    def _note_problem(self, message: str, generation: str | None) -> None:
        if self._current is None:
            self._problem = message
        if generation is not None and generation != self._failed_generation:
            self._failed_generation = generation
            log.warning(
                "cannot serve index generation", extra={"generation": generation, "detail": message}
            )

    def _new_pipeline(self) -> ServedPipeline:
        if self.embedder is None:
            raise NotReady(self._problem)
        return ServedPipeline(self.settings, self.embedder, self.backends)

    def _publish(self, pipeline: ServedPipeline) -> None:
        previous = self._current
        self._current = pipeline  # one reference assignment: requests see old or new
        self._failed_generation = None
        if previous is None or previous.generation != pipeline.generation:
            log.info(
                "serving index generation",
                extra={
                    "generation": pipeline.generation,
                    "documents": len(pipeline.state().documents),
                    "chunks": len(pipeline.state().chunks),
                },
            )
        if self._on_publish is not None:
            self._on_publish(pipeline)

    # -- writing -------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[ServedPipeline]:
        """A fresh pipeline to write with; served from when the block ends without error."""
        with self._write_lock:
            pipeline = self._new_pipeline()
            yield pipeline
            try:
                pipeline.state()  # pins what was written (or loads it, if nothing changed)
            except StoreError:
                return  # still nothing to serve (e.g. every uploaded file was skipped)
            current = self._current
            if current is None or current.generation != pipeline.generation:
                self._publish(pipeline)

    def ingest(self, paths: Sequence[Path]) -> IngestReport:
        with self.writing() as pipeline:
            return pipeline.ingest(list(paths))

    def remove(self, doc_id: str) -> bool:
        with self.writing() as pipeline:
            return bool(pipeline.remove([doc_id]))
