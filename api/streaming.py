"""Server-sent events from a blocking pipeline call.

``Pipeline.ask`` blocks and reports answer text through an ``on_token`` callback, on
whatever thread it runs. ``answer_events`` runs it on a worker thread and hands the
event loop a queue of events: ``token`` pieces as they come, then exactly one
``answer`` (or ``error``), with ``keepalive`` ticks while nothing happens, so proxies
and clients do not give up on a slow model. If the client leaves, the worker finishes
on its own (the backend's deadline bounds it) and its events are dropped. An answer
drafted by an LLM runs on the thread its ``Slot`` reserved (see ``api.llm_pool``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread

from api.llm_pool import Slot
from rag.answer import Answer

__all__ = [
    "KEEPALIVE_S",
    "SSE_EVENT_SCHEMA",
    "SSE_HEADERS",
    "SSE_KEEPALIVE",
    "Event",
    "answer_events",
    "sse",
    "sse_response_doc",
]

KEEPALIVE_S = 10.0
SSE_KEEPALIVE = ": keep-alive\n\n"  # a comment line: every SSE client skips it
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Event = tuple[
    str, Any
]  # ("token", str) | ("answer", Answer) | ("error", Exception) | ("keepalive", None)
AskFn = Callable[[Callable[[str], None]], Answer]

# How OpenAPI (3.2, §4.14.4) describes one server-sent event; ``data`` holds JSON text.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}

_workers: set[asyncio.Future[Any]] = set()  # keeps running workers referenced


def sse_response_doc(description: str) -> dict[str, Any]:
    """The OpenAPI ``responses[200]`` entry of a route that can answer with a stream."""
    return {
        "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        "description": description,
    }


def sse(data: Any, event: str | None = None) -> str:
    """One event; ``data`` is sent as is when it is a string, else as one line of JSON."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def answer_events(
    ask: AskFn, *, slot: Slot | None = None, keepalive: float = KEEPALIVE_S
) -> AsyncIterator[Event]:
    """Start ``ask`` on a worker thread now (an LLM thread when given its ``slot``, which
    is released when the thread ends) and return the iterator of its events. Starting
    here, not when the response body is first iterated, means a slot can never be
    reserved for a worker that never runs."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()

    def put(event: Event) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, event)
        except RuntimeError:  # the loop is gone (server shutting down); nobody is listening
            pass

    def work() -> None:
        try:
            answer = ask(lambda piece: put(("token", piece)))
        except Exception as exc:  # handed to the stream as an error event
            put(("error", exc))
        else:
            put(("answer", answer))

    limiter = slot.limiter if slot is not None else None
    worker = asyncio.ensure_future(anyio.to_thread.run_sync(work, limiter=limiter))
    _workers.add(worker)
    worker.add_done_callback(_workers.discard)
    if slot is not None:
        worker.add_done_callback(lambda _: slot.release())
    return _drain(queue, keepalive)


async def _drain(queue: asyncio.Queue[Event], keepalive: float) -> AsyncIterator[Event]:
    while True:
        try:
            event = await asyncio.wait_for(queue.get(), keepalive)
        except TimeoutError:
            yield ("keepalive", None)
            continue
        yield event
        if event[0] != "token":
            return
