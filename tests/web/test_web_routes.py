"""Serving the web page (no browser needed): routes, headers, the key rule, and static
checks on the page's files that a browser run would only catch by luck."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from api.routes.web import STATIC_DIR, is_page_path
from rag.settings import Settings

KEY = "route-test-key"
SHIPPED = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())
SCRIPTS = sorted(p.name for p in STATIC_DIR.glob("*.js"))
FONT_STACK = (
    '"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC",\n'
    '    "Source Han Sans SC", sans-serif'
)


def _settings(home: Path, keys: str = "") -> Settings:
    return Settings(
        home=home,
        embed_model="hash",
        api_keys=SecretStr(keys),
        api_rate_limit=0,
        api_reload_interval=0,
        api_cors_origins="",
        api_allowed_hosts="testserver",  # the Host name TestClient sends
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path))) as c:
        yield c


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path, KEY))) as c:
        yield c


def _read(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


# ----------------------------------------------------------------------- routes


def test_page_is_served_with_a_strict_content_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == _read("index.html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]  # page requests pass through the request context
    assert client.head("/").status_code == 200


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        *((name, "text/javascript; charset=utf-8") for name in SCRIPTS),
        ("style.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ],
)
def test_static_files_are_served_with_their_media_type(
    client: TestClient, name: str, media_type: str
) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.content == (STATIC_DIR / name).read_bytes()


def test_unchanged_files_are_revalidated_with_304(client: TestClient) -> None:
    first = client.get("/static/app.js")
    etag = first.headers["etag"]
    again = client.get("/static/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/static/style.css", headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/..%2Froutes%2Fweb.py",
        "/static/%2e%2e/main.py",
        "/static/.hidden.js",
        "/static/index",
        "/static/app.js/extra",
        "/static/",
    ],
)
def test_nothing_but_the_shipped_files_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "import" not in response.text  # no source code leaks out


def test_only_reads_are_page_requests() -> None:
    assert is_page_path("GET", "/") and is_page_path("HEAD", "/static/app.js")
    assert not is_page_path("POST", "/")
    assert not is_page_path("DELETE", "/static/app.js")
    assert not is_page_path("GET", "/v1/documents")
    assert not is_page_path("GET", "/static/missing.css")


def test_page_loads_without_a_key_while_the_api_still_requires_one(keyed: TestClient) -> None:
    for name in SHIPPED:
        path = "/" if name == "index.html" else f"/static/{name}"
        assert keyed.get(path).status_code == 200, path
    assert keyed.get("/v1/documents").status_code == 401
    assert keyed.post("/v1/ask", json={"question": "群团"}).status_code == 401
    assert keyed.get("/static/missing.js").status_code == 401  # not a page file: API rules
    assert keyed.post("/").status_code == 401
    authorised = keyed.get("/v1/documents", headers={"Authorization": f"Bearer {KEY}"})
    assert authorised.status_code != 401


def test_page_routes_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


# ----------------------------------------------------------------------- the files


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.controls: list[str] = []
        self.labelled: set[str] = set()
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action") and v is not None]
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a.get("id") or "")
        if tag == "label" and a.get("for"):
            self.labelled.add(a["for"] or "")
        if any(k.startswith("on") for k in a):
            self.inline_scripts += 1
        self._in_script = tag == "script" and "src" not in a

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_page_fetches_nothing_from_outside_the_server() -> None:
    page = _Collect()
    page.feed(_read("index.html"))
    assert page.urls and all(u.startswith(("/", "#")) and not u.startswith("//") for u in page.urls)
    assert page.inline_scripts == 0  # the policy forbids them; the page does not need them
    for name in [*SCRIPTS, "style.css"]:
        text = _read(name)
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), name
    assert "@import" not in _read("style.css") and "@font-face" not in _read("style.css")


def test_scripts_import_only_shipped_modules() -> None:
    assert "app.js" in SCRIPTS
    for name in SCRIPTS:
        for target in re.findall(r'^import [^;]*? from "([^"]+)";$', _read(name), re.M):
            assert target.startswith("./") and target[2:] in SCRIPTS, (name, target)


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_never_parse_text_as_html(name: str) -> None:
    script = _read(name)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "DOMParser", "createContextualFragment"):  # fmt: skip
        assert sink not in script, sink


def test_every_form_control_has_a_label() -> None:
    page = _Collect()
    page.feed(_read("index.html"))
    assert page.controls
    assert all(c and c in page.labelled for c in page.controls), page.controls


def test_typography_uses_the_system_cjk_font_stack() -> None:
    css = _read("style.css")
    assert f"--font: {FONT_STACK};" in css
    assert "font-family: var(--font);" in css
    assert re.search(r"body \{[^}]*line-height: 1\.[6-9]", css)
