"""Opening a sentence-transformers model directory: offline unless asked otherwise, and
without the per-load progress bars of ``transformers``.

Both the backend (:mod:`rag.embed.sentence_transformers`) and the check of a freshly
built model (:mod:`rag.embed.provision`) open models this way; it sits below both so
that neither imports the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["DEFAULT_DEVICE", "load_sentence_transformer"]

DEFAULT_DEVICE = "cpu"


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence transformers' per-load tqdm bars ("Loading weights …") and restore
    the caller's setting afterwards."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_sentence_transformer(
    name_or_path: str | Path, *, device: str = DEFAULT_DEVICE, local_files_only: bool = True
) -> SentenceTransformer:
    """Load a SentenceTransformer; by default without touching the network."""
    from sentence_transformers import SentenceTransformer

    with _quiet_loading():
        model = SentenceTransformer(
            str(name_or_path), device=device, local_files_only=local_files_only
        )
    model.eval()
    return model
