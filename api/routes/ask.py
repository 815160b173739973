"""``POST /v1/ask``: a cited answer (``Answer.to_dict()``), whole or as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import GENERATION_HEADER, LlmPoolDep, MetricsDep, ServedPipelineDep
from api.errors import documented, exception_body
from api.schemas import AnswerOut, AskRequest
from api.streaming import (
    SSE_HEADERS,
    SSE_KEEPALIVE,
    Event,
    answer_events,
    sse,
    sse_response_doc,
)
from rag.answer import Answer

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["answer"])

STREAM_DOC = (
    'With `stream: true`: `event: token` events (`{"text": ...}`, the draft as the backend '
    "writes it), then one `event: answer` with the full answer object (authoritative: "
    "citations verified, unsupported sentences removed), or one `event: error`."
)


@router.post(
    "/ask",
    response_model=AnswerOut,
    responses={
        200: sse_response_doc("The answer, or with `stream: true` a stream of events."),
        **documented(413, 422, 503),
    },
    description="Answer from the speeches, every claim cited, or say the speeches do not "
    "answer it (`refused`). " + STREAM_DOC + " Answers drafted by a language model run "
    "on their own bounded set of threads; when all are busy the answer is 503 `llm_busy`.",
)
async def ask(
    body: AskRequest, pipeline: ServedPipelineDep, metrics: MetricsDep, pool: LlmPoolDep
) -> Any:
    filters = body.filters.to_filters() if body.filters else None
    history = [t.to_turn() for t in body.history]

    def run(on_token: Callable[[str], None] | None = None) -> Answer:
        answer = pipeline.ask(
            body.question,
            k=body.top_k,
            backend=body.backend,
            filters=filters,
            history=history,
            on_token=on_token,
        )
        metrics.observe_answer(answer, "ask")
        return answer

    backend = body.backend or pipeline.settings.backend
    if not body.stream:
        return (await pool.run(backend, run)).to_dict()
    events = answer_events(run, slot=pool.reserve_for(backend))
    headers = {**SSE_HEADERS, GENERATION_HEADER: pipeline.generation}
    return StreamingResponse(_sse(events), media_type="text/event-stream", headers=headers)


async def _sse(events: AsyncIterator[Event]) -> AsyncIterator[str]:
    async for kind, value in events:
        if kind == "token":
            yield sse({"text": value}, "token")
        elif kind == "keepalive":
            yield SSE_KEEPALIVE
        elif kind == "answer":
            yield sse(value.to_dict(), "answer")
        else:
            yield sse(exception_body(value), "error")
