"""API keys, rate limits and request-size caps, as plain ASGI middleware.

They sit outside the routes so that they hold for every path, including ones that
do not exist (a 404 is still behind the key) and the OpenAPI page. Order, outermost
first: request context (observability) → CORS (only when configured, so browsers'
preflights work) → keys → rate limit → body cap → routes.

* Keys: ``Authorization: Bearer <key>``; every configured key is compared, in constant
  time, whatever the outcome, so timing tells nothing about which prefix matched.
  Only ``/healthz`` is open. Without keys the server must bind to loopback
  (``check_bind``), where only this machine can reach it.
* Rate limit: a token bucket per key, or per client address without keys; 429 with
  ``Retry-After``. Probes (``/healthz``, ``/readyz``) and ``/metrics`` are not counted.
* Body cap: a declared ``Content-Length`` over the cap is refused before anything is
  read; a body without one is counted as it streams in and cut off at the cap.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response, run_with_body_reader

__all__ = [
    "OPEN_PATHS",
    "UNLIMITED_PATHS",
    "ApiKeyMiddleware",
    "BodyLimitMiddleware",
    "BodyTooLarge",
    "OriginHostMiddleware",
    "RateLimitMiddleware",
    "TokenBucket",
    "allowed_hosts",
    "check_bind",
    "host_name",
    "is_loopback",
    "parse_keys",
]

OPEN_PATHS: frozenset[str] = frozenset({"/healthz"})
UNLIMITED_PATHS: frozenset[str] = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_TRACKED_CLIENTS = 10_000  # buckets kept before idle (full) ones are dropped
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def parse_keys(value: SecretStr | str | None) -> list[str]:
    """Comma-separated keys → list (blank entries dropped). Raises ValueError for a key
    a client could never send: HTTP header values are ASCII in practice (clients encode
    others differently, or refuse), so a key with other characters never matches."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else (value or "")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    for n, key in enumerate(keys, start=1):
        if not (key.isascii() and key.isprintable()) or " " in key:
            raise ValueError(
                f"API key #{n} in RAG_API_KEYS has characters other than printable ASCII "
                "without spaces; clients send keys in an HTTP header, where such a key "
                "could never match. Use letters, digits and punctuation only."
            )
    return keys


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys: Iterable[str]) -> None:
    """Refuse to serve beyond this machine without API keys (raises ValueError)."""
    if not is_loopback(host) and not list(keys):
        raise ValueError(
            f"refusing to listen on {host!r} without API keys: anyone who can reach this "
            "address could query and change the index. Set RAG_API_KEYS to one or more "
            "comma-separated secret tokens (clients send `Authorization: Bearer <token>`), "
            "or bind to 127.0.0.1."
        )


