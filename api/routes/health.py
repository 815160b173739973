"""Probes and metrics: ``/healthz`` (process up), ``/readyz`` (index and model loaded), ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import MetricsDep, ServiceDep
from api.errors import documented
from api.schemas import HealthOut, ReadyOut

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> dict[str, str]:
    """The process is up (never behind the API key). Answered on the event loop, so it
    needs no worker thread and stays quick however busy the threads are."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyOut, responses=documented(503))
def readyz(service: ServiceDep) -> dict[str, Any]:
    """Ready when the embedding model and an index generation are loaded; else 503 and why."""
    pipeline = service.current()
    state = pipeline.state()
    return {
        "status": "ready",
        "generation": pipeline.generation,
        "documents": len(state.documents),
        "chunks": len(state.chunks),
        "embed_model": state.manifest.model_id,
    }


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            "description": "Prometheus text format.",
        }
    },
)
def metrics(metrics: MetricsDep) -> Response:
    """Request counts and latencies per route, retrieval and answer timings, index size."""
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
