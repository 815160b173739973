"""Answer with any OpenAI-compatible ``/v1/chat/completions`` server.

OpenAI, DeepSeek, DashScope's compatible mode, vLLM, llama.cpp's server and Ollama's
``/v1`` all speak this protocol. The backend's one promise to the pipeline is to fail
*cleanly*: whatever goes wrong (unreachable server, timeout, rate limit, cut stream,
malformed reply, even a failing token callback) surfaces as ``BackendError`` within
the overall deadline, so the pipeline can fall back to the extractive backend.

Retries are bounded, use full-jitter exponential backoff and honour ``Retry-After``,
but only happen before any answer text has been delivered: once tokens have reached
the caller a retry would show them a second, different answer.

The overall deadline is a wall-clock bound on the whole call, whatever the server
sends. It is checked before each attempt, before each sleep and on every chunk of
bytes received (SSE comments and partial lines included), every network wait is
capped by the time remaining when the attempt began, and a watchdog timer shuts the
connection down when the deadline passes, so a read blocked on a server that sends
nothing, or one byte at a time, returns at once. Events are parsed by ``httpx-sse``,
which hands over only complete events; it reads the body through ``_Guarded``, which
checks the deadline on every chunk of bytes, so a stream of keep-alive comments (no
event ever) still gives control back to the deadline check.
"""

from __future__ import annotations

import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from httpx_sse import EventSource

import prompts
from rag.answer.base import AnswerBackend, AnswerRequest, BackendError, Draft, TokenCallback
from rag.answer.budget import fit_passages
from rag.settings import Settings
from rag.types import Passage
from zh.text import byline, count_tokens

__all__ = ["OpenAIBackend", "build_messages", "parse_retry_after", "render_passage"]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429})  # plus every 5xx
MAX_BODY_BYTES = 4 * 1024 * 1024  # a chat reply is kilobytes; refuse to buffer a runaway body
MAX_ERROR_CHARS = 300  # how much of a server's error text goes into BackendError
HISTORY_TURN_CHARS = 300  # each earlier turn is cut to this many characters
_MARKER = re.compile(r"\[\d+\]")


class _RejectsStreamOptions(Exception):
    """The server refused the ``stream_options`` field (it predates it)."""


class _Retryable(Exception):
    """An attempt failed in a way worth retrying (no answer text delivered yet)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Watchdog:
    """Shuts an attempt's connection down when the deadline passes.

    A socket ``close()`` from another thread does not wake a thread blocked in
    ``recv``; ``shutdown()`` does (the read returns end-of-file at once). The socket is
    known from the ``connect_tcp`` trace event for a new connection, and from the
    response's ``network_stream`` once its headers have arrived.
    """

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._streams: list[Any] = []
        self._responses: list[httpx.Response] = []
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx's ``trace`` extension: remember the stream of a new connection."""
        if event == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            self._watch(stream=info["return_value"])

    def watch(self, response: httpx.Response) -> None:
        self._watch(stream=response.extensions.get("network_stream"), response=response)

    def _watch(self, *, stream: Any = None, response: httpx.Response | None = None) -> None:
        with self._lock:
            if stream is not None:
                self._streams.append(stream)
            if response is not None:
                self._responses.append(response)
            fired = self.fired
        if fired:  # the deadline passed while connecting: cut at once
            self._fire()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            streams, responses = list(self._streams), list(self._responses)
        for stream in streams:
            try:
                sock = stream.get_extra_info("socket")
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass  # already closed
        for response in responses:
            try:
                response.close()
            except Exception:  # closing from another thread may race the reader
                pass


# --------------------------------------------------------------------------- prompt


def render_passage(n: int, passage: Passage) -> str:
    """``[n] 《title》 speaker date · section`` then the passage text."""
    meta = passage.meta
    head = byline(meta.title, meta.speaker, meta.date, passage.chunk.section)
    return prompts.render("passage", n=n, header=head, text=passage.chunk.text)


def _history_block(request: AnswerRequest, max_turns: int) -> str:
    """Earlier turns, compacted: whitespace collapsed, ``[n]`` markers dropped (they
    number an earlier passage list, not this one), each turn cut short."""
    lines = []
    for turn in list(request.history)[-max_turns:] if max_turns > 0 else []:
        text = " ".join(_MARKER.sub("", turn.content).split())
        if len(text) > HISTORY_TURN_CHARS:
            text = text[: HISTORY_TURN_CHARS - 1] + "…"
        if text:
            lines.append(f"{'用户' if turn.role == 'user' else '助手'}：{text}")
    return prompts.render("history", turns="\n".join(lines)) + "\n\n" if lines else ""


