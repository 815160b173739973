"""Records ↔ rows of the index database: a chunk's row (text stored once, as offsets
into its document, plus its encoded vectors), its keyword terms (ids in the ``vocab``
table, delta-coded and zlib'ed) and the hashed lines of a raw file that count towards
the boilerplate statistics.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from index.keywords import PLACEHOLDER, tokenize
from index.state import Changes, Manifest
from index.vectors import encode_vectors

__all__ = [
    "chunk_rows",
    "count_lines",
    "line_hash",
    "pack_lines",
    "pack_terms",
    "term_ids",
    "unpack_lines",
    "unpack_terms",
]


def chunk_rows(
    changes: Changes, manifest: Manifest
) -> tuple[list[tuple[Any, ...]], list[list[str]]]:
    """Rows of the chunks table for ``changes`` (the document id in place of its row,
    without the token columns) and each chunk's keyword tokens."""
    docs = {d.doc_id: d for d in changes.documents}
    dim, codec = manifest.dim, manifest.vector_codec
    n = len(changes.chunks)
    vectors = encode_vectors(np.asarray(changes.vectors, np.float32).reshape(-1, dim), codec)
    if len(vectors) != n:
        raise ValueError(f"{n} chunks but {len(vectors)} chunk vectors")
    owner = np.asarray(changes.sentence_owner, dtype=np.int64)
    sentences = encode_vectors(
        np.asarray(changes.sentence_vectors, np.float32).reshape(-1, dim), codec
    )
    if len(sentences) != len(owner) or (len(owner) and (owner.min() < 0 or owner.max() >= n)):
        raise ValueError("sentence vectors do not match their owners")
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(n + 1))
    rows, tokens = [], []
    for i, c in enumerate(changes.chunks):
        doc = docs.get(c.doc_id)
        if doc is None:
            raise ValueError(f"chunk {c.chunk_id} belongs to no document of the write")
        own_text = None if doc.text[c.start : c.end] == c.text else c.text
        header: str | None = None
        own_index: str | None = None
        if c.index_text.endswith("\n" + c.text):
            header = c.index_text[: len(c.index_text) - len(c.text) - 1]
        elif c.index_text:
            own_index = c.index_text
        tokens.append(tokenize(c.index_text or c.text, manifest.tokenizer) or [PLACEHOLDER])
        sent = sentences[order[bounds[i] : bounds[i + 1]]]
        rows.append((
            c.doc_id, c.chunk_id, c.start, c.end, c.section,
            json.dumps(c.section_path, ensure_ascii=False), header, own_text, own_index,
            vectors[i : i + 1].tobytes(), sent.tobytes(),
        ))  # fmt: skip
    return rows, tokens


def term_ids(con: sqlite3.Connection, tokens: set[str]) -> dict[str, int]:
    """Ids of ``tokens`` in the vocabulary, adding the new ones (inside a write)."""
    wanted = sorted(tokens)
    ids: dict[str, int] = {}
    for i in range(0, len(wanted), 500):
        part = wanted[i : i + 500]
        marks = ",".join("?" * len(part))
        ids.update(con.execute(f"SELECT token, id FROM vocab WHERE token IN ({marks})", part))  # noqa: S608
    missing = [t for t in wanted if t not in ids]
    if missing:
        row = con.execute("SELECT value FROM meta WHERE key = 'vocab_next'").fetchone()
        first = int(row[0]) if row else 0
        new = {t: first + j for j, t in enumerate(missing)}
        con.executemany("INSERT INTO vocab (token, id) VALUES (?, ?)", new.items())
        con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('vocab_next', ?)",
                    (str(first + len(missing)),))  # fmt: skip
        ids.update(new)
    return ids


def pack_terms(tokens: Sequence[str], ids: dict[str, int]) -> bytes:
    """A chunk's distinct term ids (ascending, as deltas) then their counts, zlib'ed."""
    counted = Counter(ids[t] for t in tokens)
    terms = np.array(sorted(counted), dtype=np.int64)
    deltas = np.diff(terms, prepend=0).astype("<u4")
    tf = np.array([counted[t] for t in terms], dtype="<u2")
    return zlib.compress(deltas.tobytes() + tf.tobytes())


def unpack_terms(packed: bytes) -> tuple[np.ndarray, np.ndarray]:
    raw = zlib.decompress(packed)
    k = len(raw) // 6
    terms = np.cumsum(np.frombuffer(raw, dtype="<u4", count=k).astype(np.int64))
    return terms, np.frombuffer(raw, dtype="<u2", offset=4 * k).astype(np.int64)


def line_hash(line: str) -> bytes:
    return hashlib.blake2b(line.encode("utf-8"), digest_size=8).digest()


def pack_lines(lines: Iterable[str]) -> bytes:
    return b"".join(sorted({line_hash(line) for line in lines}))


def unpack_lines(packed: bytes) -> list[bytes]:
    return [packed[i : i + 8] for i in range(0, len(packed), 8)]


def count_lines(con: sqlite3.Connection, doc_ids: Iterable[str], step: int) -> None:
    """Add ``step`` to the document count of every line of the given documents."""
    for doc_id in doc_ids:
        row = con.execute("SELECT lines FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None or not row[0]:
            continue
        hashes = [(h,) for h in unpack_lines(row[0])]
        con.executemany("INSERT OR IGNORE INTO lines (hash, n) VALUES (?, 0)", hashes)
        con.executemany(f"UPDATE lines SET n = n + {int(step)} WHERE hash = ?", hashes)  # noqa: S608
        if step < 0:
            con.executemany("DELETE FROM lines WHERE hash = ? AND n <= 0", hashes)
