"""Request ids, structured JSON logs and Prometheus metrics.

``RequestContextMiddleware`` is the outermost layer: it gives every request an id
(the client's ``X-Request-ID`` when it is a sane token, else a new one), echoes it in
the response, puts it on every log line written while the request runs (worker
threads included: the thread pool copies context variables), times the request for
``/metrics`` and writes one access-log line. It also turns an exception that escaped
everything else into a JSON 500 carrying that id, so a bug report can quote it.

Metrics live in a registry per app (tests build many apps in one process). Route
labels are route templates (``/v1/documents/{doc_id}``), never raw paths, so a client
cannot blow up the number of series.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from rag.answer import Answer

__all__ = [
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "Metrics",
    "RequestContextMiddleware",
    "logging_config",
]

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
access_log = logging.getLogger("api.access")
error_log = logging.getLogger("api.errors")

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colour codes
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            data["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def logging_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server (uvicorn's loggers included)."""
    lvl = level.upper()
    handler = {"handlers": ["stderr"], "level": lvl, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "api": handler,
            "rag": handler,
            "index": handler,
            "uvicorn": handler,
            "uvicorn.error": handler,
            # our own access line carries the request id, status and duration
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


class Metrics:
    """The Prometheus series the server exports (``GET /metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "rag_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "rag_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("rag_http_requests_in_flight", "Requests being served.", registry=r)
        self.retrieval = Histogram(
            "rag_retrieval_seconds",
            "Retrieval time per search or question.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.answer = Histogram(
            "rag_answer_seconds",
            "Drafting and citation checking per answer.",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "rag_answers", "Answers by backend and outcome.", ["backend", "outcome"], registry=r
        )
        self.index_documents = Gauge(
            "rag_index_documents", "Documents in the served index.", registry=r
        )
        self.index_chunks = Gauge("rag_index_chunks", "Chunks in the served index.", registry=r)
        self.index_generation = Gauge(
            "rag_index_generation", "Number of the served generation.", registry=r
        )
        self.index_swaps = Counter("rag_index_swaps", "Index generations swapped in.", registry=r)

    def observe_index(self, generation: str, documents: int, chunks: int) -> None:
        self.index_documents.set(documents)
        self.index_chunks.set(chunks)
        digits = generation.rpartition("-")[2]
        self.index_generation.set(int(digits) if digits.isdigit() else 0)
        self.index_swaps.inc()

    def observe_answer(self, answer: Answer, endpoint: str) -> None:
        timings = answer.timings_ms or {}
        if "retrieve" in timings:
            self.retrieval.labels(endpoint).observe(timings["retrieve"] / 1000)
        if "answer" in timings:
            self.answer.labels(answer.backend or "unknown").observe(timings["answer"] / 1000)
        outcome = "degraded" if answer.degraded else "refused" if answer.refused else "answered"
        self.answers.labels(answer.backend or "unknown", outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def relative_location(location: str) -> str:
    """A redirect target without scheme and host: Starlette builds them from the client's
    own ``Host`` header, which would let a forged header send the client elsewhere."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location
    path = parts.path or "/"
    return path + (f"?{parts.query}" if parts.query else "")


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method_label(scope: Scope) -> str:
    """The request method, or "other": a client can invent any number of method names,
    and each would otherwise be a new series."""
    method = str(scope.get("method", ""))
    return method if method in KNOWN_METHODS else "other"


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    """Request id, access log, metrics and the last-resort JSON 500 (see module docstring)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                if "location" in headers:
                    headers["location"] = relative_location(headers["location"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception("unhandled error", extra={"path": scope.get("path", "")})
            status = 500
            if not response_started:
                response = error_response(
                    500, f"internal server error; it was logged with request id {request_id}"
                )
                await response(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            method = scope.get("method", "")
            route = _route_label(scope)
            self.metrics.requests.labels(_method_label(scope), route, str(status)).inc()
            self.metrics.latency.labels(_method_label(scope), route).observe(elapsed)
            client = scope.get("client")
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope.get("path", ""),
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
            REQUEST_ID.reset(token)
