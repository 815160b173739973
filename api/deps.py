"""Dependencies the routes declare, as ``Annotated`` aliases.

``get_settings`` is the one cached settings object; ``create_app(settings)`` overrides
it with the settings the app was built with, and tests may override it again through
``app.dependency_overrides``. ``ServedPipelineDep`` is how a route gets the index:
it takes the served pipeline once (so the whole request sees one generation) and
names that generation in the ``X-Index-Generation`` response header.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from api.llm_pool import LlmPool
from api.observability import Metrics
from api.service import ServedPipeline, Service
from rag.settings import Settings, get_settings

__all__ = [
    "GENERATION_HEADER",
    "LlmPoolDep",
    "MetricsDep",
    "ServedPipelineDep",
    "ServiceDep",
    "SettingsDep",
    "current_pipeline",
    "get_llm_pool",
    "get_metrics",
    "get_service",
    "get_settings",
]

GENERATION_HEADER = "X-Index-Generation"


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_llm_pool(request: Request) -> LlmPool:
    pool: LlmPool = request.app.state.llm_pool
    return pool


def current_pipeline(
    service: Annotated[Service, Depends(get_service)], response: Response
) -> ServedPipeline:
    pipeline = service.current()  # raises NotReady → 503
    response.headers[GENERATION_HEADER] = pipeline.generation
    return pipeline


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[Service, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
LlmPoolDep = Annotated[LlmPool, Depends(get_llm_pool)]
ServedPipelineDep = Annotated[ServedPipeline, Depends(current_pipeline)]
