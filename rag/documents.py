"""A batch of input files → ``Document``s: the load and clean steps, in order.

Each file is read and decoded (:mod:`rag.load`, with its metadata sidecar), then
cleaned (:mod:`rag.clean`) against the lines the other files of the batch (and, when
the caller knows them, the documents already indexed) share, and given an id that
stays stable across runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.clean import clean_document, line_set
from rag.load import (
    DEFAULT_MAX_FILE_MB,
    DEFAULT_MAX_TEXT_MB,
    LoadError,
    RawFile,
    iter_input_files,
    read_file,
    read_sidecar,
)
from rag.types import Document, SkippedFile

__all__ = ["assign_doc_ids", "load_documents"]


def load_documents(
    paths: Sequence[Path],
    *,
    max_text_mb: float = DEFAULT_MAX_TEXT_MB,
    max_file_mb: float = DEFAULT_MAX_FILE_MB,
    known_lines: Callable[[list[tuple[str, set[str]]]], Mapping[str, int]] | None = None,
) -> tuple[list[Document], list[SkippedFile]]:
    """Load and clean a batch; a bad file becomes a ``SkippedFile``, never an exception.
    Files over the size limits (see ``rag.load.read_file``) are skipped as too large.

    ``known_lines`` is given each loaded file's (source, distinct stripped lines) and
    returns, per line, how many documents outside the batch hold it (e.g. from the
    index), so a file cleans the same whether it comes alone or with the others.

    ``doc_id`` is the file stem; a later file with a stem already taken gets a
    short hash of its path appended (of the path, not the content, so editing
    the file keeps its id).
    """
    files, skipped = iter_input_files(paths)
    loaded: list[tuple[RawFile, dict[str, Any] | None]] = []
    for path in files:
        try:
            raw = read_file(path, max_text_mb=max_text_mb, max_file_mb=max_file_mb)
            loaded.append((raw, read_sidecar(path)))
        except LoadError as exc:
            skipped.append(SkippedFile(exc.path, exc.reason))

    line_sets = [line_set(raw.text) for raw, _ in loaded]
    doc_freq = Counter(line for lines in line_sets for line in lines)
    if known_lines is not None:
        doc_freq.update(
            known_lines(
                [(str(raw.path), own) for (raw, _), own in zip(loaded, line_sets, strict=True)]
            )
        )
    docs: list[Document] = []
    taken: set[str] = set()
    for (raw, sidecar), own in zip(loaded, line_sets, strict=True):
        doc_id = raw.path.stem
        if doc_id in taken:
            doc_id = _with_path_hash(doc_id, _source_key(str(raw.path)))
        shared = [line for line in own if doc_freq[line] > 1]
        doc = clean_document(
            raw, doc_id=doc_id, source=str(raw.path), sidecar=sidecar, others=shared
        )
        if not doc.text.strip():
            skipped.append(
                SkippedFile(str(raw.path), "no speech text left after removing boilerplate")
            )
            continue
        taken.add(doc_id)
        docs.append(doc)
    return docs, skipped


def _source_key(source: str) -> str:
    """What makes two sources the same file: the resolved path."""
    return os.path.realpath(source)


def _with_path_hash(stem: str, key: str, length: int = 8) -> str:
    return f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:length]}"


def assign_doc_ids(docs: Sequence[Document], indexed: Mapping[str, Document]) -> list[Document]:
    """``docs`` with ids that no other source holds in ``indexed`` or in the batch.

    A file already indexed (same resolved path, or the very same bytes moved elsewhere)
    keeps its id, so ingesting it again updates that document in place. Any other file
    gets its stem, or, when another source already holds the stem, the stem plus a
    short hash of its resolved path: stable across runs, readable, and distinct.
    """
    by_source = {_source_key(d.source): doc_id for doc_id, d in indexed.items()}
    keys = [_source_key(d.source) for d in docs]
    ids = [by_source.get(key) for key in keys]  # files indexed before keep their ids
    given = {doc_id for doc_id in ids if doc_id is not None}

    def free(doc_id: str, doc: Document) -> bool:
        held = indexed.get(doc_id)
        return doc_id not in given and (held is None or held.sha256 == doc.sha256)

    out: list[Document] = []
    for doc, key, doc_id in zip(docs, keys, ids, strict=True):
        if doc_id is None:
            stem = Path(doc.source).stem
            candidates = [stem] + [_with_path_hash(stem, key, n) for n in (8, 16, 64)]
            doc_id = next(c for c in candidates if free(c, doc))
            given.add(doc_id)
        out.append(doc if doc.doc_id == doc_id else dataclasses.replace(doc, doc_id=doc_id))
    return out
