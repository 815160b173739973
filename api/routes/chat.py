"""``POST /v1/chat/completions``: the system as an OpenAI-compatible chat model.

The last user message is the question; earlier user and assistant messages are the
conversation the pipeline resolves follow-ups against (system prompts are ignored:
the answering rules are the server's). The answer text ends with a readable sources
list, because most chat clients show only ``content``; the same citations travel as
structured data (``citations``, ``refused``, ``degraded``) on the message, or on the
final chunk when streaming. When a client sends an earlier answer back as history,
its sources list is cut off again before the pipeline sees it.

Streaming sends the *verified* answer: a chat client cannot take back text it has
shown, and citation checking may drop sentences or turn a draft into a refusal, so
pieces are sent once the answer is final (with keep-alive comments until then).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import GENERATION_HEADER, LlmPoolDep, MetricsDep, ServedPipelineDep, SettingsDep
from api.errors import ApiError, documented, exception_body
from api.routes.models import backend_for_model
from api.schemas import (
    MAX_TURN_CHARS,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessageIn,
    check_question,
)
from api.streaming import SSE_HEADERS, SSE_KEEPALIVE, answer_events, sse, sse_response_doc
from rag.answer import Answer, Turn
from zh.text import byline, count_tokens, question_language

__all__ = ["SOURCES_LABEL", "format_sources", "router", "split_messages", "strip_sources"]

router = APIRouter(prefix="/v1", tags=["openai"])

SOURCES_LABEL = {"zh-hans": "来源：", "zh-hant": "來源：", "en": "Sources:"}
_SOURCES_TAIL = re.compile(r"\n\n(?:来源：|來源：|Sources:)\n\[1\] .*\Z", re.S)
STREAM_PIECE_CHARS = 24  # characters per streamed content delta
HISTORY_ROLES = ("user", "assistant")


def strip_sources(text: str) -> str:
    """An earlier answer without the sources list this route appended to it."""
    return _SOURCES_TAIL.sub("", text)


def format_sources(answer: Answer, language: str) -> str:
    """``\\n\\n来源：\\n[1] 《title》 speaker date · section：“quote”`` (empty when refused)."""
    if answer.refused or not answer.citations:
        return ""
    lines = [SOURCES_LABEL.get(language, SOURCES_LABEL["zh-hans"])]
    for c in answer.citations:
        head = byline(c.title or c.doc_id, c.speaker, c.date, c.section)
        lines.append(f"[{c.n}] {head}：“{c.display_quote or c.quote}”")
    return "\n\n" + "\n".join(lines)


def split_messages(messages: Sequence[ChatMessageIn]) -> tuple[str, list[Turn]]:
    """The question (the last message, which must be the user's) and the history."""
    last = messages[-1]
    if last.role != "user":
        raise ApiError(
            422,
            'the last message must be the user\'s question (role "user")',
            code="invalid_messages",
            param="messages",
        )
    try:
        question = check_question(last.text())
    except ValueError as exc:
        raise ApiError(422, str(exc), code="invalid_question", param="messages") from None
    history: list[Turn] = []
    for i, m in enumerate(messages[:-1]):
        if m.role not in HISTORY_ROLES:
            continue
        text = m.text()
        if len(text) > MAX_TURN_CHARS:
            raise ApiError(
                422,
                f"message {i} is {len(text)} characters long; earlier messages "
                f"may have at most {MAX_TURN_CHARS}",
                param="messages",
            )
        if m.role == "assistant":
            text = strip_sources(text)
        if text.strip():
            history.append(Turn(m.role, text))
    return question, history


def _usage(messages: Sequence[ChatMessageIn], content: str) -> dict[str, int]:
    prompt = sum(count_tokens(m.text()) for m in messages)
    completion = count_tokens(content)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _extras(answer: Answer) -> dict[str, Any]:
    return {
        "citations": [c.to_dict() for c in answer.citations],
        "refused": answer.refused,
        "degraded": answer.degraded,
    }


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: sse_response_doc(
            "A chat completion, or with `stream: true` `chat.completion.chunk` "
            "events ending in `data: [DONE]`."
        ),
        **documented(404, 413, 422, 503),
    },
)
async def chat_completions(
    body: ChatCompletionRequest,
    pipeline: ServedPipelineDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    pool: LlmPoolDep,
) -> Any:
    backend = backend_for_model(body.model, settings)
    question, history = split_messages(body.messages)
    language = question_language(question)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def run(on_token: Callable[[str], None] | None = None) -> Answer:
        answer = pipeline.ask(question, backend=backend, history=history)
        metrics.observe_answer(answer, "chat")
        return answer

    if not body.stream:
        answer = await pool.run(backend, run)
        content = answer.answer + format_sources(answer, language)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content, **_extras(answer)},
                }
            ],
            "usage": _usage(body.messages, content),
        }

    answers = answer_events(run, slot=pool.reserve_for(backend))

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                **extra,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    async def events() -> AsyncIterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        async for kind, value in answers:
            if kind == "keepalive":
                yield SSE_KEEPALIVE
            elif kind == "answer":
                content = value.answer + format_sources(value, language)
                for i in range(0, len(content), STREAM_PIECE_CHARS):
                    yield chunk({"content": content[i : i + STREAM_PIECE_CHARS]})
                yield chunk({}, "stop", usage=_usage(body.messages, content), **_extras(value))
            elif kind == "error":
                yield sse(exception_body(value))
        yield sse("[DONE]")

    headers = {**SSE_HEADERS, GENERATION_HEADER: pipeline.generation}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
