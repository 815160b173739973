"""The data directory: one SQLite database that grows by what is added.

Layout under ``<home>/index``::

    index.db (+ -wal, -shm)   documents, chunks, vectors, tokens, manifest (SQLite, WAL)
    .lock                     one writer at a time (filelock)

Tables: ``documents`` (cleaned text, metadata, hash of the raw bytes), ``chunks``
(offsets into their document's text, the section header, the keyword tokens, the
chunk vector and the vectors of its sentences, compactly encoded — see
``index.vectors.encode_vectors``) and ``meta`` (the manifest and a commit counter).
Text is stored once: a chunk's text is a slice of its document's (``own_text`` only
when it is not), its indexed text is its section ``header`` + "\n" + text (or
``own_index_text``), its keyword tokens are stored as ``n_tokens`` and ``terms`` (the
ids of its distinct tokens in the ``vocab`` table, ascending, delta-coded, then their
counts; zlib), its ``vector`` is one record of the manifest's codec and ``sentences`` one
record per sentence, in order.

A write (an ingest, a removal) is one SQLite transaction: it deletes the rows of the
documents it replaces and inserts the new ones, so its cost follows what changed, not
the size of the index. SQLite's write-ahead log makes the transaction atomic and
durable (``synchronous=FULL``): ``kill -9`` at any moment leaves the last committed
state, and a reader (``load``, in one read transaction) sees one consistent snapshot
while a writer commits. Each commit increments the counter that names the
"generation" (``gen-000042``), which servers poll to notice a new state.

Vectors live only here; the FAISS and BM25 indexes are memory structures that
``load`` builds from the stored vectors and tokens (no re-embedding, no
re-tokenising). An approximate FAISS index (``hnsw``, ``ivf``: slow to build at scale)
is also kept in a cache file per vector set, ``faiss-<set>-<key>.faiss``, whose key is
a hash of the committed manifest (generation, time, settings): a load reads the file
of its own commit, or builds the index and writes the file (atomically), removing the
files of other commits. The cache is never the only copy of anything.

An index written in the older generation-directory layout is read as it is
(``index.legacy``) and converted into this store by the next write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from index.atomic import atomic_write_bytes, checkpoint, remove_temp_files
from index.keywords import BM25Index
from index.legacy import has_legacy_index, read_legacy, remove_legacy
from index.rows import (
    chunk_rows,
    count_lines,
    line_hash,
    pack_lines,
    pack_terms,
    term_ids,
    unpack_lines,
    unpack_terms,
)
from index.state import (
    DEFAULT_VECTOR_CODEC,
    FORMAT_VERSION,
    Changes,
    IndexState,
    Manifest,
    _corpus_hash,
    corpus_hash,
)
from index.types import Chunk, DocMeta, Document
from index.vectors import VectorIndex, codec_dtype, decode_vectors
from index.vectors import make_vector_index as make_vector_index

__all__ = [
    "DEFAULT_VECTOR_CODEC",
    "FORMAT_VERSION",
    "Changes",
    "IndexState",
    "IndexStore",
    "Manifest",
    "StoreError",
    "corpus_hash",
]

DB_FILE = "index.db"
LOCK_TIMEOUT_S = 600.0
BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 16384
GEN_PREFIX = "gen-"
CACHE_PREFIX = "faiss-"

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    meta TEXT NOT NULL,
    text TEXT NOT NULL,
    lines BLOB NOT NULL DEFAULT x''
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc INTEGER NOT NULL,
    chunk_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    section TEXT NOT NULL,
    section_path TEXT NOT NULL,
    header TEXT,
    own_text TEXT,
    own_index_text TEXT,
    n_tokens INTEGER NOT NULL,
    terms BLOB NOT NULL,
    vector BLOB NOT NULL,
    sentences BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (doc);
CREATE TABLE IF NOT EXISTS vocab (token TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lines (hash BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
"""


class StoreError(RuntimeError):
    """The data directory is missing, locked, corrupt or built for another setup."""


