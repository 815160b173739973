"""Answer backends, chosen by name."""

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
from rag.answer.extractive import REFUSAL, ExtractiveBackend

__all__ = [
    "Answer",
    "AnswerBackend",
    "AnswerRequest",
    "BackendError",
    "BACKENDS",
    "Citation",
    "Draft",
    "ExtractiveBackend",
    "REFUSAL",
    "Turn",
]

# name → dotted path of the class; imported only when chosen
BACKENDS: dict[str, str] = {
    "extractive": "rag.answer.extractive:ExtractiveBackend",
    "openai": "rag.answer.openai:OpenAIBackend",
    "local": "rag.answer.local:LocalBackend",  # llama.cpp server managed by rag (rag.llm)
}
