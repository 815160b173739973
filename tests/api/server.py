"""``rag serve`` as a real process on a free loopback port, for the reliability tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx

from tests.llm_server import LoopbackProcess, free_port

__all__ = ["REPO", "ServerProcess", "server_env", "start_server"]

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        {
            "RAG_HOME": str(home),
            "RAG_EMBED_MODEL": "hash",
            "RAG_API_RATE_LIMIT": "0",
            "RAG_API_RELOAD_INTERVAL": "0.5",
            "RAG_BACKEND": "extractive",
        }
    )
    env.update(extra)
    return env


@dataclass
class ServerProcess(LoopbackProcess):
    stop_timeout: ClassVar[float] = STOP_TIMEOUT_S
    tail_chars: ClassVar[int] = 3000


def start_server(
    home: Path, log_dir: Path, *, ready: bool = True, host: str = "127.0.0.1", **env: str
) -> ServerProcess:
    """Start ``python -m cli serve`` and wait (bounded) for /healthz, and /readyz if asked."""
    port = free_port()
    log_path = log_dir / f"serve-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--host", host, "--port", str(port)],
            cwd=REPO,
            env=server_env(home, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    probe = "/readyz" if ready else "/healthz"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rag serve exited ({process.returncode}):\n{server.log_tail()}")
        try:
            if httpx.get(server.base_url + probe, timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"rag serve not ready after {STARTUP_TIMEOUT_S:.0f}s:\n{server.log_tail()}")
