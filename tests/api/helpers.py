"""Constants and helpers shared by the API tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.settings import Settings

__all__ = [
    "CORPUS",
    "QUESTION",
    "TEST_DEFAULTS",
    "UNIQUE",
    "UPLOAD_TEXT",
    "UPLOAD_TEXT_BYTES",
    "api_settings",
    "sse_events",
]

CORPUS = Path(__file__).resolve().parents[2] / "rag" / "corpus"
QUESTION = "苏宁讲话主要回答了哪三个问题？"
UNIQUE = "蓝鲸港口青年志愿服务队"  # a phrase no bundled speech contains
UPLOAD_TEXT = (
    f"关于{UNIQUE}的讲话\n同志们：\n今天我们召开会议，表彰{UNIQUE}。"
    f"{UNIQUE}在港口建设中发挥了突击队作用。各级团组织要学习{UNIQUE}的经验。\n"
)
UPLOAD_TEXT_BYTES = UPLOAD_TEXT.encode("utf-8")

# Quiet, deterministic defaults: no background index polling, no rate limit unless a
# test asks for one, no API keys or CORS from the developer's environment, and an LLM
# backend that fails at once (a closed loopback port) when a request picks it.
TEST_DEFAULTS: dict[str, Any] = {
    "embed_model": "hash",
    "api_reload_interval": 0,
    "api_rate_limit": 0,
    "api_keys": "",
    "api_cors_origins": "",
    "api_allowed_hosts": "testserver",  # the Host name TestClient sends
    "backend": "extractive",
    "llm_base_url": "http://127.0.0.1:9/v1",
    "llm_max_retries": 0,
    "llm_deadline": 5.0,
}


def api_settings(home: Path, **overrides: Any) -> Settings:
    return Settings(home=home, **{**TEST_DEFAULTS, **overrides})


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event name, data) pairs of a server-sent-events body; comments skipped."""
    events = []
    for block in text.split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if data:
            events.append((name, "\n".join(data)))
    return events
