"""Small hardening fixes: strict request types, relative redirects, API keys a client
can send, no server paths in errors, bounded metric labels, long upload names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from index.store import IndexStore
from tests.api.helpers import UPLOAD_TEXT_BYTES, api_settings

Q = "工会要做什么？"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/search", {"query": Q, "top_k": "5"}, "top_k"),
        ("/v1/search", {"query": Q, "top_k": True}, "top_k"),
        ("/v1/ask", {"question": Q, "top_k": 5.0}, "top_k"),
        ("/v1/ask", {"question": Q, "stream": "yes"}, "stream"),
        ("/v1/ask", {"question": Q, "stream": 1}, "stream"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": Q}], "stream": "yes"}, "stream"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": Q}], "max_tokens": "9"}, "max_tokens"),
    ],
)  # fmt: skip
def test_loosely_typed_fields_are_422(
    client: TestClient, path: str, body: dict[str, object], param: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == param


def test_the_openai_endpoint_takes_what_openai_takes(client: TestClient) -> None:
    body = {"messages": [{"role": "user", "content": Q}], "temperature": 1, "max_tokens": 50}
    assert client.post("/v1/chat/completions", json=body).status_code == 200


def test_redirects_do_not_trust_the_host_header(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_allowed_hosts="*")  # as behind a proxy: any Host gets here
    r = client.get("/v1/documents/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code in (307, 308)
    assert r.headers["location"] == "/v1/documents"


def test_a_key_no_client_can_send_is_refused_at_start(home: Path) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        create_app(api_settings(home, api_keys="good-key,clé-secrète"))


def test_the_index_lock_message_does_not_show_server_paths(
    make_client: Callable[..., TestClient], home: Path
) -> None:
    client = make_client(api_write_lock_wait=0.1)
    with IndexStore(home).writer(timeout=5):
        r = client.post(
            "/v1/documents", files={"files": ("a.txt", UPLOAD_TEXT_BYTES, "text/plain")}
        )
    assert r.status_code == 503, r.text
    message = r.json()["error"]["message"]
    assert str(home) not in message and "/" not in message
    assert "another process is writing the index" in message


def test_invented_methods_share_one_metrics_label(client: TestClient) -> None:
    for method in ("FOO", "BAR", "X" * 40):
        client.request(method, "/v1/search")
    text = client.get("/metrics").text
    assert 'method="other"' in text
    assert "FOO" not in text and "BAR" not in text


def test_a_long_file_name_keeps_its_type(client: TestClient) -> None:
    name = "讲话" * 150 + ".txt"
    r = client.post("/v1/documents", files={"files": (name, UPLOAD_TEXT_BYTES, "text/plain")})
    assert r.status_code == 200, r.text
    stored = r.json()["added"][0]["filename"]
    assert stored.endswith("….txt") and len(stored) == 200
