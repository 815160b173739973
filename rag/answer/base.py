"""The answering seam: a backend turns a question and numbered passages into a draft
whose claims carry ``[n]`` markers; ``rag.cite`` then verifies every marker against the
passage it names and builds the citations the user sees."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag.types import Passage

__all__ = [
    "AnswerBackend",
    "AnswerRequest",
    "Answer",
    "BackendError",
    "Citation",
    "Draft",
    "Turn",
    "TokenCallback",
]

TokenCallback = Callable[[str], None]


class BackendError(RuntimeError):
    """The backend could not produce an answer (unreachable, timed out, cut stream, bad reply)."""


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str


@dataclass
class AnswerRequest:
    question: str  # as the user typed it
    passages: Sequence[Passage]  # numbered from 1 in this order
    history: Sequence[Turn] = ()
    language: str = "zh-hans"  # "zh-hans" | "zh-hant" | "en": the language/script to answer in
    search_query: str = ""  # the standalone question used for retrieval (follow-ups resolved)
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass
class Draft:
    """A backend's raw answer: text whose sentences cite passages as ``[n]`` (1-based)."""

    text: str
    refused: bool = False  # the backend itself said the passages do not answer
    usage: dict[str, Any] = field(default_factory=dict)
    model: str = ""


class AnswerBackend(ABC):
    name: str = ""
    streams: bool = False  # whether ``on_token`` is called as text is produced

    @abstractmethod
    def generate(self, request: AnswerRequest, on_token: TokenCallback | None = None) -> Draft:
        """Answer from ``request.passages`` only; raise BackendError on failure."""

    def search_query(self, query: str, language: str) -> str:
        """The text to retrieve passages with for ``query`` (asked in ``language``); a
        backend may rewrite it (the local one translates English questions). It must
        not raise: on failure it returns ``query``."""
        return query

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""


@dataclass
class Citation:
    n: int
    quote: str  # verbatim cleaned text: document.text[start:end]
    doc_id: str
    title: str
    speaker: str
    date: str
    section: str
    start: int
    end: int
    display_quote: str = ""  # the quote in the question's script (for display only)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "quote": self.quote,
            "display_quote": self.display_quote or self.quote,
            "doc_id": self.doc_id,
            "title": self.title,
            "speaker": self.speaker,
            "date": self.date,
            "section": self.section,
            "start": self.start,
            "end": self.end,
        }


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool = False
    degraded: bool = False
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    backend: str = ""
    notice: str = ""  # human-readable note, e.g. why the answer is degraded
    unsupported: list[str] = field(default_factory=list)  # sentences left without support
    search_query: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "degraded": self.degraded,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "backend": self.backend,
            "notice": self.notice,
            "unsupported": self.unsupported,
            "search_query": self.search_query,
        }
