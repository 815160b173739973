"""Input the API must refuse with a clear 422 (never a 500 and a traceback): lone
surrogates in any text field, questions without content, loosely typed fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.question import NO_CONTENT

Q = "工会要做什么？"


def post_raw(client: TestClient, path: str, body: str) -> Any:
    """POST ``body`` as written: JSON ``\\ud800`` escapes survive (json.dumps would too,
    but writing them out shows what a client really sends)."""
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


SURROGATE_BODIES = [
    ("/v1/ask", '{"question": "\\ud800"}', "question"),
    ("/v1/ask", '{"question": "工会\\udcff"}', "question"),
    ("/v1/search", '{"query": "\\ud800"}', "query"),
    ("/v1/ask", json.dumps({"question": Q})[:-1] + ', "history": [{"role": "user", "content": "\\ud800"}]}', "history.0.content"),
    ("/v1/ask", json.dumps({"question": Q})[:-1] + ', "filters": {"speaker": "\\ud800"}}', "filters.speaker"),
    ("/v1/search", json.dumps({"query": Q})[:-1] + ', "filters": {"doc_ids": ["\\udfff"]}}', "filters.doc_ids.0"),
    ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "\\ud800"}]}', "messages.0.content"),
    ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "user", "content": "工会"}]}', "messages.0.content"),
    ("/v1/chat/completions", '{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud800"}]}]}', "messages.0.content"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "param"), SURROGATE_BODIES)
def test_lone_surrogates_are_a_clear_422(
    client: TestClient, path: str, body: str, param: str
) -> None:
    r = post_raw(client, path, body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["param"] == param
    assert "lone surrogate" in error["message"] and "function-before" not in error["message"]


@pytest.mark.parametrize("question", ["？？？", "a", "😀", "\u200b\u200b\u200b", "!!!"])
def test_questions_without_content_are_refused(client: TestClient, question: str) -> None:
    for path, body in (
        ("/v1/ask", {"question": question}),
        ("/v1/search", {"query": question}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": question}]}),
    ):
        r = client.post(path, json=body)
        assert r.status_code == 422, (path, r.text)
        assert NO_CONTENT in r.json()["error"]["message"]
