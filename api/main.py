"""The FastAPI app: ``create_app(settings)`` builds it, ``serve(settings)`` runs it.

Heavy resources (the embedding model and the index) are loaded once, in the
lifespan, on a worker thread; a background task then watches the index pointer so
generations written by ``rag ingest`` in another process are served without a
restart. Blocking routes are plain ``def`` functions: FastAPI runs them on its thread
pool, so they never block the event loop; answers drafted by an LLM run on a
separate bounded pool (``api.llm_pool``), so slow upstreams cannot take those threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.deps import GENERATION_HEADER, get_settings
from api.errors import documented, install_error_handlers
from api.llm_pool import LlmPool
from api.observability import REQUEST_ID_HEADER, Metrics, RequestContextMiddleware, logging_config
from api.routes import ROUTERS, web
from api.security import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    OriginHostMiddleware,
    RateLimitMiddleware,
    allowed_hosts,
    check_bind,
    parse_keys,
)
from api.service import ServedPipeline, Service
from api.timeouts import BodyTimeoutMiddleware, h11_protocol
from rag.embed.base import Embedder
from rag.settings import Settings

__all__ = ["API_VERSION", "app_factory", "create_app", "serve"]

API_VERSION = "1.0.0"
UPLOAD_OVERHEAD_BYTES = 16 << 10  # multipart boundaries and part headers around the files
GRACEFUL_SHUTDOWN_S = 10
log = logging.getLogger("api")

DESCRIPTION = """\
Cited question answering over Chinese speeches on 群团工作 (trade unions, the Youth
League, women's federations).

* `POST /v1/search`: passages; `POST /v1/ask`: a cited answer (optionally streamed).
* `POST /v1/chat/completions`, `GET /v1/models`: OpenAI-compatible, for chat clients.
* `/v1/documents`: list, upload, delete speeches.

Every response names the index generation it was answered from in `X-Index-Generation`
and carries an `X-Request-ID`. Errors are `{"error": {"type", "message", ...}}`.
"""


async def _watch_index(service: Service, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(service.refresh)
        except Exception:  # keep watching; the next round may succeed
            log.exception("index refresh failed")


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> FastAPI:
    """Build the app. ``embedder`` replaces the configured model (tests pass a shared one)."""
    settings = settings or get_settings()
    metrics = Metrics()

    def on_publish(pipeline: ServedPipeline) -> None:
        state = pipeline.state()
        metrics.observe_index(pipeline.generation, len(state.documents), len(state.chunks))

    service = Service(settings, embedder=embedder, on_publish=on_publish)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(service.start)
        watcher = None
        if settings.api_reload_interval > 0:
            watcher = asyncio.create_task(_watch_index(service, settings.api_reload_interval))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            service.close()

    app = FastAPI(
        title="qunti-rag", version=API_VERSION, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.service = service
    app.state.llm_pool = LlmPool(settings.api_llm_concurrency)
    app.state.metrics = metrics
    app.dependency_overrides[get_settings] = lambda: settings
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, responses=documented(400, 401, 429, 500))

    # Middleware: added innermost first (see api.security for the order and why).
    upload_cap = settings.api_max_upload_total_bytes + UPLOAD_OVERHEAD_BYTES
    app.add_middleware(
        BodyLimitMiddleware,
        default=settings.api_max_body_bytes,
        overrides={("POST", "/v1/documents"): upload_cap},
    )
    app.add_middleware(BodyTimeoutMiddleware, timeout=settings.api_body_timeout)
    if settings.api_rate_limit > 0:
        app.add_middleware(
            RateLimitMiddleware, per_minute=settings.api_rate_limit, burst=settings.api_rate_burst
        )
    keys = parse_keys(settings.api_keys)
    if keys:
        app.add_middleware(ApiKeyMiddleware, keys=keys)
        _document_bearer_auth(app)
    origins = [o.strip() for o in settings.api_cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER, GENERATION_HEADER],
        )
    web.install(app)  # the web page (/, /static/*), served ahead of the API-key check
    app.add_middleware(
        OriginHostMiddleware,
        hosts=allowed_hosts(settings.api_host, settings.api_allowed_hosts),
        origins=origins,
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


def _document_bearer_auth(app: FastAPI) -> None:
    """Show the bearer-key requirement in the OpenAPI schema (enforced by middleware)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
            schema["paths"].get("/healthz", {}).get("get", {})["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_factory() -> FastAPI:
    """For ``uvicorn --factory api.main:app_factory`` (settings from the environment)."""
    return create_app()


def serve(settings: Settings) -> None:
    """Run the API with uvicorn; refuses a non-loopback address without API keys."""
    check_bind(settings.api_host, parse_keys(settings.api_keys))
    import uvicorn

    config = logging_config(settings.api_log_level)
    logging.config.dictConfig(config)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=config,
        access_log=False,  # RequestContextMiddleware writes the access line, with the request id
        limit_concurrency=settings.api_max_concurrency,
        http=h11_protocol(settings.api_header_timeout),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
