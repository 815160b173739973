"""API keys, binding rules, body caps, rate limits, CORS and upload path safety."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.security import ApiKeyMiddleware, TokenBucket, check_bind, is_loopback, parse_keys
from api.uploads import UPLOAD_DIR, clean_filename
from tests.api.helpers import UPLOAD_TEXT_BYTES
from tests.api.server import start_server

REPO = Path(__file__).resolve().parents[2]
KEYS = "alpha-key-0123456789,beta-key-9876543210"


# --------------------------------------------------------------------------- keys
@pytest.fixture
def keyed(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(api_keys=KEYS)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("wrong"),
        bearer("alpha-key-012345678"),
        bearer(""),
        {"Authorization": "Basic alpha-key-0123456789"},
        {"Authorization": "alpha-key-0123456789"},
    ],
)
def test_every_route_but_healthz_needs_a_valid_key(
    keyed: TestClient, headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/v1/models"),
        ("GET", "/v1/documents"),
        ("POST", "/v1/search"),
        ("DELETE", "/v1/documents/x"),
        ("GET", "/no/such/route"),
    ]:
        r = keyed.request(method, path, headers=headers, json={"query": "工会"})
        assert r.status_code == 401, (method, path)
        assert r.json()["error"]["type"] == "authentication_error"
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert keyed.get("/healthz", headers=headers).status_code == 200


def test_each_configured_key_is_accepted(keyed: TestClient) -> None:
    for key in parse_keys(KEYS):
        r = keyed.post("/v1/search", json={"query": "工会"}, headers=bearer(key))
        assert r.status_code == 200
    assert keyed.get("/readyz", headers=bearer("beta-key-9876543210")).status_code == 200


def test_key_matching_checks_every_key_and_exact_values() -> None:
    mw = ApiKeyMiddleware(app=None, keys=parse_keys(" a1 , b2,, c3 "))  # type: ignore[arg-type]
    assert [mw.match(k) for k in ("a1", "b2", "c3")] == [0, 1, 2]
    assert mw.match("a") is None and mw.match("a1 ") is None and mw.match("") is None


def test_openapi_shows_the_bearer_scheme_when_keys_are_set(keyed: TestClient) -> None:
    schema = keyed.get("/openapi.json", headers=bearer("alpha-key-0123456789")).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["security"] == [{"bearer": []}]
    assert schema["paths"]["/healthz"]["get"]["security"] == []


# --------------------------------------------------------------------------- binding
@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_addresses_need_no_keys(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, [])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org", ""])
def test_other_addresses_need_keys(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ValueError, match="RAG_API_KEYS"):
        check_bind(host, [])
    check_bind(host, ["k"])


def test_rag_serve_on_all_interfaces_without_keys_refuses_to_start(tmp_path: Path) -> None:
    env = {**os.environ, "RAG_HOME": str(tmp_path), "RAG_EMBED_MODEL": "hash", "RAG_API_KEYS": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "RAG_API_KEYS" in proc.stderr and "refusing" in proc.stderr
    assert not (tmp_path / "index").exists()


def test_rag_serve_on_all_interfaces_with_keys_starts_and_enforces_them(
    home: Path, tmp_path: Path
) -> None:
    server = start_server(home, tmp_path, ready=False, host="0.0.0.0", RAG_API_KEYS=KEYS)
    try:
        assert httpx.get(server.base_url + "/healthz", timeout=10).status_code == 200
        assert httpx.get(server.base_url + "/v1/models", timeout=10).status_code == 401
        ok = httpx.get(
            server.base_url + "/readyz", headers=bearer("beta-key-9876543210"), timeout=10
        )
        assert ok.status_code == 200
    finally:
        server.stop()


# --------------------------------------------------------------------------- body cap
def test_declared_body_over_the_cap_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_max_body_bytes=1000)
    r = client.post("/v1/search", json={"query": "工" * 600})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"
    assert client.post("/v1/search", json={"query": "工会"}).status_code == 200


def test_streamed_body_over_the_cap_is_cut_off(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"query": "'
        for _ in range(50):
            yield "工会".encode() * 20
        yield b'"}'

    r = client.post("/v1/search", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_invalid_content_length_is_400(client: TestClient) -> None:
    r = client.post(
        "/v1/search",
        content=b"{}",
        headers={"content-length": "ten", "content-type": "application/json"},
    )
    assert r.status_code == 400


# --------------------------------------------------------------------------- rate limit
def test_rate_limit_answers_429_with_retry_after(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_rate_limit=1.0, api_rate_burst=3)
    codes = [client.post("/v1/search", json={"query": "工会"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = client.get("/v1/models")
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["type"] == "rate_limit_error"
    # probes are never limited
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_rate_limit_is_per_key(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_rate_limit=1.0, api_rate_burst=2, api_keys=KEYS)
    a, b = bearer("alpha-key-0123456789"), bearer("beta-key-9876543210")
    assert [client.get("/v1/models", headers=a).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/v1/models", headers=b).status_code == 200


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(capacity=2, rate=0.5, tokens=2, stamp=0.0)
    assert bucket.take(0.0) == 0 and bucket.take(0.0) == 0
    assert bucket.take(0.0) == pytest.approx(2.0)
    assert bucket.take(1.0) == pytest.approx(1.0)
    assert bucket.take(2.0) == 0


# --------------------------------------------------------------------------- CORS
def test_cors_is_off_unless_configured(make_client: Callable[..., TestClient]) -> None:
    origin = {"Origin": "https://evil.example"}
    plain = make_client()
    assert "access-control-allow-origin" not in plain.get("/v1/models", headers=origin).headers
    allowed = make_client(api_cors_origins="https://app.example")
    r = allowed.get("/v1/models", headers={"Origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in allowed.get("/v1/models", headers=origin).headers
    pre = allowed.options(
        "/v1/search",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 200


# --------------------------------------------------------------------------- upload paths
@pytest.mark.parametrize(
    "name",
    [
        "../../escape.txt",
        "/etc/cron.d/x.txt",
        "..\\..\\win.txt",
        "a/b/../../c.txt",
        "空格 名字.txt",
    ],
)
def test_upload_names_never_become_paths(
    client: TestClient, home: Path, tmp_path: Path, name: str
) -> None:
    before = {p for p in tmp_path.rglob("*")}
    r = client.post("/v1/documents", files=[("files", (name, UPLOAD_TEXT_BYTES, "text/plain"))])
    assert r.status_code == 200, r.text
    added = r.json()["added"]
    assert [a["filename"] for a in added] == [clean_filename(name)]
    assert "/" not in added[0]["filename"] and "\\" not in added[0]["filename"]
    created = {p for p in tmp_path.rglob("*")} - before
    uploads = home / UPLOAD_DIR
    outside = [
        p
        for p in created
        if uploads not in p.parents and p != uploads and (home / "index") not in p.parents
    ]
    assert outside == []
    assert all(p.name.startswith("upload-") for p in uploads.iterdir())


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../a.txt", "a.txt"),
        ("C:\\Users\\x\\b.md", "b.md"),
        ("nul\x00\x1fc.txt", "nulc.txt"),
        ("", "upload"),
        (None, "upload"),
        ("..", "upload"),
        ("x" * 300 + ".txt", "x" * 195 + "….txt"),  # shortened, the type kept
    ],
)
def test_clean_filename_keeps_only_a_harmless_last_component(raw: str | None, clean: str) -> None:
    assert clean_filename(raw) == clean


def test_upload_does_not_follow_a_planted_symlink(
    client: TestClient, home: Path, tmp_path: Path
) -> None:
    first = client.post(
        "/v1/documents", files=[("files", ("s.txt", UPLOAD_TEXT_BYTES, "text/plain"))]
    )
    stored = next((home / UPLOAD_DIR).glob("upload-*.txt"))
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch", encoding="utf-8")
    stored.unlink()
    stored.symlink_to(victim)
    again = client.post(
        "/v1/documents", files=[("files", ("s.txt", UPLOAD_TEXT_BYTES + b"x\n", "text/plain"))]
    )
    assert first.status_code == again.status_code == 200
    assert victim.read_text(encoding="utf-8") == "do not touch"
    assert stored.is_file() and not stored.is_symlink()


def test_upload_dir_that_is_a_symlink_is_refused(
    client: TestClient, home: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / UPLOAD_DIR).symlink_to(elsewhere)
    r = client.post("/v1/documents", files=[("files", ("s.txt", UPLOAD_TEXT_BYTES, "text/plain"))])
    assert r.status_code == 503
    assert "real directory" in r.json()["error"]["message"]
    assert list(elsewhere.iterdir()) == []
