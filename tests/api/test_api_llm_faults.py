"""LLM backend faults injected through a real upstream on loopback: the API answers
extractively with ``degraded: true`` (or cleanly), never with a 500 or a hang."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import QUESTION, sse_events
from tests.fake_llm import FakeLLM, closed_port

REQUEST_BOUND_S = 8.0  # generous: the backend's own deadline below is 2 s
LLM_SETTINGS: dict[str, Any] = {
    "backend": "openai",
    "llm_max_retries": 1,
    "llm_backoff_base": 0.01,
    "llm_backoff_cap": 0.02,
    "llm_connect_timeout": 0.5,
    "llm_read_timeout": 0.5,
    "llm_deadline": 2.0,
    "llm_api_key": "test-key",
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    yield fake
    fake.close()


@pytest.fixture
def llm_client(make_client: Callable[..., TestClient], upstream: FakeLLM) -> TestClient:
    return make_client(llm_base_url=upstream.base_url, **LLM_SETTINGS)


def timed(call: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = call()
    assert time.monotonic() - started < REQUEST_BOUND_S
    return result


def ask_all_ways(client: TestClient) -> list[dict[str, Any]]:
    """The answer through /v1/ask (plain and streamed) and /v1/chat/completions (both)."""
    out = []
    r = timed(lambda: client.post("/v1/ask", json={"question": QUESTION}))
    assert r.status_code == 200, r.text
    out.append(r.json())
    r = timed(lambda: client.post("/v1/ask", json={"question": QUESTION, "stream": True}))
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[-1][0] == "answer", events[-1]
    out.append(json.loads(events[-1][1]))
    messages = [{"role": "user", "content": QUESTION}]
    r = timed(lambda: client.post("/v1/chat/completions", json={"messages": messages}))
    assert r.status_code == 200, r.text
    message = r.json()["choices"][0]["message"]
    out.append({"answer": message["content"], **message})
    r = timed(
        lambda: client.post("/v1/chat/completions", json={"messages": messages, "stream": True})
    )
    assert r.status_code == 200
    chunks = [json.loads(d) for _, d in sse_events(r.text)[:-1]]
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    out.append(
        {
            "answer": text,
            "citations": final["citations"],
            "degraded": final["degraded"],
            "refused": final["refused"],
        }
    )
    return out


def test_a_working_upstream_answers_with_its_cited_draft(
    llm_client: TestClient, upstream: FakeLLM
) -> None:
    upstream.mode = "ok"
    for answer in ask_all_ways(llm_client):
        assert answer["degraded"] is False
        assert answer["refused"] is False and answer["citations"]
        assert "三个问题" in answer["answer"]
        if "backend" in answer:
            assert answer["backend"] == "openai"


@pytest.mark.parametrize("mode", ["429", "500", "slow", "cut", "garbage", "keepalive", "trickle"])
def test_upstream_faults_degrade_to_extractive(
    llm_client: TestClient, upstream: FakeLLM, mode: str
) -> None:
    upstream.mode = mode
    seen = upstream.requests
    for answer in ask_all_ways(llm_client):
        assert answer["degraded"] is True
        assert answer["refused"] is False and answer["citations"]
        assert "三个问题" in answer["answer"]
        if "backend" in answer:
            assert answer["backend"] == "extractive"
            assert "openai backend failed" in answer["notice"]
    assert upstream.requests > seen  # the faults really were met


def test_a_refused_connection_degrades_to_extractive(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(llm_base_url=f"http://127.0.0.1:{closed_port()}/v1", **LLM_SETTINGS)
    for answer in ask_all_ways(client):
        assert answer["degraded"] is True and answer["citations"]


def test_the_stream_shows_the_cut_draft_then_the_degraded_answer(
    llm_client: TestClient, upstream: FakeLLM
) -> None:
    upstream.mode = "cut"
    r = timed(lambda: llm_client.post("/v1/ask", json={"question": QUESTION, "stream": True}))
    events = sse_events(r.text)
    tokens = "".join(json.loads(d)["text"] for name, d in events if name == "token")
    final = json.loads(events[-1][1])
    assert tokens  # the draft reached the client before the cut
    assert final["degraded"] is True and final["answer"] != tokens


def test_metrics_count_degraded_answers(llm_client: TestClient, upstream: FakeLLM) -> None:
    upstream.mode = "500"
    llm_client.post("/v1/ask", json={"question": QUESTION})
    text = llm_client.get("/metrics").text
    assert 'rag_answers_total{backend="extractive",outcome="degraded"} 1.0' in text
