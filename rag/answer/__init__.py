"""Answer backends, chosen by name.

Importing this package imports no backend: each is imported when it is built from
``BACKENDS`` (:mod:`rag.answer.registry`; the extractive one pulls in jieba, the
OpenAI one httpx).
"""

from __future__ import annotations

from rag.answer.base import (
    Answer,
    AnswerBackend,
    AnswerRequest,
    BackendError,
    Citation,
    Draft,
    Turn,
)
from rag.answer.registry import BACKENDS, Corpus, backend_spec, build_backend
from zh.text import REFUSALS as REFUSAL

__all__ = [
    "Answer",
    "AnswerBackend",
    "AnswerRequest",
    "BackendError",
    "BACKENDS",
    "Citation",
    "Corpus",
    "Draft",
    "REFUSAL",
    "Turn",
    "backend_spec",
    "build_backend",
]