def build_messages(
    request: AnswerRequest,
    *,
    context_tokens: int,
    history_turns: int = 6,
    system_template: str = "system_zh",
    passage_tokens: int | None = None,
) -> list[dict[str, str]]:
    """The system and user messages for ``request``.

    ``context_tokens`` bounds the two messages together: passages get what the system
    prompt, the conversation and the question leave over, and at most ``passage_tokens``
    when given. Raises ``BackendError`` when not even the first sentence of the top
    passage fits.
    """
    language = request.language if request.language in prompts.LANGUAGES else "zh-hans"
    system = prompts.render(
        system_template,
        refusal=prompts.refusal_for(language),
        language_rule=prompts.render(f"language_{language}"),
    )
    history = _history_block(request, history_turns)
    skeleton = prompts.render("user", passages="", history=history, question=request.question)
    room = context_tokens - count_tokens(system) - count_tokens(skeleton)
    if passage_tokens is not None:
        room = min(room, passage_tokens)
    blocks = fit_passages(request.passages, budget_tokens=room, render_one=render_passage)
    if request.passages and not blocks:
        raise BackendError(
            f"the context budget ({context_tokens} tokens) leaves no room for any passage"
        )
    user = prompts.render(
        "user", passages="\n\n".join(blocks), history=history, question=request.question
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# --------------------------------------------------------------------------- HTTP helpers


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN → None


def _error_message(body: bytes) -> str:
    """The human part of an error body: OpenAI's ``error.message``, FastAPI's ``detail``,
    or the raw text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:MAX_ERROR_CHARS] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            text = err if isinstance(err, str) else json.dumps(err, ensure_ascii=False)
    return text[:MAX_ERROR_CHARS]


def _content_of(choice: dict[str, Any], key: str) -> str:
    part = choice.get(key) or {}
    content = part.get("content") if isinstance(part, dict) else None
    return content if isinstance(content, str) else ""


class _Guarded(httpx.SyncByteStream):
    """A response's (decoded) bytes, with ``check()`` run on every chunk received and
    the total bounded by ``MAX_BODY_BYTES``: what httpx-sse reads the events from.

    A blank line is added at the end, so an event the server sent without its closing
    blank line (``data: [DONE]`` and hang up, as some do) is still delivered."""

    def __init__(self, response: httpx.Response, check: Callable[[], None]) -> None:
        self._response = response
        self._check = check

    def __iter__(self) -> Iterator[bytes]:
        total = 0
        for chunk in self._response.iter_bytes():
            self._check()
            total += len(chunk)
            if total > MAX_BODY_BYTES:
                raise BackendError(f"stream larger than {MAX_BODY_BYTES} bytes")
            yield chunk
        yield b"\n\n"


class OpenAIBackend(AnswerBackend):
    """Drafts cited answers with a chat-completions model; see the module docstring."""

    name = "openai"
    # Hooks for subclasses (the local backend): the system prompt, a cap on the passages'
    # share of the prompt, and extra request fields.
    system_template = "system_zh"
    passage_tokens: int | None = None
    extra_body: dict[str, Any] = {}  # never mutated: subclasses assign their own

    def __init__(
        self,
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        model: str = "gpt-4o-mini",
        temperature: float = 0.1,
        max_tokens: int = 512,
        stream: bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        deadline: float = 120.0,
        max_retries: int = 2,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        context_tokens: int = 3000,
        history_turns: int = 6,
        stream_usage: bool = True,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.api_key = api_key or None
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.streams = stream
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.context_tokens = context_tokens
        self.history_turns = history_turns
        # Ask for a final usage chunk when streaming. Servers that reject the field are
        # asked once more without it (see _post): usage is nice to have, the answer is not.
        self.stream_usage = stream_usage
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> OpenAIBackend:
        """Build from the ``llm_*`` settings; keyword arguments override them."""
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        kwargs: dict[str, Any] = {
            "base_url": settings.llm_base_url,
            "api_key": key,
            "model": settings.llm_model,
            "temperature": settings.llm_temperature,
            "max_tokens": settings.llm_max_tokens,
            "stream": settings.llm_stream,
            "connect_timeout": settings.llm_connect_timeout,
            "read_timeout": settings.llm_read_timeout,
            "deadline": settings.llm_deadline,
            "max_retries": settings.llm_max_retries,
            "backoff_base": settings.llm_backoff_base,
            "backoff_cap": settings.llm_backoff_cap,
            "context_tokens": settings.llm_context_tokens,
            "history_turns": settings.llm_history_turns,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # ----------------------------------------------------------------------- public

    def generate(self, request: AnswerRequest, on_token: TokenCallback | None = None) -> Draft:
        if not request.passages:  # nothing to answer from: no need to ask a model
            return Draft(text=prompts.refusal_for(request.language), refused=True, model=self.model)
        try:
            messages = build_messages(
                request,
                context_tokens=self.context_tokens,
                history_turns=self.history_turns,
                system_template=self.system_template,
                passage_tokens=self.passage_tokens,
            )
            payload: dict[str, Any] = {
                **self.extra_body,
                "model": self.model,
                "messages": messages,
                "temperature": self.temperature
                if request.temperature is None
                else request.temperature,
                "max_tokens": self.max_tokens if request.max_tokens is None else request.max_tokens,
                "stream": self.streams,
            }
            text, usage, model = self._with_retries(payload, on_token)
        except BackendError:
            raise
        except Exception as exc:  # the pipeline relies on BackendError and nothing else
            raise BackendError(f"{type(exc).__name__}: {exc}") from exc
        text = text.strip()
        if not text:
            raise BackendError("the model returned an empty answer")
        return Draft(text=text, refused=prompts.is_refusal(text), usage=usage, model=model)

    # ----------------------------------------------------------------------- retries

    def _with_retries(
        self, payload: dict[str, Any], on_token: TokenCallback | None
    ) -> tuple[str, dict[str, Any], str]:
        deadline = self._clock() + self.deadline
        attempt = 0
        while True:
            if self._clock() >= deadline:
                raise BackendError(f"deadline of {self.deadline:g}s exceeded")
            try:
                return self._post(payload, on_token, deadline)
            except _Retryable as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise BackendError(f"gave up after {attempt} attempts: {exc}") from exc
                if exc.retry_after is not None:
                    delay = exc.retry_after
                else:
                    ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
                    delay = self._rng.uniform(0.0, ceiling)
                remaining = deadline - self._clock()
                if delay >= remaining:
                    raise BackendError(
                        f"{exc}; waiting {delay:.1f}s to retry would pass the "
                        f"{self.deadline:g}s deadline"
                    ) from exc
                log.warning("LLM request failed (%s); retry %d in %.2fs", exc, attempt, delay)
                self._sleep(delay)

    # ----------------------------------------------------------------------- one attempt

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if self.streams else "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _timeout(self, deadline: float) -> httpx.Timeout:
        remaining = max(0.001, deadline - self._clock())
        read = min(self.read_timeout, remaining)
        connect = min(self.connect_timeout, remaining)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def _post(
        self, payload: dict[str, Any], on_token: TokenCallback | None, deadline: float
    ) -> tuple[str, dict[str, Any], str]:
        """One attempt. A server that rejects ``stream_options`` is asked once more
        without it, within the same attempt: older vLLM builds and some proxies refuse
        unknown fields, and losing the usage figures is better than losing the answer."""
        try:
            return self._attempt(payload, on_token, deadline)
        except _RejectsStreamOptions:
            log.info("the server rejects stream_options; streaming without a usage chunk")
            self.stream_usage = False
            return self._attempt(payload, on_token, deadline)

    def _attempt(
        self, payload: dict[str, Any], on_token: TokenCallback | None, deadline: float
    ) -> tuple[str, dict[str, Any], str]:
        body = dict(payload)
        if payload["stream"] and self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        delivered = [False]  # whether any answer text reached on_token
        watchdog = _Watchdog(deadline - self._clock())
        try:
            with (
                watchdog,
                self._client.stream(
                    "POST",
                    self.url,
                    json=body,
                    headers=self._headers(),
                    timeout=self._timeout(deadline),
                    extensions={"trace": watchdog.trace},
                ) as response,
            ):
                watchdog.watch(response)
                if response.status_code != 200:
                    self._raise_for_status(response, deadline, "stream_options" in body)
                ctype = response.headers.get("content-type", "")
                if payload["stream"] and "text/event-stream" in ctype:
                    pieces, usage, model = self._read_stream(
                        response, on_token, deadline, delivered
                    )
                    text = "".join(pieces)
                else:  # a non-streaming reply (or a server that ignored stream=true)
                    text, usage, model = self._parse_completion(self._read_body(response, deadline))
                    if on_token is not None and text:
                        delivered[0] = True
                        on_token(text)
        except Exception as exc:
            if watchdog.fired:  # whatever the cut connection raised, the deadline cut it
                raise BackendError(
                    f"deadline of {self.deadline:g}s exceeded before the server finished its answer"
                ) from exc
            if isinstance(exc, httpx.TimeoutException):
                if delivered[0]:
                    raise BackendError(f"stream cut: timed out mid-answer ({exc!r})") from exc
                raise _Retryable(f"timed out ({type(exc).__name__})") from exc
            if isinstance(exc, httpx.TransportError):
                if delivered[0]:
                    raise BackendError(f"stream cut: {type(exc).__name__}: {exc}") from exc
                raise _Retryable(f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
            raise
        if watchdog.fired:  # a cut read can look like an ordinary end of the body
            raise BackendError(f"deadline of {self.deadline:g}s exceeded while reading the answer")
        if not usage:
            usage = self._estimate_usage(payload["messages"], text)
        return text, usage, model or self.model

    def _raise_for_status(
        self, response: httpx.Response, deadline: float, sent_stream_options: bool
    ) -> None:
        status = response.status_code
        message = _error_message(self._read_body(response, deadline))
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise _Retryable(f"HTTP {status}: {message}", retry_after)
        if sent_stream_options and "stream_options" in message.lower():
            raise _RejectsStreamOptions(message)
        raise BackendError(f"HTTP {status} from {self.url}: {message}")

    @staticmethod
    def _estimate_usage(messages: Sequence[dict[str, str]], text: str) -> dict[str, Any]:
        """Token counts when the server sent none (llama.cpp's server never sends a usage
        chunk when streaming), marked as estimates so reports can tell them apart."""
        prompt = sum(count_tokens(m["content"]) for m in messages)
        completion = count_tokens(text)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "estimated": True,
        }

    def _check_deadline(self, deadline: float) -> None:
        if self._clock() >= deadline:
            raise BackendError(f"deadline of {self.deadline:g}s exceeded while reading the answer")

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        buf = bytearray()
        for chunk in response.iter_bytes():
            buf += chunk
            self._check_deadline(deadline)
            if len(buf) > MAX_BODY_BYTES:
                raise BackendError(f"reply larger than {MAX_BODY_BYTES} bytes")
        return bytes(buf)

    @staticmethod
    def _parse_completion(raw: bytes) -> tuple[str, dict[str, Any], str]:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise BackendError(f"malformed JSON reply: {raw[:120]!r}") from exc
        if not isinstance(data, dict):
            raise BackendError(f"unexpected reply: {raw[:120]!r}")
        if "error" in data:
            raise BackendError(f"server error: {_error_message(raw)}")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise BackendError(f"reply has no choices: {raw[:120]!r}")
        usage = data["usage"] if isinstance(data.get("usage"), dict) else {}
        return _content_of(choices[0], "message"), dict(usage), str(data.get("model") or "")

    # ----------------------------------------------------------------------- streaming

    def _read_stream(
        self,
        response: httpx.Response,
        on_token: TokenCallback | None,
        deadline: float,
        delivered: list[bool],
    ) -> tuple[list[str], dict[str, Any], str]:
        pieces: list[str] = []
        usage: dict[str, Any] = {}
        model = ""
        finished = False  # a choice reported its finish_reason
        guarded = httpx.Response(
            response.status_code,
            headers={"content-type": response.headers.get("content-type", "")},
            stream=_Guarded(response, lambda: self._check_deadline(deadline)),
        )
        for sse in EventSource(guarded).iter_sse():
            self._check_deadline(deadline)
            event = sse.data
            if not event:  # an event without data (a bare id or event name): nothing to read
                continue
            if event.strip() == "[DONE]":
                return pieces, usage, model
            try:
                chunk = json.loads(event)
            except ValueError as exc:
                raise BackendError(f"stream cut: malformed JSON event {event[:120]!r}") from exc
            if not isinstance(chunk, dict):
                raise BackendError(f"stream cut: unexpected event {event[:120]!r}")
            if "error" in chunk:
                raise BackendError(f"server error mid-stream: {_error_message(event.encode())}")
            model = model or str(chunk.get("model") or "")
            if isinstance(chunk.get("usage"), dict):
                usage = dict(chunk["usage"])
            choices = chunk.get("choices") or []
            if choices and isinstance(choices[0], dict):
                piece = _content_of(choices[0], "delta")
                finished = finished or bool(choices[0].get("finish_reason"))
                if piece:
                    pieces.append(piece)
                    delivered[0] = True
                    if on_token is not None:
                        on_token(piece)
        # The body ended without [DONE]. Some servers close right after the final chunk;
        # if that chunk said the answer is finished, accept it, else the answer is cut.
        if finished:
            return pieces, usage, model
        raise BackendError(
            f"stream cut: the stream ended after {len(pieces)} pieces without [DONE]"
        )
