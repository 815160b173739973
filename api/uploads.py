"""Uploaded files on disk: server-chosen names under ``<home>/uploads``, nothing else.

A client's file name is never part of a path. The stored name is derived from a hash
of the (sanitised) original name, so uploading the same name again updates that
document instead of adding a second one, the way re-ingesting an edited file does.
The original name travels only as metadata, in the ``.meta.json`` sidecar the loader
already reads (``DocMeta`` ignores the extra key). Files are written to a fresh
temporary name opened with ``O_EXCL | O_NOFOLLOW`` and renamed into place; a rename
replaces a planted symlink rather than writing through it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from index.atomic import atomic_write_bytes
from index.store import StoreError
from rag.load import SIDECAR_SUFFIX, SUPPORTED_SUFFIXES
from rag.types import Document

__all__ = [
    "ALLOWED_SUFFIXES",
    "DOC_ID_PREFIX",
    "UPLOAD_DIR",
    "StoredUpload",
    "UnsupportedType",
    "check_type",
    "clean_filename",
    "clean_orphans",
    "discard",
    "original_filename",
    "store_upload",
    "upload_root",
]

UPLOAD_DIR = "uploads"
DOC_ID_PREFIX = "upload-"
ALLOWED_SUFFIXES: frozenset[str] = frozenset(SUPPORTED_SUFFIXES)
MAX_FILENAME_CHARS = 200
NAME_KEY = "original_filename"
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


class UnsupportedType(ValueError):
    """The file's type is not on the allow-list."""


@dataclass(frozen=True)
class StoredUpload:
    doc_id: str
    filename: str  # the client's name, cleaned: metadata only
    path: Path


def upload_root(home: Path) -> Path:
    """``<home>/uploads``, created if needed; refused if it is a symlink or not a folder."""
    root = Path(home) / UPLOAD_DIR
    try:
        if not root.is_symlink():
            root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the upload folder {root}: {exc}") from exc
    if root.is_symlink() or not root.is_dir():
        raise StoreError(f"the upload folder {root} must be a real directory, not a link")
    return root


def clean_filename(raw: str | None) -> str:
    """The last path component of what the client sent, without control characters."""
    name = _UNPRINTABLE.sub("", raw or "")
    name = PureWindowsPath(PurePosixPath(name).name).name.strip()
    if name in ("", ".", ".."):
        return "upload"
    if len(name) > MAX_FILENAME_CHARS:  # shorten the stem: the suffix says the file's type
        suffix = PurePosixPath(name).suffix
        suffix = suffix if len(suffix) <= 16 else ""
        name = name[: MAX_FILENAME_CHARS - len(suffix) - 1] + "…" + suffix
    return name


def check_type(filename: str) -> str:
    """The lower-case suffix of an allowed file name; raise UnsupportedType otherwise."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        allowed = ", ".join(sorted(ALLOWED_SUFFIXES))
        raise UnsupportedType(f"unsupported file type {suffix or '(none)'!r}; allowed: {allowed}")
    return suffix


def store_upload(root: Path, raw_name: str | None, data: bytes) -> StoredUpload:
    """Write one uploaded file (and its sidecar) under ``root``; raise UnsupportedType."""
    filename = clean_filename(raw_name)
    suffix = check_type(filename)
    doc_id = DOC_ID_PREFIX + hashlib.sha256(filename.encode("utf-8")).hexdigest()[:16]
    path = root / f"{doc_id}{suffix}"
    sidecar = json.dumps({NAME_KEY: filename}, ensure_ascii=False).encode("utf-8")
    atomic_write_bytes(path.with_name(path.name + SIDECAR_SUFFIX), sidecar)
    atomic_write_bytes(path, data)
    return StoredUpload(doc_id=doc_id, filename=filename, path=path)


def _is_upload(source: str, root: Path) -> bool:
    path = Path(os.path.abspath(source))
    return path.parent == Path(os.path.abspath(root)) and path.name.startswith(DOC_ID_PREFIX)


def original_filename(doc: Document, root: Path) -> str | None:
    """The name an uploaded document was sent with; ``None`` for other documents."""
    if not _is_upload(doc.source, root):
        return None
    try:
        data = json.loads(Path(doc.source + SIDECAR_SUFFIX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Path(doc.source).name
    name = data.get(NAME_KEY) if isinstance(data, dict) else None
    return str(name) if name else Path(doc.source).name


def discard(source: str, root: Path) -> None:
    """Delete an uploaded file and its sidecar (never anything outside ``root``)."""
    if not _is_upload(source, root):
        return
    for path in (Path(source), Path(source + SIDECAR_SUFFIX)):
        path.unlink(missing_ok=True)  # unlink removes a link itself, never its target


def clean_orphans(root: Path, indexed_sources: set[str]) -> list[str]:
    """Delete what a killed upload left in ``root``: temporary ``*.tmp`` files, uploaded
    files the index does not hold, and sidecars whose file is gone. Returns the names
    removed. Call it only while no upload can run (at start, under the write lock)."""
    if not root.is_dir() or root.is_symlink():
        return []
    indexed = {os.path.abspath(src) for src in indexed_sources}
    removed: list[str] = []
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name.endswith(".tmp"):
            orphan = True
        elif not name.startswith(DOC_ID_PREFIX):
            continue  # not ours: leave it
        elif name.endswith(SIDECAR_SUFFIX):
            orphan = not entry.with_name(name.removesuffix(SIDECAR_SUFFIX)).exists()
        else:
            orphan = os.path.abspath(entry) not in indexed
            if orphan:
                Path(str(entry) + SIDECAR_SUFFIX).unlink(missing_ok=True)
        if orphan and (entry.is_file() or entry.is_symlink()):
            entry.unlink(missing_ok=True)
            removed.append(name)
    return removed
