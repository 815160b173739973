"""Answer backends, chosen by name.

Importing this package imports no backend: each is imported from ``BACKENDS`` when
it is chosen (the extractive one pulls in jieba, the OpenAI one httpx).
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
from zh.text import REFUSALS as REFUSAL

__all__ = [
    "Answer",
    "AnswerBackend",
    "AnswerRequest",
    "BackendError",
    "BACKENDS",
    "Citation",
    "Draft",
    "REFUSAL",
    "Turn",
]

# name → dotted path of the class; imported only when chosen
BACKENDS: dict[str, str] = {
    "extractive": "rag.answer.extractive:ExtractiveBackend",
    "openai": "rag.answer.openai:OpenAIBackend",
    "local": "rag.answer.local:LocalBackend",  # llama.cpp server managed by rag (rag.llm)
}
