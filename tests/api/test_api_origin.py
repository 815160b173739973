"""DNS rebinding and cross-site requests on the default set-up (loopback, no keys):
foreign ``Host`` names are refused, and so are state-changing requests a browser marks
as coming from another origin; the server's own page and non-browser clients pass."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import UPLOAD_TEXT_BYTES

Q = {"query": "工会要做什么？"}
FILES = {"files": ("a.txt", UPLOAD_TEXT_BYTES, "text/plain")}


@pytest.fixture
def loopback(make_client: Callable[..., TestClient]) -> TestClient:
    """A client that talks as a browser on the server's own page would."""
    client = make_client(api_allowed_hosts="")
    client.base_url = client.base_url.copy_with(host="127.0.0.1", port=8000)
    return client


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io"])
def test_foreign_host_names_are_refused(loopback: TestClient, host: str) -> None:
    r = loopback.get("/v1/documents", headers={"Host": host})
    assert r.status_code == 400 and "Host" in r.json()["error"]["message"]


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"])
def test_loopback_host_names_are_served(loopback: TestClient, host: str) -> None:
    assert loopback.get("/healthz", headers={"Host": host}).status_code == 200


def test_extra_host_names_can_be_allowed(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_allowed_hosts="rag.internal")
    assert client.get("/healthz", headers={"Host": "rag.internal:8000"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://127.0.0.1:9999"},  # another port is another origin
    ],
)
def test_cross_origin_changes_are_refused(loopback: TestClient, headers: dict[str, str]) -> None:
    r = loopback.post("/v1/documents", files=FILES, headers=headers)
    assert r.status_code == 403, r.text
    assert loopback.post("/v1/search", json=Q, headers=headers).status_code == 403
    assert loopback.delete("/v1/documents/x", headers=headers).status_code == 403


def test_same_origin_and_non_browser_requests_pass(loopback: TestClient) -> None:
    own = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
    assert loopback.post("/v1/search", json=Q, headers=own).status_code == 200
    assert loopback.post("/v1/search", json=Q).status_code == 200  # curl, scripts
    assert (
        loopback.get("/v1/documents", headers={"Origin": "https://evil.example"}).status_code == 200
    )


def test_configured_cors_origins_may_post(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_cors_origins="https://app.example")
    r = client.post("/v1/search", json=Q, headers={"Origin": "https://app.example"})
    assert r.status_code == 200
