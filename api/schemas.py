"""Request and response bodies of the HTTP API (the contracts the OpenAPI schema shows).

Requests are validated here so that bad input is a 422 with a readable message before
any pipeline work starts; the limits are the pipeline's own (``MAX_QUERY_CHARS``,
``MAX_TOP_K``), so the CLI and the API refuse the same questions. Response models
allow extra fields: a field the pipeline adds later passes through instead of being
silently dropped.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from rag import question as question_rules
from rag.answer import BACKENDS, Turn
from rag.pipeline import MAX_QUERY_CHARS, MAX_TOP_K
from rag.retrieve import RETRIEVERS, Filters

__all__ = [
    "ISO_DATE_PREFIX",
    "MAX_FILTER_DOCS",
    "MAX_HISTORY_TURNS",
    "MAX_TURN_CHARS",
    "AnswerOut",
    "AskRequest",
    "ChatCompletion",
    "ChatCompletionRequest",
    "ChatMessageIn",
    "CitationOut",
    "DeleteOut",
    "DocumentOut",
    "DocumentsOut",
    "ErrorBody",
    "ErrorDetail",
    "FiltersIn",
    "HealthOut",
    "ModelCard",
    "ModelList",
    "PassageOut",
    "ReadyOut",
    "SearchRequest",
    "SearchResponse",
    "SkippedOut",
    "TurnIn",
    "UploadedOut",
    "UploadOut",
    "check_backend",
    "check_question",
    "error_body",
]

ISO_DATE_PREFIX = r"^\d{4}(-\d{2}(-\d{2})?)?$"
MAX_FILTER_DOCS = 100
MAX_HISTORY_TURNS = 50  # earlier turns accepted in one request (the backend uses the last few)
MAX_TURN_CHARS = 8000  # an earlier answer with its sources list can be long
MAX_NAME_CHARS = 200


def check_question(text: str) -> str:
    """The pipeline's rules (``rag.question``), worded as the pipeline words them."""
    return question_rules.check_question(text)


def _valid_text(value: Any) -> Any:
    """Refuse lone surrogates with a clear message, before pydantic's own str check
    (strings inside lists and objects too: a message's content parts)."""
    if isinstance(value, str):
        question_rules.check_text(value, "the text")
    elif isinstance(value, list):
        for item in value:
            _valid_text(item)
    elif isinstance(value, dict):
        for item in value.values():
            _valid_text(item)
    return value


# Every text field of a request: valid Unicode (no lone surrogates), said clearly.
Text = Annotated[str, BeforeValidator(_valid_text)]
# The limits are checked by check_question (for its wording) and shown in the schema.
Question = Annotated[
    str,
    BeforeValidator(_valid_text),
    AfterValidator(check_question),
    Field(json_schema_extra={"minLength": 1, "maxLength": MAX_QUERY_CHARS, "pattern": r"\S"}),
]
# Strict: "5" or true for a count is a client bug worth a 422, not a guess.
TopK = Annotated[StrictInt | None, Field(ge=1, le=MAX_TOP_K, description="Passages to retrieve.")]


# --------------------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    type: str = Field(description="Machine-readable kind, e.g. invalid_request_error.")
    message: str = Field(description="What went wrong, for a person.")
    code: str | None = None
    param: str | None = None


class ErrorBody(BaseModel):
    """Every error, on every route (OpenAI-shaped, so chat clients show the message)."""

    error: ErrorDetail


# --------------------------------------------------------------------------- search / ask
class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: Text | None = Field(
        None, max_length=MAX_NAME_CHARS, description="Part of the speaker's name."
    )
    date_from: Text | None = Field(
        None, pattern=ISO_DATE_PREFIX, description="Earliest date, ISO prefix."
    )
    date_to: Text | None = Field(
        None, pattern=ISO_DATE_PREFIX, description="Latest date, ISO prefix."
    )
    doc_ids: list[Annotated[Text, Field(max_length=MAX_NAME_CHARS)]] = Field(
        default_factory=list, max_length=MAX_FILTER_DOCS
    )

    def to_filters(self) -> Filters:
        return Filters(
            speaker=self.speaker or None,
            date_from=self.date_from,
            date_to=self.date_to,
            doc_ids=tuple(self.doc_ids),
        )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Question = Field(description="Question or keywords.")
    top_k: TopK = None
    filters: FiltersIn | None = None
    retriever: Text | None = Field(
        None, json_schema_extra={"enum": list(RETRIEVERS)}, description="Override the retriever."
    )

    @field_validator("retriever")
    @classmethod
    def _known_retriever(cls, value: str | None) -> str | None:
        return _one_of(value, RETRIEVERS, "retriever")


class PassageOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str
    doc_id: str
    title: str
    speaker: str
    date: str
    section: str
    start: int
    end: int
    score: float


class SearchResponse(BaseModel):
    results: list[PassageOut]


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: Text = Field(max_length=MAX_TURN_CHARS)

    def to_turn(self) -> Turn:
        return Turn(self.role, self.content)


def _one_of(value: str | None, allowed: Collection[str], what: str) -> str | None:
    if value is not None and value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")
    return value


def check_backend(value: str | None) -> str | None:
    return _one_of(value, BACKENDS, "answer backend")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question
    top_k: TopK = None
    backend: Text | None = Field(
        None,
        json_schema_extra={"enum": list(BACKENDS)},
        description="Answer backend (default: the server's).",
    )
    filters: FiltersIn | None = None
    history: list[TurnIn] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_TURNS,
        description="Earlier turns; follow-up questions are resolved against them.",
    )
    stream: StrictBool = Field(
        False, description="Answer as server-sent events: `token` events, then one `answer` event."
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        return check_backend(value)


class CitationOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    n: int
    quote: str = Field(description="Verbatim: the document's cleaned text [start:end].")
    display_quote: str = Field(description="The quote in the question's script.")
    doc_id: str
    title: str
    speaker: str
    date: str
    section: str
    start: int
    end: int


class AnswerOut(BaseModel):
    """``Answer.to_dict()``: the same object ``rag ask --json`` prints."""

    model_config = ConfigDict(extra="allow")

    question: str
    answer: str
    refused: bool
    degraded: bool
    citations: list[CitationOut]
    passages: list[PassageOut]
    backend: str
    notice: str
    unsupported: list[str]
    search_query: str


# --------------------------------------------------------------------------- documents
class DocumentOut(BaseModel):
    doc_id: str
    title: str
    speaker: str
    date: str
    occasion: str
    site: str
    script: str
    chunks: int
    filename: str = Field(
        description="The uploaded file's original name, or the source file's name."
    )
    uploaded: bool = Field(
        description="Added through the API (deletable files under the data dir)."
    )


class DocumentsOut(BaseModel):
    documents: list[DocumentOut]
    total_documents: int
    total_chunks: int
    generation: str


class UploadedOut(BaseModel):
    doc_id: str
    filename: str


class SkippedOut(BaseModel):
    filename: str
    reason: str


class UploadOut(BaseModel):
    added: list[UploadedOut]
    updated: list[UploadedOut]
    unchanged: list[UploadedOut]
    skipped: list[SkippedOut]
    generation: str | None
    total_documents: int
    total_chunks: int


class DeleteOut(BaseModel):
    deleted: str
    generation: str


# --------------------------------------------------------------------------- health
class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    generation: str
    documents: int
    chunks: int
    embed_model: str


# --------------------------------------------------------------------------- OpenAI-compatible
class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Text = Field(max_length=50)
    text: Text | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    # checked as a whole: inside the union the message would name pydantic's internals
    content: Annotated[str | list[ContentPart] | None, BeforeValidator(_valid_text)] = None

    def text(self) -> str:
        """The message's text (the text parts of a multi-part message, joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if p.type == "text" and p.text)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's request that matters here; other fields are accepted and ignored.

    ``temperature`` and ``max_tokens`` are accepted for compatibility; the server's own
    ``llm_*`` settings decide them, so every client gets the same cited-answer behaviour.
    """

    model_config = ConfigDict(extra="ignore")

    model: Text = Field("qunti-rag", max_length=MAX_NAME_CHARS, description="See GET /v1/models.")
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_HISTORY_TURNS + 1)
    # As strict as OpenAI's own API: it refuses "yes" for stream and "5" for max_tokens,
    # and takes any JSON number for temperature.
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: StrictInt | None = Field(None, ge=1)


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    citations: list[CitationOut]
    refused: bool
    degraded: bool


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    finish_reason: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


def error_body(
    type_: str, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, "code": code, "param": param}}
