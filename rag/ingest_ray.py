"""`rag ingest --engine ray`: clean, chunk and embed on a Ray cluster (extra ``ray``).

    (driver) lines that several documents share
          ─► [Ray Data over files] clean + chunk ─► texts to embed
          ─► (driver) length order, cut into the local engine's embedding groups
          ─► [Ray Data, actor pool: one model per actor] embed each group
          ─► (driver) the local engine's Ingestor with those vectors ─► one atomic commit

Cleaning drops page furniture: lines that several files of the batch (or documents
already indexed) share. The driver counts them before the cluster starts: reading
and splitting lines is cheap, and it spares the cluster a pass over the files.

The texts are embedded in the groups ``rag.ingest.Ingestor.embed`` forms (all texts in
length order, ``embed_batch_size * 4`` per call), so each text shares its batch
with the same neighbours as in a local ingest: the same padding, and with int8
ONNX the same activation scales, hence the same vectors.

The commit goes through the local engine's own path: the driver calls
``Ingestor(settings, store, PrecomputedEmbedder(...)).run(paths, rebuild=...)``.
That re-reads, cleans and chunks the files on the driver (cheap next to embedding)
and asks its embedder for the chunk and sentence vectors, which the precomputed
embedder serves from what the cluster computed; a text the cluster did not embed
(a difference between the two chunkings, which should not happen) is embedded on
the driver and counted. So documents, chunks, offsets, ids and the store
transaction are the local engine's by construction, and nothing is written until
every vector is there: a worker that dies is retried by Ray, and a failed run
leaves the index as it was.

Every node needs this package (same version) and the input files at the same path
(a shared file system, or one machine).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed.base import Embedder
from rag.settings import Settings

__all__ = [
    "RayIngestStats",
    "PrecomputedEmbedder",
    "ray_available",
    "ingest_on_ray",
]

INSTALL_HINT = "pip install 'qunti-rag[ray]'"
FILES_PER_TASK = 8  # files per load/clean/chunk batch
LOCAL_WORKER_NICENESS = 0  # added to the command's niceness for a local runtime's workers
GROUPS_PER_CALL = 4  # embedding groups (embed_batch_size * 4 texts each) per actor call

Progress = Callable[[str, int, int], None]


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


@dataclass
class RayIngestStats:
    files: int = 0
    texts_embedded: int = 0  # on the cluster
    driver_misses: int = 0  # texts the driver had to embed itself (expected: 0)
    workers: int = 0
    seconds: dict[str, float] | None = None


class PrecomputedEmbedder(Embedder):
    """Serves passage vectors computed elsewhere; anything else goes to ``fallback``."""

    def __init__(
        self,
        vectors: dict[str, np.ndarray],
        *,
        model_id: str,
        dim: int,
        fallback: Callable[[], Embedder],
    ) -> None:
        self.vectors = vectors
        self.model_id, self.dim = model_id, dim
        self._make_fallback = fallback
        self._fallback: Embedder | None = None
        self.misses = 0

    @property
    def fallback(self) -> Embedder:
        if self._fallback is None:
            self._fallback = self._make_fallback()
        return self._fallback

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - unused
        return self.fallback.embed_batch(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing = [i for i, t in enumerate(texts) if t not in self.vectors]
        for i, t in enumerate(texts):
            if t in self.vectors:
                out[i] = self.vectors[t]
        if missing:
            self.misses += len(missing)
            out[missing] = self.fallback.embed_passages([texts[i] for i in missing])
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.fallback.embed_queries(texts)


# ----------------------------------------------------------------------- the stages


def _read_lines(path: Path, settings: Settings) -> set[str] | None:
    """A file's distinct non-empty stripped lines, or None when it cannot be read."""
    from rag.clean import line_set
    from rag.load import LoadError, read_file

    try:
        raw = read_file(path, max_text_mb=settings.max_text_mb, max_file_mb=settings.max_file_mb)
    except LoadError:
        return None  # reported by the commit's own load
    return line_set(raw.text)


def _shared_lines(
    files: Sequence[Path], settings: Settings, known: Callable[[list[tuple[str, set[str]]]], Any]
) -> set[str]:
    """Lines that several documents hold: several of ``files``, or one of them and
    documents already indexed (``known``, the store's line counts), as
    ``rag.documents.load_documents`` counts them. On the driver: reading and splitting
    lines is cheap next to cleaning, chunking and embedding, and it spares the
    cluster a whole pass over the files."""
    counts: Counter[str] = Counter()
    own: list[tuple[str, set[str]]] = []
    for path in files:
        lines = _read_lines(path, settings)
        if lines is not None:
            counts.update(lines)  # each file counts a line once
            own.append((str(path), lines))
    counts.update(known(own))
    return {line for line, n in counts.items() if n > 1}


