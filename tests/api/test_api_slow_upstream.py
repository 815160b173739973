"""A real ``rag serve`` whose LLM upstream stalls (keep-alive comments, a byte at a
time): answers fall back within the deadline, and the rest of the API keeps answering
while many of them are in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import QUESTION
from tests.api.server import start_server
from tests.fake_llm import FakeLLM

DEADLINE_S = 3.0
MARGIN_S = 5.0  # generous: the bound is the deadline plus scheduling noise
IN_FLIGHT = 45  # more than anyio's 40 shared worker threads
LLM_THREADS = 4


@pytest.fixture
def stalling() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    yield fake
    fake.close()


@pytest.mark.parametrize("mode", ["keepalive", "trickle"])
def test_stalled_llm_answers_leave_the_rest_of_the_api_answering(
    home: Path, tmp_path: Path, stalling: FakeLLM, mode: str
) -> None:
    stalling.mode = mode
    server = start_server(
        home,
        tmp_path,
        RAG_BACKEND="openai",
        RAG_LLM_BASE_URL=stalling.base_url,
        RAG_LLM_DEADLINE=str(DEADLINE_S),
        RAG_LLM_READ_TIMEOUT="60",
        RAG_LLM_MAX_RETRIES="0",
        RAG_API_LLM_CONCURRENCY=str(LLM_THREADS),
    )
    results: list[tuple[int, dict[str, Any], float]] = []
    errors: list[str] = []

    # clients made up front: building one (its TLS context) costs the GIL time that
    # would otherwise count against the answers being timed
    clients = [
        httpx.Client(base_url=server.base_url, timeout=DEADLINE_S * 10) for _ in range(IN_FLIGHT)
    ]

    def ask(client: httpx.Client) -> None:
        started = time.monotonic()
        try:
            r = client.post("/v1/ask", json={"question": QUESTION})
            results.append((r.status_code, r.json(), time.monotonic() - started))
        except httpx.HTTPError as exc:
            errors.append(repr(exc))

    try:
        # warm the extractive fallback's caches, so the bound below measures the deadline
        warm = {"question": QUESTION, "backend": "extractive"}
        assert httpx.post(server.base_url + "/v1/ask", json=warm, timeout=60).status_code == 200
        threads = [threading.Thread(target=ask, args=(c,), daemon=True) for c in clients]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the asks are in flight, waiting on the upstream
        with httpx.Client(base_url=server.base_url, timeout=DEADLINE_S) as c:
            assert c.get("/healthz").status_code == 200
            assert c.post("/v1/search", json={"query": QUESTION}).status_code == 200
            assert c.get("/v1/documents").status_code == 200
        for t in threads:
            t.join(DEADLINE_S * 10)
    finally:
        server.stop()
        for client in clients:
            client.close()
    assert not errors, errors[:3]
    statuses = sorted({status for status, _, _ in results})
    assert set(statuses) <= {200, 503}, statuses
    answered = [(body, took) for status, body, took in results if status == 200]
    busy = [body for status, body, _ in results if status == 503]
    assert answered and busy  # LLM_THREADS of them got a thread, the rest were told to retry
    for body, took in answered:
        assert body["degraded"] is True and body["citations"]
        assert took < DEADLINE_S + MARGIN_S, sorted(round(t, 1) for _, t in answered)
    assert all(b["error"]["code"] == "llm_busy" for b in busy)
    assert stalling.requests >= LLM_THREADS