async def _reject(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    response = error_response(status, message, headers=dict(headers or {}))
    await response(scope, receive, send)


# --------------------------------------------------------------------------- API keys
class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, keys: Iterable[str]) -> None:
        self.app = app
        self.keys = [k.encode("utf-8") for k in keys]

    def match(self, token: str) -> int | None:
        """Index of the matching key; compares against every key regardless."""
        candidate = token.encode("utf-8")
        found: int | None = None
        for i, key in enumerate(self.keys):
            if hmac.compare_digest(candidate, key) and found is None:
                found = i
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        index = self.match(token.strip()) if scheme.lower() == "bearer" else None
        if index is None:
            await _reject(
                scope,
                receive,
                send,
                401,
                "missing or invalid API key: send `Authorization: Bearer <key>`",
                {"WWW-Authenticate": "Bearer"},
            )
            return
        scope.setdefault("state", {})["client_id"] = f"key-{index}"
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------- rate limit
# Hand-written on purpose, not the `limits` package: `limits` has fixed, moving and
# sliding windows but no token bucket, so "RAG_API_RATE_LIMIT per minute, bursts of
# RAG_API_RATE_BURST" would become "burst per burst/rate seconds", where a client that
# spent its burst waits the whole window (12 s at the defaults) instead of one token's
# refill (0.2 s). Its in-memory storage also runs on the wall clock (a clock step
# unblocks or blocks everyone) and re-arms a 10 ms timer thread while any key lives.
# The bucket is 15 lines on the event loop's monotonic clock, with bounded memory.
@dataclass
class TokenBucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """Take one token; returns 0 on success, else seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimitMiddleware:
    """Per-client token buckets (the event loop is single-threaded: no lock needed)."""

    def __init__(self, app: ASGIApp, per_minute: float, burst: int) -> None:
        self.app = app
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.buckets: dict[str, TokenBucket] = {}

    def _bucket(self, client: str, now: float) -> TokenBucket:
        bucket = self.buckets.get(client)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED_CLIENTS:
                self._forget_idle(now)
            bucket = TokenBucket(self.burst, self.rate, float(self.burst), now)
            self.buckets[client] = bucket
        return bucket

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled completely: they carry no information."""
        for client, b in list(self.buckets.items()):
            if b.tokens + (now - b.stamp) * b.rate >= b.capacity:
                del self.buckets[client]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate <= 0 or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("state", {}).get("client_id")
        if client is None:
            peer = scope.get("client")
            client = f"ip-{peer[0]}" if peer else "ip-unknown"
        now = time.monotonic()
        wait = self._bucket(client, now).take(now)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            await _reject(
                scope,
                receive,
                send,
                429,
                f"rate limit exceeded; retry in {seconds} s",
                {"Retry-After": str(seconds)},
            )
            return
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------- body cap
class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a body passes its cap. FastAPI re-raises HTTP
    exceptions met while reading a body, so this becomes an ordinary 413 response."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, default: int, overrides: Mapping[tuple[str, str], int]
    ) -> None:
        self.app = app
        self.default = default
        self.overrides = dict(overrides)  # (method, path) → cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.overrides.get((scope["method"], scope["path"]), self.default)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reject(scope, receive, send, 400, "invalid Content-Length header")
                return
            if int(declared) > limit:
                await _reject(
                    scope,
                    receive,
                    send,
                    413,
                    f"request body of {declared} bytes is over the {limit}-byte limit",
                )
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await run_with_body_reader(self.app, scope, receive, send, counted, BodyTooLarge)


# --------------------------------------------------------------------------- origin / host
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
_CROSS_SITE = frozenset({"cross-site", "same-site"})  # Sec-Fetch-Site values from elsewhere


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header value (``[::1]:8000`` → ``[::1]``), lower-cased."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts(bind_host: str, extra: str) -> frozenset[str] | None:
    """Host names the server answers to: loopback names, the bound address unless it is a
    wildcard, and ``extra`` (comma-separated; ``*`` allows any, i.e. ``None``)."""
    names = {h.strip().lower() for h in extra.split(",") if h.strip()}
    if "*" in names:
        return None
    bind = bind_host.strip().lower()
    if bind and bind not in ("0.0.0.0", "::", "[::]"):
        names.add(f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind)
    return frozenset(LOOPBACK_HOSTS | names)


class OriginHostMiddleware:
    """Against DNS rebinding and cross-site requests from web pages.

    * ``Host`` must name this server (``allowed_hosts``): a page on ``evil.example``
      whose DNS name was rebound to 127.0.0.1 sends ``Host: evil.example`` → 400.
    * A state-changing request (POST, PUT, PATCH, DELETE) that a browser marks as
      coming from another origin (``Origin`` not this server's and not a configured
      CORS origin, or ``Sec-Fetch-Site: cross-site``/``same-site`` without an allowed
      ``Origin``) → 403. Clients that are not browsers send neither header and pass.
    """

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None, origins: Iterable[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            await _reject(
                scope, receive, send, 400,
                "this server does not answer to that Host name; add it to RAG_API_ALLOWED_HOSTS "
                "if it is a name of this server",
            )  # fmt: skip
            return
        if scope["method"] in STATE_CHANGING and not self._same_origin(headers, host):
            await _reject(
                scope, receive, send, 403,
                "cross-origin request refused: this server accepts changes only from its own "
                "page or an origin listed in RAG_API_CORS_ORIGINS",
            )  # fmt: skip
            return
        await self.app(scope, receive, send)

    def _same_origin(self, headers: Headers, host: str) -> bool:
        origin = headers.get("origin")
        if origin is not None:
            origin = origin.rstrip("/").lower()
            if origin in self.origins:
                return True
            scheme, _, netloc = origin.partition("://")
            return scheme in ("http", "https") and netloc == host.strip().lower()
        return headers.get("sec-fetch-site", "none").lower() not in _CROSS_SITE