def _texts(
    batch: dict[str, np.ndarray], settings: Settings, shared: set[str], indexed: set[str]
) -> dict[str, Any]:
    """Clean and chunk each file; the texts the pipeline will embed for it, in the
    pipeline's order (a file's chunk texts, then its chunks' sentences)."""
    from index.state import sentence_texts
    from rag.chunk import chunk_document
    from rag.clean import clean_document, line_set
    from rag.load import LoadError, read_file
    from rag.load import read_sidecar as _read_sidecar
    from zh.script import to_simplified

    chunk_texts: list[str] = []
    sentences: list[str] = []
    for path in batch["path"]:
        try:
            raw = read_file(
                Path(path), max_text_mb=settings.max_text_mb, max_file_mb=settings.max_file_mb
            )
            sidecar = _read_sidecar(Path(path))
        except LoadError:
            continue
        own = line_set(raw.text)
        doc = clean_document(
            raw,
            doc_id=Path(path).stem,
            source=str(path),
            sidecar=sidecar,
            others=list(own & shared),
        )
        if not doc.text.strip() or doc.sha256 in indexed:
            continue  # empty, or indexed already and unchanged: nothing to embed
        chunks = chunk_document(
            doc,
            max_tokens=settings.chunk_max_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
        chunk_texts.extend(to_simplified(c.index_text or c.text) for c in chunks)
        if settings.sentence_vectors:
            sentences.extend(sentence_texts(chunks)[0])  # the store's own layout
    return {
        "text": np.array(chunk_texts + sentences, dtype=object),
        "sentence": np.array([False] * len(chunk_texts) + [True] * len(sentences)),
    }


class _EmbedActor:
    """One embedding model per actor, loaded once; each row is one embedding group."""

    def __init__(self, settings: Settings, threads: int) -> None:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # onnx and torch: this actor's CPUs
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover - torch is a core dependency
            pass
        from rag.ingest import build_embedder

        self.embedder = build_embedder(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        texts: list[str] = []
        parts = [np.zeros((0, self.embedder.dim), np.float32)]
        for group in batch["group"]:  # one embedder call per group, as the local engine
            group = [str(t) for t in group]
            texts.extend(group)
            parts.append(self.embedder.embed_passages(group))
        return {
            "text": np.array(texts, dtype=object),
            "vector": np.vstack(parts),
            "model": np.array([f"{self.embedder.model_id}\t{self.embedder.dim}"] * len(texts)),
        }


# ----------------------------------------------------------------------- the driver


@contextmanager
def _ray_runtime(address: str | None, num_cpus: int | None) -> Iterator[Any]:
    # No telemetry: Ray's usage reporting (and Ray Data's collector, which polls a
    # Prometheus on localhost:9090 from a background thread) has no place on air-gapped
    # sites. Set before Ray is imported; a user's own setting wins.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DATA_USAGE_DISABLED", "1")
    import ray

    if ray.is_initialized():  # a caller that set Ray up itself keeps it
        yield ray
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
    if address:
        ray.init(address=address, **kwargs)
    else:  # "local": a new runtime even when another cluster runs on this machine
        # Ray starts its workers 15 steps nicer than itself (``worker_niceness``), so
        # on a machine shared with other work the embedding actors got the leftovers
        # (measured: an actor at nice 19 beside the driver's nice 10) while the local
        # engine embeds at the command's own priority. The runtime is this command's
        # alone: its workers run at the command's priority.
        ray.init(
            address="local",
            num_cpus=num_cpus,
            _system_config={"worker_niceness": LOCAL_WORKER_NICENESS},
            **kwargs,
        )
    try:
        yield ray
    finally:
        ray.shutdown()


def ingest_on_ray(
    settings: Settings,
    paths: Sequence[Path] | None = None,
    *,
    rebuild: bool = False,
    address: str | None = None,
    workers: int | None = None,
    worker_cpus: int = 1,
    progress: Progress | None = None,
    stats: RayIngestStats | None = None,
) -> Any:
    """Ingest ``paths`` as :meth:`rag.ingest.Ingestor.run` does, with the
    load/clean/chunk and embedding work done on Ray; returns its ``IngestReport``.

    ``address``: an existing cluster (``ray start --head`` / KubeRay), else a local Ray
    runtime that lives as long as the call. ``workers``: embedding actors (default:
    the cluster's CPUs // ``worker_cpus``), each with ``worker_cpus`` CPUs and threads.
    """
    if not ray_available():
        raise RuntimeError(f"--engine ray needs Ray: {INSTALL_HINT}")
    from index.store import IndexStore
    from rag.ingest import (
        BUNDLED_CORPUS,
        Ingestor,
        build_embedder,
        embedding_groups,
        embedding_step,
    )
    from rag.load import iter_input_files

    stats = stats if stats is not None else RayIngestStats()
    seconds: dict[str, float] = {}
    paths = list(paths) if paths else [BUNDLED_CORPUS]
    files, _ = iter_input_files(paths)
    stats.files = len(files)
    store = IndexStore(settings.home)
    indexed: set[str] = set()
    if not rebuild:
        try:
            old = store.indexed_documents()
        except Exception:  # unreadable: the pipeline's own ingest reports it
            old = {}
        indexed = {d.sha256 for d in old.values()}

    def known_lines(own: list[tuple[str, set[str]]]) -> Any:
        try:
            return store.line_counts(own)
        except Exception:  # unreadable index: the batch's own counts
            return {}

    t0 = time.perf_counter()
    shared = _shared_lines(files, settings, known_lines)
    seconds["lines"] = time.perf_counter() - t0

    vectors: dict[str, np.ndarray] = {}
    model: str | None = None
    local_cpus = worker_cpus * workers if workers else None
    t0 = time.perf_counter()
    with _ray_runtime(address, local_cpus) as ray:
        import ray.data

        seconds["ray start"] = time.perf_counter() - t0
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.verbose_progress = False
        ctx.execution_options.preserve_order = True  # the files' order, as the pipeline's
        n_workers = workers or max(int(ray.cluster_resources().get("CPU", 1)) // worker_cpus, 1)
        stats.workers = n_workers

        t0 = time.perf_counter()
        items = [{"path": str(f)} for f in files]
        blocks = max(-(-len(items) // FILES_PER_TASK), 1)
        chunked = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            _texts,
            batch_size=FILES_PER_TASK,
            fn_kwargs={"settings": settings, "shared": shared, "indexed": indexed},
        )
        chunk_texts: list[str] = []
        sentences: list[str] = []
        for part in chunked.iter_batches(batch_size=None, batch_format="numpy"):
            for text, is_sentence in zip(part["text"], part["sentence"], strict=True):
                (sentences if is_sentence else chunk_texts).append(str(text))
        seconds["clean+chunk"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        groups = embedding_groups(chunk_texts + sentences, embedding_step(settings))
        total = len(chunk_texts) + len(sentences)
        done = 0
        if groups:
            # every actor gets blocks; a call embeds GROUPS_PER_CALL groups
            rows = [{"group": g} for g in groups]
            n_blocks = min(len(rows), max(-(-len(rows) // GROUPS_PER_CALL), n_workers))
            embedded = ray.data.from_items(rows, override_num_blocks=n_blocks).map_batches(
                _EmbedActor,
                batch_size=GROUPS_PER_CALL,
                compute=ray.data.ActorPoolStrategy(size=n_workers),
                num_cpus=worker_cpus,
                fn_constructor_kwargs={"settings": settings, "threads": worker_cpus},
            )  # Ray Data restarts a dead actor (max_restarts=-1) and retries its batch
            for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                for text, vec in zip(batch["text"], batch["vector"], strict=True):
                    vectors[str(text)] = np.asarray(vec, dtype=np.float32)
                if len(batch["model"]):
                    model = str(batch["model"][0])
                done += len(batch["text"])
                if progress:
                    progress("embed (ray)", done, total)
        stats.texts_embedded = done
        seconds["embed"] = time.perf_counter() - t0
        t0 = time.perf_counter()
    seconds["ray stop"] = time.perf_counter() - t0

    if model is not None:
        model_id, dim = model.rsplit("\t", 1)
        embedder = PrecomputedEmbedder(
            vectors,
            model_id=model_id,
            dim=int(dim),
            fallback=lambda: build_embedder(settings),
        )
    else:  # nothing to embed: the driver's embedder only names the model
        real = build_embedder(settings)
        embedder = PrecomputedEmbedder(
            vectors, model_id=real.model_id, dim=real.dim, fallback=lambda: real
        )
    t0 = time.perf_counter()
    report = Ingestor(settings, store, embedder).run(paths, rebuild=rebuild, progress=progress)
    seconds["commit"] = time.perf_counter() - t0
    stats.driver_misses = embedder.misses
    stats.seconds = seconds
    return report
