"""The data directory: immutable index generations behind an atomic pointer.

Layout under ``<home>/index``::

    CURRENT                  {"generation": "gen-000007"}   (atomically replaced)
    .lock                    one writer at a time (filelock)
    generations/gen-000007/  manifest.json, docstore.json, vectors.npy,
                             vectors.faiss, bm25.json, bm25/

A write builds a complete new generation in a temporary directory, fsyncs it,
renames it into place and only then flips ``CURRENT``. A crash at any point
leaves the previous generation as the one that loads. Readers never see a
half-written index, and a server can swap to a new generation while queries
keep being served from the old one.

``CURRENT`` alone says what is committed. A crash can leave behind a temporary
generation directory, a renamed ``gen-N`` newer than the one ``CURRENT`` names
(killed before the pointer moved) and the pointer's own temporary file; the next
write removes all of them under the writer lock before it picks its name, so a
crash never blocks later writes. Pruning keeps the current generation and the
``KEEP_GENERATIONS - 1`` committed ones before it: a reader that has just read
the pointer has one whole write's time to load, and ``load`` retries with the
new pointer if a generation vanished under it because the pointer had moved on.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from index.atomic import (
    atomic_write_json,
    checkpoint,
    fsync_dir,
    fsync_tree,
    remove_temp_files,
)
from index.keywords import BM25Index
from index.vectors import VectorIndex, make_vector_index
from rag.types import Chunk, DocMeta, Document

__all__ = ["FORMAT_VERSION", "Manifest", "IndexState", "IndexStore", "StoreError", "corpus_hash"]

FORMAT_VERSION = 2
KEEP_GENERATIONS = 2
LOCK_TIMEOUT_S = 600.0
LOAD_ATTEMPTS = 3
GEN_PREFIX = "gen-"
TMP_PREFIX = ".tmp-"
SENTENCE_INDEX_FILE = "sentences.faiss"


class StoreError(RuntimeError):
    """The data directory is missing, locked, corrupt or built for another setup."""


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
    h = hashlib.sha256()
    for doc_id in sorted(documents):
        h.update(f"{doc_id}\0{documents[doc_id].sha256}\n".encode())
    return h.hexdigest()


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
    # chunk row of sentence vector i).
    sentence_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    sentence_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sentence_index: VectorIndex | None = None

    def rebuild_indexes(self) -> None:
        """(Re)build FAISS and BM25 from ``chunks``, ``vectors`` and ``sentence_vectors``."""
        vi = make_vector_index(self.manifest.ann, self.manifest.dim)
        vi.build(self.vectors)
        self.vector_index = vi
        si = make_vector_index(self.manifest.ann, self.manifest.dim)
        si.build(self.sentence_vectors.reshape(-1, self.manifest.dim))
        self.sentence_index = si
        bm = BM25Index(self.manifest.tokenizer)
        bm.build([c.index_text or c.text for c in self.chunks])
        self.bm25 = bm
        self.manifest.n_documents = len(self.documents)
        self.manifest.n_chunks = len(self.chunks)
        self.manifest.corpus_hash = corpus_hash(self.documents)

    def select(self, rows: list[int]) -> tuple[list[Chunk], np.ndarray, np.ndarray, np.ndarray]:
        """Chunks, chunk vectors, sentence vectors and re-mapped owners of ``rows`` (in order)."""
        remap = np.full(len(self.chunks), -1, dtype=np.int64)
        remap[rows] = np.arange(len(rows))
        dim = self.manifest.dim
        sv = self.sentence_vectors.reshape(-1, dim)
        keep = remap[self.sentence_owner] >= 0 if len(self.sentence_owner) else np.zeros(0, bool)
        return (
            [self.chunks[i] for i in rows],
            self.vectors.reshape(-1, dim)[rows],
            sv[keep],
            remap[self.sentence_owner[keep]] if len(keep) else np.zeros(0, np.int64),
        )

    def chunk_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {doc_id: 0 for doc_id in self.documents}
        for c in self.chunks:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        return counts


class IndexStore:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.root = self.home / "index"
        self.generations = self.root / "generations"
        self.pointer = self.root / "CURRENT"

    # -- locking ---------------------------------------------------------------
    @contextmanager
    def writer(self, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the single-writer lock for a read-modify-write of the index."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / ".lock"))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreError(
                f"another process is writing the index in {self.root} (lock held); try again later"
            ) from None
        try:
            yield
        finally:
            lock.release()

    # -- reading -----------------------------------------------------------------
    def current_generation(self) -> str | None:
        if not self.pointer.exists():
            return None
        try:
            name = json.loads(self.pointer.read_text(encoding="utf-8"))["generation"]
        except (ValueError, KeyError) as exc:
            raise StoreError(f"corrupt index pointer {self.pointer}: {exc}") from exc
        return str(name)

    def exists(self) -> bool:
        return self.current_generation() is not None

    def load(self) -> IndexState | None:
        """Load the current generation, or ``None`` when nothing was ever indexed.

        If loading fails and ``CURRENT`` has meanwhile moved on (writers committed and
        pruned the generation being read), the new current generation is loaded.
        """
        for _attempt in range(LOAD_ATTEMPTS - 1):
            name = self.current_generation()
            if name is None:
                return None
            try:
                return self._load_generation(name)
            except StoreError:
                if self.current_generation() == name:
                    raise
        name = self.current_generation()
        return None if name is None else self._load_generation(name)

    def _load_generation(self, name: str) -> IndexState:
        gdir = self.generations / name
        try:
            manifest = Manifest.from_dict(_read_json(gdir / "manifest.json"))
            if manifest.format_version != FORMAT_VERSION:
                raise StoreError(
                    f"index format {manifest.format_version} in {gdir} is not supported "
                    f"(expected {FORMAT_VERSION}); re-run `rag ingest --rebuild`"
                )
            store = _read_json(gdir / "docstore.json")
            documents = {
                d["doc_id"]: Document(
                    doc_id=d["doc_id"],
                    source=d["source"],
                    text=d["text"],
                    meta=DocMeta.from_dict(d["meta"]),
                    sha256=d["sha256"],
                )
                for d in store["documents"]
            }
            chunks = [Chunk.from_dict(c) for c in store["chunks"]]
            vectors = np.load(gdir / "vectors.npy", allow_pickle=False)
            vi = make_vector_index(manifest.ann, manifest.dim)
            vi.load(gdir)
            bm = BM25Index.load(gdir)
            sv = np.load(gdir / "sentences.npy", allow_pickle=False)
            owner = np.load(gdir / "sentence_owner.npy", allow_pickle=False)
            si = make_vector_index(manifest.ann, manifest.dim)
            si.load(gdir, SENTENCE_INDEX_FILE)
        except StoreError:
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise StoreError(f"cannot load index generation {gdir}: {exc}") from exc
        if not (len(chunks) == len(vectors) == vi.size == bm.size):
            raise StoreError(
                f"index generation {gdir} is inconsistent: {len(chunks)} chunks, "
                f"{len(vectors)} vectors, {vi.size} in FAISS, {bm.size} in BM25"
            )
        if not (len(sv) == len(owner) == si.size) or (len(owner) and owner.max() >= len(chunks)):
            raise StoreError(f"index generation {gdir} has inconsistent sentence vectors")
        return IndexState(manifest, documents, chunks, vectors, vi, bm, sv, owner, si)

    # -- writing -----------------------------------------------------------------
    def save(self, state: IndexState) -> str:
        """Write ``state`` as a new generation and make it current. Call under ``writer()``."""
        if state.vector_index is None or state.bm25 is None or state.sentence_index is None:
            state.rebuild_indexes()
        vector_index, bm25, sentence_index = state.vector_index, state.bm25, state.sentence_index
        assert vector_index is not None and bm25 is not None and sentence_index is not None
        self.generations.mkdir(parents=True, exist_ok=True)
        previous = self.current_generation()
        self._remove_leftovers(previous)
        name = self._next_name(previous)
        state.manifest.generation = name
        state.manifest.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        docstore = {
            "documents": [
                {
                    "doc_id": d.doc_id,
                    "source": d.source,
                    "sha256": d.sha256,
                    "meta": d.meta.to_dict(),
                    "text": d.text,
                }
                for d in state.documents.values()
            ],
            "chunks": [c.to_dict() for c in state.chunks],
        }
        tmp = self.generations / f"{TMP_PREFIX}{name}"
        # (file written, how) in order; a crash test stops the write after each one
        files: list[tuple[str, Callable[[], None]]] = [
            ("manifest.json", lambda: _write_json(tmp / "manifest.json", state.manifest.to_dict())),
            ("docstore.json", lambda: _write_json(tmp / "docstore.json", docstore, indent=None)),
            ("vectors.npy", lambda: _save_array(tmp / "vectors.npy", state.vectors, np.float32)),
            ("vector index", lambda: vector_index.save(tmp)),
            (
                "sentences.npy",
                lambda: _save_array(tmp / "sentences.npy", state.sentence_vectors, np.float32),
            ),
            (
                "sentence_owner.npy",
                lambda: _save_array(tmp / "sentence_owner.npy", state.sentence_owner, np.int64),
            ),
            ("sentence index", lambda: sentence_index.save(tmp, SENTENCE_INDEX_FILE)),
            ("bm25", lambda: bm25.save(tmp)),
        ]
        tmp.mkdir()
        try:
            checkpoint("temporary generation created")
            for what, write in files:
                write()
                checkpoint(f"wrote {what}")
            fsync_tree(tmp)
            checkpoint("generation fsynced")
            tmp.rename(self.generations / name)
            checkpoint("generation renamed")
            fsync_dir(self.generations)
            checkpoint("generations fsynced")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        atomic_write_json(self.pointer, {"generation": name})
        checkpoint("pointer written")
        self._prune(keep=name, previous=previous)
        checkpoint("pruned")
        return name

    def _remove_leftovers(self, current: str | None) -> None:
        """Delete what interrupted writes left: temporary directories and files, and
        generations newer than ``current`` (renamed, but never committed by the pointer).
        Runs under the writer lock, so no other write is in progress."""
        remove_temp_files(self.root)
        for leftover in self.generations.glob(f"{TMP_PREFIX}*"):
            _remove(leftover)
            checkpoint(f"removed {leftover.name}")
        committed = _gen_number(current) if current else 0
        for number, path in _numbered(self.generations):
            if number > committed:
                _remove(path)
                checkpoint(f"removed uncommitted {path.name}")

    def _next_name(self, current: str | None) -> str:
        """The generation after ``current``; skips a name still taken (a leftover that
        could not be removed), so one undeletable directory cannot block every write."""
        number = (_gen_number(current) if current else 0) + 1
        while (self.generations / f"{GEN_PREFIX}{number:06d}").exists() or (
            self.generations / f"{TMP_PREFIX}{GEN_PREFIX}{number:06d}"
        ).exists():
            number += 1
        return f"{GEN_PREFIX}{number:06d}"

    def _prune(self, keep: str, previous: str | None) -> None:
        """Keep ``keep`` (just committed) and the ``KEEP_GENERATIONS - 1`` newest
        generations up to ``previous`` (the one committed before it, which a reader
        may have just loaded); delete older ones and any between the two (never
        committed). Ordered by number, not by name."""
        newest = _gen_number(keep)
        last = _gen_number(previous) if previous else 0
        history = [(n, p) for n, p in _numbered(self.generations) if n <= last]
        stale = history[: max(len(history) - (KEEP_GENERATIONS - 1), 0)]
        stale += [(n, p) for n, p in _numbered(self.generations) if last < n < newest]
        for _number, old in stale:
            _remove(old)
            checkpoint(f"pruned {old.name}")


def _gen_number(name: str) -> int:
    if not name.startswith(GEN_PREFIX) or not name[len(GEN_PREFIX) :].isdigit():
        raise StoreError(f"unexpected index generation name {name!r} in the pointer")
    return int(name[len(GEN_PREFIX) :])


def _numbered(directory: Path) -> list[tuple[int, Path]]:
    """``gen-N`` entries of ``directory`` as (N, path), ascending by N."""
    found = []
    for path in directory.glob(f"{GEN_PREFIX}*"):
        digits = path.name[len(GEN_PREFIX) :]
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _write_json(path: Path, obj: Any, indent: int | None = 1) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=indent), "utf-8")


def _save_array(path: Path, array: np.ndarray, dtype: type) -> None:
    np.save(path, array.astype(dtype), allow_pickle=False)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
