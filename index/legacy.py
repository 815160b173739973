"""Reading an index written in the generation-directory layout (format 2, before the
SQLite store): ``index/CURRENT`` naming ``index/generations/gen-N/`` with
``manifest.json``, ``docstore.json``, ``vectors.npy`` and ``sentences.npy`` +
``sentence_owner.npy``. ``IndexStore`` serves such an index read-only and converts it
into the SQLite store at the next write.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from index.types import Chunk, DocMeta, Document

__all__ = ["LEGACY_FORMAT", "has_legacy_index", "read_legacy", "remove_legacy"]

LEGACY_FORMAT = 2


def has_legacy_index(root: Path) -> bool:
    return (root / "CURRENT").exists() or (root / "generations").is_dir()


def read_legacy(
    root: Path,
) -> tuple[dict[str, Any], dict[str, Document], list[Chunk], np.ndarray, np.ndarray, np.ndarray]:
    """(manifest dict, documents, chunks, chunk vectors, sentence vectors, sentence owner)
    of the committed generation; raises ``ValueError``/``OSError``/``KeyError`` when it
    cannot be read whole."""
    name = _read_json(root / "CURRENT")["generation"]
    gdir = root / "generations" / str(name)
    manifest = _read_json(gdir / "manifest.json")
    if manifest.get("format_version") != LEGACY_FORMAT:
        raise ValueError(f"index format {manifest.get('format_version')} in {gdir} is unknown")
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
    sentences = np.load(gdir / "sentences.npy", allow_pickle=False)
    owner = np.load(gdir / "sentence_owner.npy", allow_pickle=False)
    if len(vectors) != len(chunks) or len(sentences) != len(owner):
        raise ValueError(f"index generation {gdir} is inconsistent")
    return manifest, documents, chunks, vectors, sentences, owner


def remove_legacy(root: Path) -> None:
    """Delete the old layout (after its content was committed to the SQLite store)."""
    shutil.rmtree(root / "generations", ignore_errors=True)
    (root / "CURRENT").unlink(missing_ok=True)
    for leftover in root.glob(".CURRENT.*.tmp"):
        leftover.unlink(missing_ok=True)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