class IndexStore:
    """The store interface: ``writer``, ``load``, ``manifest``, ``indexed_documents``,
    ``update`` (add/replace/remove documents in one transaction) and ``save`` (replace
    everything). Another backend (a server database) would implement the same."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.root = self.home / "index"
        self.db_path = self.root / DB_FILE

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

    # -- connections -----------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # (takes effect when the database is created) a chunk's row is 2-3 KB: with
            # 4 KB pages one row per page would leave each page a third empty
            con.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the index database {self.db_path}: {exc}") from exc
        return con

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection | None]:
        """A read transaction on the database (``None`` when there is none yet)."""
        if not self.db_path.exists():
            yield None
            return
        with closing(self._connect()) as con:
            try:
                con.execute("BEGIN")
                yield con
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the index database {self.db_path}: {exc}") from exc
            finally:
                if con.in_transaction:
                    con.execute("COMMIT")

    # -- reading -----------------------------------------------------------------
    def current_generation(self) -> str | None:
        """Name of the committed state (changes with every write), or ``None``."""
        with self._snapshot() as con:
            if con is not None and _committed(con):
                return _generation(con)
        if has_legacy_index(self.root):
            try:
                name = json.loads((self.root / "CURRENT").read_text(encoding="utf-8"))
                return str(name["generation"])
            except (OSError, ValueError, KeyError) as exc:
                raise StoreError(f"corrupt index pointer {self.root / 'CURRENT'}: {exc}") from exc
        return None

    def manifest(self) -> Manifest | None:
        """The manifest of the committed state, without loading the index."""
        with self._snapshot() as con:
            if con is not None and _committed(con):
                return _read_manifest(con, self.db_path)
        state = self._load_legacy()
        return state.manifest if state is not None else None

    def indexed_documents(self, *, texts: bool = False) -> dict[str, Document]:
        """Every indexed document's id, source, hash and metadata; their texts only
        with ``texts`` (else left empty)."""
        with self._snapshot() as con:
            if con is not None and _committed(con):
                _read_manifest(con, self.db_path)
                column = "text" if texts else "''"
                return {
                    doc_id: Document(doc_id, source, text, DocMeta.from_dict(json.loads(meta)), sha)
                    for doc_id, source, sha, meta, text in con.execute(
                        f"SELECT doc_id, source, sha256, meta, {column} FROM documents ORDER BY id"
                    )
                }
        state = self._load_legacy()
        return dict(state.documents) if state is not None else {}

    def document_texts(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """Cleaned texts of the given indexed documents (those that exist)."""
        with self._snapshot() as con:
            if con is None or not _committed(con):
                return {}
            out: dict[str, str] = {}
            for doc_id in doc_ids:
                row = con.execute("SELECT text FROM documents WHERE doc_id = ?", (doc_id,))
                out.update((doc_id, text) for (text,) in row)
            return out

    def line_counts(self, batch: Sequence[tuple[str, set[str]]]) -> dict[str, int]:
        """For the lines of ``batch`` (each file's source and distinct stripped lines):
        how many indexed documents hold each, not counting those files' own indexed
        versions (same source, or a copy with the very same lines)."""
        with self._snapshot() as con:
            if con is None or not _committed(con):
                return {}
            hashes = {line: line_hash(line) for _, lines in batch for line in lines}
            by_hash: dict[bytes, int] = {}
            wanted = sorted(set(hashes.values()))
            for i in range(0, len(wanted), 500):
                part = wanted[i : i + 500]
                marks = ",".join("?" * len(part))
                by_hash.update(
                    con.execute(f"SELECT hash, n FROM lines WHERE hash IN ({marks})", part)
                )  # noqa: S608
            keys = {_source_key(src) for src, _ in batch}
            packed = {pack_lines(lines) for _, lines in batch}
            for source, own in con.execute("SELECT source, lines FROM documents"):
                if _source_key(source) in keys or own in packed:
                    for h in unpack_lines(own):
                        if h in by_hash:
                            by_hash[h] -= 1
            counts = {line: by_hash.get(h, 0) for line, h in hashes.items()}
            return {line: n for line, n in counts.items() if n > 0}

    def load(self) -> IndexState | None:
        """The committed state (one read transaction), or ``None`` when nothing was indexed."""
        with self._snapshot() as con:
            if con is not None and _committed(con):
                return self._load(con)
        return self._load_legacy()

    def _load(self, con: sqlite3.Connection) -> IndexState:
        manifest = _read_manifest(con, self.db_path)
        manifest.generation = _generation(con) or ""
        dim, codec = manifest.dim, manifest.vector_codec
        try:
            by_row: dict[int, Document] = {}
            documents: dict[str, Document] = {}
            for row, doc_id, source, sha, meta, text in con.execute(
                "SELECT id, doc_id, source, sha256, meta, text FROM documents ORDER BY id"
            ):
                doc = Document(doc_id, source, text, DocMeta.from_dict(json.loads(meta)), sha)
                by_row[row] = documents[doc_id] = doc
            vocab: dict[str, int] = dict(con.execute("SELECT token, id FROM vocab"))
            chunks: list[Chunk] = []
            terms: list[np.ndarray] = []
            counts: list[np.ndarray] = []
            lengths: list[int] = []
            vec_parts: list[bytes] = []
            sent_parts: list[bytes] = []
            for (doc_row, chunk_id, start, end, section, path, header, own_text, own_index,
                 n_tokens, packed, vec, sents) in con.execute(
                'SELECT doc, chunk_id, start, "end", section, section_path, header, own_text, '
                "own_index_text, n_tokens, terms, vector, sentences FROM chunks ORDER BY id"
            ):  # fmt: skip
                doc = by_row[doc_row]
                text = own_text if own_text is not None else doc.text[start:end]
                if own_index is not None:
                    index_text = own_index
                else:
                    index_text = "" if header is None else f"{header}\n{text}"
                chunks.append(Chunk(chunk_id, doc.doc_id, start, end, text, section,
                                    json.loads(path), index_text))  # fmt: skip
                ids, tf = unpack_terms(packed)
                terms.append(ids)
                counts.append(tf)
                lengths.append(n_tokens)
                vec_parts.append(vec)
                sent_parts.append(sents)
        except (sqlite3.Error, KeyError, ValueError, zlib.error) as exc:
            raise StoreError(f"cannot load the index in {self.db_path}: {exc}") from exc
        itemsize = codec_dtype(codec, dim).itemsize
        if any(len(v) != itemsize for v in vec_parts) or any(len(s) % itemsize for s in sent_parts):
            raise StoreError(f"the index in {self.db_path} is inconsistent: bad vector records")
        per_chunk = np.fromiter((len(s) // itemsize for s in sent_parts), np.int64, len(sent_parts))
        state = IndexState(
            manifest=manifest,
            documents=documents,
            chunks=chunks,
            vectors=decode_vectors(b"".join(vec_parts), codec, dim).reshape(-1, dim),
            sentence_vectors=decode_vectors(b"".join(sent_parts), codec, dim).reshape(-1, dim),
            sentence_owner=np.repeat(np.arange(len(chunks), dtype=np.int64), per_chunk),
        )
        self._vector_indexes(state)
        bm = BM25Index(manifest.tokenizer)
        bm.set_postings(vocab, terms, counts, lengths)
        state.bm25 = bm
        return state

    def _vector_indexes(self, state: IndexState) -> None:
        """Set the FAISS indexes of a loaded ``state``: an exact index is built (a copy of
        the vectors), an approximate one read from this commit's cache file, else built
        and cached."""
        manifest = state.manifest
        if manifest.ann == "flat":
            state.rebuild_vector_indexes()
            return
        key = json.dumps(manifest.to_dict(), sort_keys=True).encode()
        digest = hashlib.sha256(key).hexdigest()[:16]
        dim = manifest.dim
        built: dict[str, VectorIndex] = {}
        for kind, vectors in (("chunks", state.vectors), ("sentences", state.sentence_vectors)):
            path = self.root / f"{CACHE_PREFIX}{kind}-{digest}.faiss"
            x = vectors.reshape(-1, dim)
            vi = make_vector_index(manifest.ann, dim)
            cached = path.is_file()
            if cached:
                try:
                    vi.load(self.root, path.name)
                    cached = vi.size == len(x)
                except (RuntimeError, ValueError) as exc:
                    log.warning("ignoring the unreadable FAISS cache %s: %s", path, exc)
                    cached = False
            if not cached:
                vi.build(x)
                try:
                    atomic_write_bytes(path, vi.to_bytes())
                except OSError as exc:
                    log.warning("cannot write the FAISS cache %s: %s", path, exc)
            built[kind] = vi
        for old in self.root.glob(f"{CACHE_PREFIX}*.faiss"):
            if not old.name.endswith(f"-{digest}.faiss"):
                old.unlink(missing_ok=True)
        state.vector_index, state.sentence_index = built["chunks"], built["sentences"]

    def _load_legacy(self) -> IndexState | None:
        """An index of the generation-directory layout, read as it is."""
        if not has_legacy_index(self.root):
            return None
        try:
            meta, documents, chunks, vectors, sentences, owner = read_legacy(self.root)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"the index in {self.root} is in the old generation-directory format and "
                f"cannot be read ({exc}); re-run `rag ingest --rebuild` to rebuild it"
            ) from exc
        manifest = Manifest.from_dict({**meta, "format_version": FORMAT_VERSION})
        state = IndexState(manifest, documents, chunks, vectors, None, None, sentences, owner)
        generation = manifest.generation
        state.rebuild_indexes()
        manifest.generation = generation
        return state

    # -- writing -----------------------------------------------------------------
    def save(self, state: IndexState) -> str:
        """Replace the whole index by ``state``. Call under ``writer()``."""
        return self.update(state.manifest, Changes.of_state(state), replace_all=True)

    def update(
        self,
        manifest: Manifest,
        changes: Changes | None = None,
        remove: Iterable[str] = (),
        *,
        replace_all: bool = False,
    ) -> str:
        """In one transaction: drop the documents in ``remove`` and those ``changes``
        rewrites (or every document, with ``replace_all``), insert ``changes``, store
        ``manifest``. Returns the new generation's name. Call under ``writer()``."""
        self.root.mkdir(parents=True, exist_ok=True)
        if replace_all and has_legacy_index(self.root):
            migrated = True  # replaced whole: nothing of the old layout to convert
        else:
            migrated = self._migrate_legacy()
        name = self._write(manifest, changes or Changes(), set(remove), replace_all)
        if migrated:
            remove_legacy(self.root)
        return name

    def _write(
        self,
        manifest: Manifest,
        changes: Changes,
        remove: set[str],
        replace_all: bool,
        number: int | None = None,
    ) -> str:
        # encode and tokenise before the transaction
        rows, tokens = chunk_rows(changes, manifest)
        with closing(self._connect()) as con:
            try:
                con.execute("BEGIN IMMEDIATE")
                checkpoint("transaction begun")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
                if replace_all:
                    for table in ("chunks", "documents", "vocab"):
                        con.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
                    con.execute("DELETE FROM meta WHERE key = 'vocab_next'")
                gone = remove | {d.doc_id for d in changes.documents}
                if replace_all:
                    con.execute("DELETE FROM lines")
                else:
                    count_lines(con, gone, -1)
                for doc_id in gone:
                    con.execute("DELETE FROM chunks WHERE doc IN "
                                "(SELECT id FROM documents WHERE doc_id = ?)", (doc_id,))  # fmt: skip
                    con.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
                checkpoint("removed replaced documents")
                doc_rows: dict[str, int] = {}
                for d in changes.documents:
                    cur = con.execute(
                        "INSERT INTO documents (doc_id, source, sha256, meta, text, lines) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (d.doc_id, d.source, d.sha256,
                         json.dumps(d.meta.to_dict(), ensure_ascii=False), d.text,
                         pack_lines(changes.lines.get(d.doc_id, set()))),
                    )  # fmt: skip
                    assert cur.lastrowid is not None
                    doc_rows[d.doc_id] = cur.lastrowid
                count_lines(con, {d.doc_id for d in changes.documents}, +1)
                checkpoint("wrote documents")
                ids = term_ids(con, {t for toks in tokens for t in toks})
                con.executemany(
                    'INSERT INTO chunks (doc, chunk_id, start, "end", section, section_path, '
                    "header, own_text, own_index_text, n_tokens, terms, vector, sentences) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (doc_rows[r[0]], *r[1:-2], len(toks), pack_terms(toks, ids), *r[-2:])
                        for r, toks in zip(rows, tokens, strict=True)
                    ),
                )
                checkpoint("wrote chunks")
                stored = Manifest.from_dict(manifest.to_dict())
                stored.format_version = FORMAT_VERSION
                stored.n_documents = con.execute("SELECT count(*) FROM documents").fetchone()[0]
                stored.n_chunks = con.execute("SELECT count(*) FROM chunks").fetchone()[0]
                stored.corpus_hash = _corpus_hash(
                    con.execute("SELECT doc_id, sha256 FROM documents ORDER BY doc_id")
                )
                stored.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                number = number if number is not None else _generation_number(con) + 1
                stored.generation = f"{GEN_PREFIX}{number:06d}"
                con.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [("manifest", json.dumps(stored.to_dict(), ensure_ascii=False)),
                     ("generation", str(number))],
                )  # fmt: skip
                checkpoint("wrote manifest")
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            checkpoint("committed")
            # keep the write-ahead log from holding a copy of a large write
            # (without waiting: while a reader holds an old snapshot, a later write does it)
            try:
                con.execute("PRAGMA busy_timeout = 0")
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error:
                pass
        checkpoint("log truncated")
        for key in ("generation", "created", "n_documents", "n_chunks", "corpus_hash"):
            setattr(manifest, key, getattr(stored, key))
        return stored.generation

    def _migrate_legacy(self) -> bool:
        """Convert an index of the old layout into the database (its own transaction);
        ``True`` when the old files are to be removed after this write."""
        if not has_legacy_index(self.root):
            return False
        remove_temp_files(self.root)
        with self._snapshot() as con:
            if con is not None and _generation_number(con):
                return True  # converted before, the removal was interrupted
        state = self._load_legacy()
        if state is None:
            return False
        log.warning("converting the index in %s to the SQLite store (format %d)",
                    self.root, FORMAT_VERSION)  # fmt: skip
        number = _legacy_number(state.manifest.generation)
        self._write(state.manifest, Changes.of_state(state), set(), True, number)
        return True


