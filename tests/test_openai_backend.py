"""The OpenAI-compatible backend against ``httpx.MockTransport`` servers, and the
passage budget it relies on. Time is fake: sleeps are recorded, never slept."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

import prompts
from rag.answer.base import AnswerRequest, BackendError, Turn
from rag.answer.budget import count_tokens, fit_passages, sentence_cuts
from rag.answer.openai import OpenAIBackend, build_messages, parse_retry_after, render_passage
from rag.settings import Settings
from rag.types import Chunk, DocMeta, Passage
from tests.fake_llm import FakeLLM

Handler = Callable[[httpx.Request], httpx.Response]

TEXTS = [
    "群团组织要保持和增强政治性、先进性、群众性。这是群团工作的根本。",
    "工会要组织开展职工技能大赛。要做好困难职工帮扶工作。",
    "妇联要深入开展“巾帼建功”活动。",
]


def make_passage(n: int, text: str, *, section: str = "一、总体要求") -> Passage:
    chunk = Chunk(
        chunk_id=f"d{n}#0", doc_id=f"d{n}", start=10, end=10 + len(text), text=text, section=section
    )
    meta = DocMeta(title=f"讲话{n}", speaker="魏小东", date="2015-12-17")
    return Passage(chunk=chunk, meta=meta, score=1.0 / n, rank=n)


def make_request(**kw: Any) -> AnswerRequest:
    passages = [make_passage(i, t) for i, t in enumerate(TEXTS, start=1)]
    return AnswerRequest(
        question=kw.pop("question", "群团组织要增强哪三性？"), passages=passages, **kw
    )


class FakeTime:
    """A monotonic clock that only moves when the backend sleeps or a test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Server:
    """A scripted server: each call pops the next handler (the last one repeats)."""

    def __init__(self, *handlers: Handler) -> None:
        self.handlers = list(handlers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.handlers.pop(0) if len(self.handlers) > 1 else self.handlers[0]
        return handler(request)

    @property
    def calls(self) -> int:
        return len(self.requests)

    def body(self, i: int = -1) -> dict[str, Any]:
        return dict(json.loads(self.requests[i].content))


def backend_for(server: Server, ft: FakeTime, **kw: Any) -> OpenAIBackend:
    kw.setdefault("base_url", "http://llm.test/v1")
    kw.setdefault("model", "test-model")
    kw.setdefault("stream", False)
    client = httpx.Client(transport=httpx.MockTransport(server))
    return OpenAIBackend(client=client, sleep=ft.sleep, clock=ft.clock, rng=random.Random(7), **kw)


def completion(text: str, usage: dict[str, int] | None = None) -> Handler:
    payload = {
        "model": "served-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": usage or {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
    }
    return lambda request: httpx.Response(200, json=payload)


def status(code: int, message: str = "busy", headers: dict[str, str] | None = None) -> Handler:
    body = {"error": {"message": message, "type": "server_error"}}
    return lambda request: httpx.Response(code, json=body, headers=headers)


def sse(*events: object, done: bool = True) -> bytes:
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def delta(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    d = {} if content is None else {"content": content}
    return {"model": "served-model", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def streaming(body: bytes | httpx.SyncByteStream) -> Handler:
    headers = {"content-type": "text/event-stream"}
    if isinstance(body, bytes):
        return lambda request: httpx.Response(200, headers=headers, content=body)
    return lambda request: httpx.Response(200, headers=headers, stream=body)


class CutStream(httpx.SyncByteStream):
    """Delivers some SSE bytes, then fails like a dropped connection (or runs ``between``
    before each chunk, to let fake time pass)."""

    def __init__(
        self,
        chunks: list[bytes],
        error: Exception | None,
        between: Callable[[], None] = lambda: None,
    ) -> None:
        self.chunks, self.error, self.between = chunks, error, between

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.between()
            yield chunk
        if self.error is not None:
            raise self.error


# --------------------------------------------------------------------------- success


def test_non_streaming_request_shape_and_answer() -> None:
    server, ft = Server(completion("群团组织要增强“政治性、先进性、群众性”[1]。")), FakeTime()
    backend = backend_for(server, ft, api_key="sk-test", temperature=0.2, max_tokens=256)
    tokens: list[str] = []
    draft = backend.generate(make_request(), tokens.append)

    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "http://llm.test/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    body = server.body()
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 256
    assert body["stream"] is False and "stream_options" not in body
    system, user = body["messages"]
    assert system["role"] == "system" and prompts.REFUSAL_ZH in system["content"]
    assert user["role"] == "user"
    content = user["content"]
    assert f"[1] 《讲话1》 魏小东 2015-12-17 · 一、总体要求\n{TEXTS[0]}" in content
    assert content.index("[1] ") < content.index("[2] ") < content.index("[3] ")
    assert content.rstrip().endswith("群团组织要增强哪三性？")

    assert draft.text == "群团组织要增强“政治性、先进性、群众性”[1]。"
    assert draft.refused is False
    assert draft.usage == {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    assert draft.model == "served-model"
    assert tokens == [draft.text]


def test_no_authorization_header_without_key() -> None:
    server, ft = Server(completion("答[1]。")), FakeTime()
    backend_for(server, ft).generate(make_request())
    assert "Authorization" not in server.requests[0].headers


def test_request_overrides_temperature_and_max_tokens() -> None:
    server, ft = Server(completion("答[1]。")), FakeTime()
    backend_for(server, ft).generate(make_request(temperature=0.0, max_tokens=7))
    assert server.body()["temperature"] == 0.0
    assert server.body()["max_tokens"] == 7


def test_streaming_delivers_tokens_in_order_and_parses_usage() -> None:
    pieces = ["政治性", "、先进性", "、群众性[1]。"]
    usage = {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}
    body = sse(
        {"model": "served-model", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        *(delta(p) for p in pieces),
        delta(finish="stop"),
        {"model": "served-model", "choices": [], "usage": usage},
    )
    server, ft = Server(streaming(body)), FakeTime()
    tokens: list[str] = []
    draft = backend_for(server, ft, stream=True).generate(make_request(), tokens.append)

    assert tokens == pieces
    assert draft.text == "".join(pieces)
    assert draft.usage == usage
    sent = server.body()
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert server.requests[0].headers["Accept"] == "text/event-stream"


def test_streaming_tolerates_sse_comments_crlf_and_split_data_lines() -> None:
    body = (
        b": keep-alive\r\n\r\n"
        b"event: message\r\ndata: " + json.dumps(delta("A")).encode() + b"\r\n\r\n"
        b"data:" + json.dumps(delta("B")).encode() + b"\r\n\r\n"
        b"data: [DONE]"
    )
    server, ft = Server(streaming(body)), FakeTime()
    tokens: list[str] = []
    draft = backend_for(server, ft, stream=True).generate(make_request(), tokens.append)
    assert tokens == ["A", "B"] and draft.text == "AB"


def test_streaming_without_usage_chunk_estimates_usage() -> None:
    server, ft = (
        Server(streaming(sse(delta("答案"), delta("[1]。"), delta(finish="stop")))),
        FakeTime(),
    )
    draft = backend_for(server, ft, stream=True).generate(make_request())
    assert draft.usage["estimated"] is True
    assert draft.usage["completion_tokens"] == count_tokens("答案[1]。")
    assert draft.usage["prompt_tokens"] > count_tokens(TEXTS[0])


def test_stream_ending_after_finish_reason_without_done_is_accepted() -> None:
    body = sse(delta("答"), delta("[1]。", finish="stop"), done=False)
    server, ft = Server(streaming(body)), FakeTime()
    assert backend_for(server, ft, stream=True).generate(make_request()).text == "答[1]。"


def test_server_that_ignores_stream_true_still_answers() -> None:
    server, ft = Server(completion("整段回答[1]。")), FakeTime()
    tokens: list[str] = []
    draft = backend_for(server, ft, stream=True).generate(make_request(), tokens.append)
    assert draft.text == "整段回答[1]。" and tokens == ["整段回答[1]。"]


def test_stream_options_rejection_is_retried_once_without_it() -> None:
    rejected = status(400, "Unrecognized request argument supplied: stream_options")
    server, ft = (
        Server(rejected, streaming(sse(delta("答[1]。"), delta(finish="stop")))),
        FakeTime(),
    )
    backend = backend_for(server, ft, stream=True)
    assert backend.generate(make_request()).text == "答[1]。"
    assert server.calls == 2 and ft.sleeps == []
    assert "stream_options" in server.body(0) and "stream_options" not in server.body(1)
    backend.generate(make_request())  # remembered: not sent again
    assert "stream_options" not in server.body(2)


# --------------------------------------------------------------------------- retries


def test_retries_503_then_succeeds_with_jittered_backoff() -> None:
    server, ft = Server(status(503), completion("答[1]。")), FakeTime()
    draft = backend_for(server, ft, backoff_base=0.5).generate(make_request())
    assert draft.text == "答[1]。"
    assert server.calls == 2
    assert len(ft.sleeps) == 1 and 0.0 <= ft.sleeps[0] <= 0.5


def test_429_with_retry_after_waits_exactly_that_long() -> None:
    server, ft = (
        Server(status(429, "slow down", {"Retry-After": "2"}), completion("答[1]。")),
        FakeTime(),
    )
    backend_for(server, ft).generate(make_request())
    assert ft.sleeps == [2.0]
    assert server.calls == 2


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=5), usegmt=True), now) == 5.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retries_exhausted_raise_backend_error() -> None:
    server, ft = Server(status(502, "bad gateway")), FakeTime()
    backend = backend_for(server, ft, max_retries=3, backoff_base=1.0, backoff_cap=3.0)
    with pytest.raises(BackendError, match="bad gateway"):
        backend.generate(make_request())
    assert server.calls == 4
    assert len(ft.sleeps) == 3
    for i, slept in enumerate(ft.sleeps):  # full jitter under a capped exponential ceiling
        assert 0.0 <= slept <= min(3.0, 1.0 * 2**i)


def test_400_is_not_retried_and_reports_the_server_message() -> None:
    server, ft = (
        Server(status(400, "This model's maximum context length is 4096 tokens")),
        FakeTime(),
    )
    with pytest.raises(BackendError, match="maximum context length is 4096"):
        backend_for(server, ft).generate(make_request())
    assert server.calls == 1 and ft.sleeps == []


def test_401_is_not_retried() -> None:
    server, ft = Server(status(401, "Incorrect API key provided")), FakeTime()
    with pytest.raises(BackendError, match="Incorrect API key"):
        backend_for(server, ft, api_key="bad").generate(make_request())
    assert server.calls == 1


def test_read_timeout_is_retried_then_fails() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    server, ft = Server(timeout), FakeTime()
    with pytest.raises(BackendError, match="timed out"):
        backend_for(server, ft, max_retries=2).generate(make_request())
    assert server.calls == 3


def test_connection_error_is_retried_then_succeeds() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server, ft = Server(refused, completion("答[1]。")), FakeTime()
    assert backend_for(server, ft).generate(make_request()).text == "答[1]。"
    assert server.calls == 2


# --------------------------------------------------------------------------- cut streams


def test_stream_cut_after_tokens_is_not_retried() -> None:
    chunks = [sse(delta("政治性"), done=False), sse(delta("、先进性"), done=False)]
    cut = CutStream(chunks, httpx.RemoteProtocolError("peer closed connection"))
    server, ft = Server(streaming(cut), streaming(sse(delta("second answer")))), FakeTime()
    tokens: list[str] = []
    with pytest.raises(BackendError, match="stream cut"):
        backend_for(server, ft, stream=True, max_retries=3).generate(make_request(), tokens.append)
    assert server.calls == 1
    assert tokens == ["政治性", "、先进性"]


def test_stream_without_done_or_finish_reason_is_cut() -> None:
    server, ft = Server(streaming(sse(delta("政治性"), done=False))), FakeTime()
    with pytest.raises(BackendError, match="stream cut"):
        backend_for(server, ft, stream=True).generate(make_request())
    assert server.calls == 1


def test_malformed_json_in_stream_is_cut() -> None:
    body = sse(delta("政治性"), "{not json", done=True)
    server, ft = Server(streaming(body)), FakeTime()
    with pytest.raises(BackendError, match="stream cut: malformed JSON"):
        backend_for(server, ft, stream=True).generate(make_request())
    assert server.calls == 1


def test_error_event_mid_stream() -> None:
    body = sse(delta("政"), {"error": {"message": "model overloaded"}}, done=False)
    server, ft = Server(streaming(body)), FakeTime()
    with pytest.raises(BackendError, match="model overloaded"):
        backend_for(server, ft, stream=True).generate(make_request())


def test_malformed_json_reply_raises() -> None:
    server, ft = (
        Server(lambda request: httpx.Response(200, content=b"<html>oops</html>")),
        FakeTime(),
    )
    with pytest.raises(BackendError, match="malformed JSON"):
        backend_for(server, ft).generate(make_request())
    assert server.calls == 1


@pytest.mark.parametrize("payload", [{"choices": []}, {"object": "list"}, [1, 2]])
def test_reply_without_choices_raises(payload: object) -> None:
    server, ft = Server(lambda request: httpx.Response(200, json=payload)), FakeTime()
    with pytest.raises(BackendError):
        backend_for(server, ft).generate(make_request())


def test_empty_answer_raises() -> None:
    server, ft = Server(completion("  \n")), FakeTime()
    with pytest.raises(BackendError, match="empty"):
        backend_for(server, ft).generate(make_request())


def test_failing_token_callback_surfaces_as_backend_error() -> None:
    server, ft = Server(streaming(sse(delta("答"), delta(finish="stop")))), FakeTime()

    def broken(piece: str) -> None:
        raise ConnectionResetError("client went away")

    with pytest.raises(BackendError, match="client went away"):
        backend_for(server, ft, stream=True).generate(make_request(), broken)


# --------------------------------------------------------------------------- deadline


def test_deadline_bounds_retries() -> None:
    def slow_503(request: httpx.Request) -> httpx.Response:
        ft.now += 70.0  # each attempt takes 70 fake seconds
        return status(503)(request)

    server, ft = Server(slow_503), FakeTime()
    backend = backend_for(server, ft, deadline=100.0, max_retries=10, backoff_base=0.01)
    with pytest.raises(BackendError, match="deadline"):
        backend.generate(make_request())
    assert server.calls == 2
    assert ft.now - 1000.0 < 100.0 + 70.0 + 1.0


def test_retry_after_beyond_deadline_fails_at_once() -> None:
    server, ft = Server(status(429, "quota", {"Retry-After": "3600"})), FakeTime()
    with pytest.raises(BackendError, match="deadline"):
        backend_for(server, ft, deadline=60.0).generate(make_request())
    assert ft.sleeps == [] and server.calls == 1


def test_deadline_bounds_a_slow_stream() -> None:
    def tick() -> None:
        ft.now += 4.0

    ft = FakeTime()
    chunks = [sse(delta(f"片{i}"), done=False) for i in range(100)]
    server = Server(streaming(CutStream(chunks, None, between=tick)))
    with pytest.raises(BackendError, match="deadline"):
        backend_for(server, ft, stream=True, deadline=30.0).generate(make_request())
    assert ft.now - 1000.0 <= 34.0


@pytest.mark.parametrize(
    "unit", [b": keep-alive\n\n", b"\n", b"x"], ids=["comments", "blank-lines", "no-newline"]
)
def test_deadline_is_checked_on_every_chunk_not_only_on_events(unit: bytes) -> None:
    def tick() -> None:
        ft.now += 2.0

    ft = FakeTime()
    server = Server(streaming(CutStream([unit] * 100, None, between=tick)))
    with pytest.raises(BackendError, match="deadline"):
        backend_for(server, ft, stream=True, deadline=5.0).generate(make_request())
    assert ft.now - 1000.0 <= 8.0


def test_a_runaway_stream_is_cut_at_the_body_cap() -> None:
    chunk = b": " + b"x" * 65_536 + b"\n\n"  # comments only: no event ever ends the read
    server = Server(streaming(CutStream([chunk] * 80, None)))  # 5 MB, over the 4 MB cap
    with pytest.raises(BackendError, match="larger than"):
        backend_for(server, FakeTime(), stream=True).generate(make_request())


def test_sse_lines_split_across_chunks_and_crlf_are_joined() -> None:
    body = sse(delta("甲"), delta("乙[1]。"), done=True).replace(b"\n", b"\r\n")
    pieces = [body[i : i + 3] for i in range(0, len(body), 3)]  # splits "\r" from "\n" too
    server, ft = Server(streaming(CutStream(pieces, None))), FakeTime()
    draft = backend_for(server, ft, stream=True).generate(make_request())
    assert draft.text == "甲乙[1]。"


STALL_DEADLINE_S = 2.0
STALL_MARGIN_S = 5.0  # generous: the bound is the deadline plus scheduling noise


@pytest.fixture(scope="module")
def stalling_upstream() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    yield fake
    fake.close()


@pytest.mark.parametrize("mode", ["keepalive", "trickle"])
def test_a_stalling_upstream_cannot_hold_a_call_past_the_deadline(
    stalling_upstream: FakeLLM, mode: str
) -> None:
    """Real sockets: per-read timeouts never fire (bytes keep coming), the deadline must."""
    stalling_upstream.mode = mode
    backend = OpenAIBackend(
        base_url=stalling_upstream.base_url,
        read_timeout=60.0,
        deadline=STALL_DEADLINE_S,
        max_retries=0,
    )
    started = time.monotonic()
    try:
        with pytest.raises(BackendError, match="deadline"):
            backend.generate(make_request())
    finally:
        backend.close()
    assert time.monotonic() - started < STALL_DEADLINE_S + STALL_MARGIN_S


def test_timeouts_sent_to_httpx_are_capped_by_the_deadline() -> None:
    seen: list[dict[str, float | None]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return completion("答[1]。")(request)

    server, ft = Server(record), FakeTime()
    backend_for(server, ft, connect_timeout=5.0, read_timeout=60.0, deadline=20.0).generate(
        make_request()
    )
    assert seen[0]["connect"] == 5.0 and seen[0]["read"] == 20.0


# --------------------------------------------------------------------------- refusal


@pytest.mark.parametrize(
    "reply",
    [prompts.REFUSAL_ZH, prompts.REFUSAL_ZH_HANT, prompts.REFUSAL_EN, f" {prompts.REFUSAL_ZH}\n"],
)
def test_refusal_is_detected(reply: str) -> None:
    server, ft = Server(completion(reply)), FakeTime()
    draft = backend_for(server, ft).generate(make_request())
    assert draft.refused is True
    assert draft.text == reply.strip()


def test_answer_mentioning_the_refusal_is_not_a_refusal() -> None:
    server, ft = Server(completion(f"工会要组织技能大赛[2]。其余{prompts.REFUSAL_ZH}")), FakeTime()
    assert backend_for(server, ft).generate(make_request()).refused is False


def test_no_passages_refuses_without_calling_the_server() -> None:
    server, ft = Server(completion("should not be asked")), FakeTime()
    request = AnswerRequest(question="Who?", passages=[], language="en")
    draft = backend_for(server, ft).generate(request)
    assert draft.refused is True and draft.text == prompts.REFUSAL_EN
    assert server.calls == 0


# --------------------------------------------------------------------------- messages


def test_history_is_included_compactly_before_the_question() -> None:
    history = [
        Turn("user", "魏小东讲了什么？"),
        Turn("assistant", "他强调  要增强“三性”[1][2]。\n" + "很长" * 400),
    ]
    messages = build_messages(
        make_request(history=history, question="具体是哪三性？"), context_tokens=3000
    )
    user = messages[1]["content"]
    assert "用户：魏小东讲了什么？" in user
    assert "助手：他强调 要增强“三性”。" in user  # markers of the old passage list removed
    assert "很长" * 200 not in user  # long turns are cut
    assert user.index("魏小东讲了什么") < user.index("问题：具体是哪三性？")
    assert user.rstrip().endswith("具体是哪三性？")


def test_history_turn_limit() -> None:
    history = [Turn("user", f"第{i}问") for i in range(10)]
    user = build_messages(make_request(history=history), context_tokens=3000, history_turns=2)[1]
    assert "第9问" in user["content"] and "第8问" in user["content"]
    assert "第7问" not in user["content"]


@pytest.mark.parametrize(
    ("language", "refusal", "marker"),
    [
        ("zh-hans", prompts.REFUSAL_ZH, "简体中文"),
        ("zh-hant", prompts.REFUSAL_ZH_HANT, "繁體中文"),
        ("en", prompts.REFUSAL_EN, "Answer in English"),
    ],
)
def test_system_prompt_follows_the_answer_language(
    language: str, refusal: str, marker: str
) -> None:
    system = build_messages(make_request(language=language), context_tokens=3000)[0]["content"]
    assert refusal in system and marker in system


def test_passages_are_fitted_to_the_context_budget() -> None:
    long_texts = ["这是一句话。" * 60, "那是另一句话。" * 60, "第三段。"]
    passages = [make_passage(i, t) for i, t in enumerate(long_texts, start=1)]
    request = AnswerRequest(question="问？", passages=passages)
    roomy = build_messages(request, context_tokens=5000)
    tight = build_messages(request, context_tokens=count_tokens(roomy[0]["content"]) + 400)
    assert "[3] " in roomy[1]["content"]
    user = tight[1]["content"]
    assert "[1] " in user and "[3] " not in user  # numbering stays the rank; no skipping
    assert sum(count_tokens(m["content"]) for m in tight) <= count_tokens(tight[0]["content"]) + 400


def test_budget_too_small_for_any_passage_is_a_backend_error() -> None:
    server, ft = Server(completion("答")), FakeTime()
    with pytest.raises(BackendError, match="budget"):
        backend_for(server, ft, context_tokens=50).generate(make_request())
    assert server.calls == 0


def test_passage_header_omits_missing_metadata() -> None:
    p = make_passage(1, "正文。", section="")
    p.meta.speaker = ""
    assert render_passage(4, p) == "[4] 《讲话1》 2015-12-17\n正文。"


def test_from_settings_reads_llm_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("RAG_LLM_API_KEY", "sk-env")
    monkeypatch.setenv("RAG_LLM_MODEL", "qwen-plus")
    monkeypatch.setenv("RAG_LLM_STREAM", "false")
    monkeypatch.setenv("RAG_LLM_DEADLINE", "9")
    backend = OpenAIBackend.from_settings(Settings(), max_retries=0)
    try:
        assert backend.url == "http://127.0.0.1:9/v1/chat/completions"
        assert backend.api_key == "sk-env"
        assert backend.model == "qwen-plus"
        assert backend.streams is False and backend.deadline == 9.0 and backend.max_retries == 0
        assert "sk-env" not in repr(Settings())  # the key stays secret in logs
    finally:
        backend.close()


# --------------------------------------------------------------------------- budget


def _render(n: int, p: Passage) -> str:
    return f"[{n}] {p.chunk.text}"


def test_sentence_cuts() -> None:
    text = "第一句。第二句！“第三句？”第四句3.5亿元\n第五句"
    cuts = sentence_cuts(text)
    assert [text[:c] for c in cuts] == [
        "第一句。",
        "第一句。第二句！",
        "第一句。第二句！“第三句？”",
        "第一句。第二句！“第三句？”第四句3.5亿元\n",
    ]


def test_fit_keeps_everything_that_fits_in_rank_order() -> None:
    passages = [make_passage(i, t) for i, t in enumerate(TEXTS, start=1)]
    blocks = fit_passages(passages, budget_tokens=10_000, render_one=_render)
    assert blocks == [f"[{i}] {t}" for i, t in enumerate(TEXTS, start=1)]


def test_fit_truncates_the_last_passage_at_a_sentence_end_and_stops() -> None:
    first, second = "甲" * 30 + "。", "乙乙乙。" * 30
    passages = [make_passage(1, first), make_passage(2, second), make_passage(3, "丙。")]
    budget = count_tokens(f"[1] {first}") + 2 + count_tokens("[2] " + "乙乙乙。" * 5) + 1
    seen: list[Passage] = []

    def render(n: int, p: Passage) -> str:
        seen.append(p)
        return _render(n, p)

    blocks = fit_passages(passages, budget_tokens=budget, render_one=render)
    assert len(blocks) == 2  # the short third passage is not pulled in after a cut
    assert blocks[0] == f"[1] {first}"
    assert blocks[1].startswith("[2] 乙乙乙。") and blocks[1].endswith("。")
    assert second.startswith(blocks[1][4:]) and len(blocks[1]) < len(second) + 4
    assert sum(count_tokens(b) for b in blocks) + count_tokens("\n\n") <= budget
    for p in seen:  # truncated copies keep doc.text[start:end] == text
        assert p.chunk.end - p.chunk.start == len(p.chunk.text)
    assert passages[1].chunk.text == second  # the caller's passage is untouched


def test_fit_returns_nothing_when_no_sentence_fits() -> None:
    passages = [make_passage(1, "很长的一句话没有句号" * 20)]
    assert fit_passages(passages, budget_tokens=20, render_one=_render) == []
    assert fit_passages(passages, budget_tokens=0, render_one=_render) == []
