"""Vector indexes over L2-normalised embeddings (inner product = cosine).

``flat`` is exact and the default; ``hnsw`` and ``ivf`` are approximate, for large
corpora (``ivf`` is exact below ``IVFIndex.MIN_ROWS`` vectors). All support restricting
a search to a set of row ids (metadata filters).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path

import faiss
import numpy as np

__all__ = [
    "VectorIndex",
    "FlatIndex",
    "HNSWIndex",
    "IVFIndex",
    "make_vector_index",
    "VECTOR_INDEXES",
    "VECTOR_CODECS",
    "codec_dtype",
    "encode_vectors",
    "decode_vectors",
]

INDEX_FILE = "vectors.faiss"


class VectorIndex(ABC):
    name: str = ""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._index: faiss.Index = self._new()

    @abstractmethod
    def _new(self) -> faiss.Index: ...

    def _params(self, selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
        return faiss.SearchParameters(sel=selector) if selector is not None else None  # type: ignore[call-arg]

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def build(self, vectors: np.ndarray) -> None:
        self._index = self._new()
        if len(vectors):
            self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (row, score) for one query vector; ``allowed`` restricts the rows."""
        if self.size == 0 or k <= 0:
            return []
        selector = None
        if allowed is not None:
            if len(allowed) == 0:
                return []
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        k = min(k, self.size)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self._index.search(q, k, params=self._params(selector))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def to_bytes(self) -> bytes:
        """The index serialised (what ``load`` reads back from a file)."""
        return bytes(faiss.serialize_index(self._index))

    def save(self, directory: Path, filename: str = INDEX_FILE) -> None:
        faiss.write_index(self._index, str(directory / filename))

    def load(self, directory: Path, filename: str = INDEX_FILE) -> None:
        index = faiss.read_index(str(directory / filename))
        if index.d != self.dim:
            raise ValueError(f"vector index has dimension {index.d}, expected {self.dim}")
        self._index = index


class FlatIndex(VectorIndex):
    name = "flat"

    def _new(self) -> faiss.Index:
        return faiss.IndexFlatIP(self.dim)


class HNSWIndex(VectorIndex):
    name = "hnsw"
    M = 32
    EF_CONSTRUCTION = 200
    EF_SEARCH = 128

    def _new(self) -> faiss.Index:
        index = faiss.IndexHNSWFlat(self.dim, self.M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.EF_CONSTRUCTION
        index.hnsw.efSearch = self.EF_SEARCH
        return index

    def _params(self, selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
        return faiss.SearchParametersHNSW(sel=selector, efSearch=self.EF_SEARCH)  # type: ignore[attr-defined]


class IVFIndex(VectorIndex):
    """Inverted lists: k-means cells (about sqrt(n) of them) holding the float32 vectors;
    a search scans the ``NPROBE`` cells nearest the query. At 1M vectors it builds in
    14-37 s where HNSW takes most of an hour on two cores; 8-bit codes (``SQ8``)
    were measured too and miss recall@10 0.95 at the same scan (benchmarks/bench_million.py,
    README "Scale"). Below ``MIN_ROWS`` vectors it is a flat exact index: too few to
    train cells on, and exact search is fast there anyway."""

    name = "ivf"
    MIN_ROWS = 50_000
    NPROBE = 96
    CODE = "Flat"
    TRAIN_PER_CELL = 64

    def _new(self) -> faiss.Index:
        return faiss.IndexFlatIP(self.dim)

    @staticmethod
    def cells(n: int) -> int:
        return max(1, round(math.sqrt(n)))

    def build(self, vectors: np.ndarray) -> None:
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(x) < self.MIN_ROWS:
            super().build(x)
            return
        nlist = self.cells(len(x))
        index = faiss.index_factory(self.dim, f"IVF{nlist},{self.CODE}", faiss.METRIC_INNER_PRODUCT)
        train = min(len(x), self.TRAIN_PER_CELL * nlist)
        sample = np.random.default_rng(0).choice(len(x), train, replace=False)
        index.train(x[np.sort(sample)])
        index.add(x)
        self._index = index

    def _params(self, selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
        if not hasattr(self._index, "nprobe"):
            return super()._params(selector)
        return faiss.SearchParametersIVF(sel=selector, nprobe=self.NPROBE)  # type: ignore[call-arg]


VECTOR_INDEXES: dict[str, type[VectorIndex]] = {
    "flat": FlatIndex,
    "hnsw": HNSWIndex,
    "ivf": IVFIndex,
}


def make_vector_index(name: str, dim: int) -> VectorIndex:
    try:
        cls = VECTOR_INDEXES[name]
    except KeyError:
        raise ValueError(
            f"unknown vector index {name!r}; choose one of: {', '.join(VECTOR_INDEXES)}"
        ) from None
    return cls(dim)


# -- compact storage of vectors ---------------------------------------------------------
# Vectors are stored once, in the SQLite store, as fixed-size records: ``f32`` (as
# computed), ``f16`` (half precision) or ``i8`` (one float32 scale per vector and one
# signed byte per dimension, ``x ≈ scale * q``; needs no training, so a vector can be
# added alone). See README for the measured effect on retrieval.
VECTOR_CODECS = ("f32", "f16", "i8")


def codec_dtype(codec: str, dim: int) -> np.dtype:
    if codec == "f32":
        return np.dtype([("v", "<f4", (dim,))])
    if codec == "f16":
        return np.dtype([("v", "<f2", (dim,))])
    if codec == "i8":
        return np.dtype([("s", "<f4"), ("v", "i1", (dim,))])
    raise ValueError(f"unknown vector codec {codec!r}; choose one of: {', '.join(VECTOR_CODECS)}")


def encode_vectors(vectors: np.ndarray, codec: str) -> np.ndarray:
    """Rows of ``vectors`` as records of ``codec_dtype`` (``.tobytes()`` is the stored form)."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a matrix of vectors, got shape {x.shape}")
    out = np.zeros(len(x), dtype=codec_dtype(codec, x.shape[1]))
    if codec == "i8":
        scale = np.abs(x).max(axis=1) / 127.0 if x.size else np.zeros(len(x), np.float32)
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        out["s"] = scale
        out["v"] = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.int8)
    else:
        out["v"] = x
    return out


def decode_vectors(data: bytes | np.ndarray, codec: str, dim: int) -> np.ndarray:
    """float32 vectors (n, dim) from stored records (bytes, or a record array)."""
    dtype = codec_dtype(codec, dim)
    rec = np.frombuffer(data, dtype=dtype) if isinstance(data, bytes | bytearray) else data
    if codec == "i8":
        return rec["v"].astype(np.float32) * rec["s"][:, None]
    return rec["v"].astype(np.float32)