def _source_key(source: str) -> str:
    return os.path.realpath(source)


def _read_manifest(con: sqlite3.Connection, where: Path) -> Manifest:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the index database {where}: {exc}") from exc
    if row is None:
        raise StoreError(f"the index database {where} holds no manifest")
    try:
        manifest = Manifest.from_dict(json.loads(row[0]))
    except (ValueError, TypeError) as exc:
        raise StoreError(f"corrupt manifest in the index database {where}: {exc}") from exc
    if manifest.format_version != FORMAT_VERSION:
        raise StoreError(
            f"index format {manifest.format_version} in {where} is not supported "
            f"(expected {FORMAT_VERSION}); re-run `rag ingest --rebuild`"
        )
    return manifest


def _generation_number(con: sqlite3.Connection) -> int:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    except sqlite3.OperationalError:
        return 0  # no tables yet
    return int(row[0]) if row else 0


def _committed(con: sqlite3.Connection | None) -> bool:
    return con is not None and _generation_number(con) > 0


def _generation(con: sqlite3.Connection) -> str | None:
    number = _generation_number(con)
    return f"{GEN_PREFIX}{number:06d}" if number else None


def _legacy_number(name: str) -> int:
    digits = name[len(GEN_PREFIX) :] if name.startswith(GEN_PREFIX) else ""
    return int(digits) if digits.isdigit() else 1
