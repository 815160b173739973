"""A llama.cpp server on loopback, managed for the local backend.

``LocalServer.ensure()`` returns the base URL of a server for the configured model:
the one recorded in ``<home>/llm/server.json`` if it still answers its health check
and serves the same model, or a new child process on a free port. The state file is
read and written under a file lock, so rag processes sharing a home start one server
between them. The process that started the server stops it on ``stop()`` (and at exit);
the child also watches its parent and exits with it (``rag.llm.child``), so a killed
rag leaves no server behind. Other processes that reused it start a new one when they
find it gone.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from filelock import FileLock
from filelock import Timeout as LockTimeout

__all__ = ["LocalServer", "ServerError", "ServerRecord", "STATE_FILE", "free_port", "healthy"]

STATE_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
HEALTH_PATH = "/models"  # under the /v1 base URL
STOP_TIMEOUT = 5.0
MODEL_ALIAS = "local"


class ServerError(RuntimeError):
    """The local LLM server could not be started or reached."""


@dataclass(frozen=True)
class ServerRecord:
    pid: int
    port: int
    model: str
    owner: int  # pid of the rag process that started it

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(base_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(base_url + HEALTH_PATH, timeout=timeout).is_success
    except httpx.HTTPError:
        return False


class LocalServer:
    """Start, reuse and stop the llama.cpp server that serves ``model``."""

    def __init__(
        self,
        state_dir: Path,
        model: Path,
        *,
        threads: int = 2,
        ctx: int = 4096,
        startup_timeout: float = 120.0,
        module: str = "llama_cpp.server",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.model = Path(model)
        self.threads = threads
        self.ctx = ctx
        self.startup_timeout = startup_timeout
        self.module = module
        self._clock = clock
        self._process: subprocess.Popen[bytes] | None = None
        self._record: ServerRecord | None = None
        self._mutex = threading.Lock()  # API request threads share one manager

    # ----------------------------------------------------------------- state file
    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_FILE

    def _lock(self, timeout: float) -> FileLock:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.state_dir / LOCK_FILE), timeout=timeout)

    def read_record(self) -> ServerRecord | None:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            return ServerRecord(**{k: data[k] for k in ("pid", "port", "model", "owner")})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_record(self, record: ServerRecord) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
        os.replace(tmp, self.state_path)

    # ----------------------------------------------------------------- lifecycle
    @property
    def owned(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ensure(self) -> str:
        """The base URL (ending in /v1) of a healthy server for the model."""
        with self._mutex:
            if self._record is not None and (
                self.owned if self._process is not None else healthy(self._record.base_url)
            ):
                return self._record.base_url
            self._forget()
            try:
                return self._reuse_or_start()
            except LockTimeout as exc:
                raise ServerError(f"another process holds {exc.lock_file} too long") from exc

    def _reuse_or_start(self) -> str:
        with self._lock(self.startup_timeout + 30):
            record = self.read_record()
            if record is not None and record.model == str(self.model) and healthy(record.base_url):
                self._record = record
                return record.base_url
            self._record = self._start()
            self._write_record(self._record)
            return self._record.base_url

    def _command(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "rag.llm.child", "--module", self.module,
            "--parent", str(os.getpid()), "--",
            "--model", str(self.model), "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(self.ctx),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
        ]  # fmt: skip

    def _start(self) -> ServerRecord:
        if not self.model.is_file():
            raise ServerError(f"no model at {self.model}: run `rag llm install` first")
        if importlib.util.find_spec(self.module.partition(".")[0]) is None:
            raise ServerError(
                f"{self.module} is not installed: pip install 'qunti-rag[llm]' "
                "(llama-cpp-python builds from source; set CMAKE_ARGS=-DGGML_NATIVE=OFF)"
            )
        port = free_port()
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                self._command(port), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self._process = process
        atexit.register(self.stop)
        record = ServerRecord(process.pid, port, str(self.model), os.getpid())
        deadline = self._clock() + self.startup_timeout
        while self._clock() < deadline:
            if process.poll() is not None:
                self._process = None
                raise ServerError(
                    f"the local LLM server exited with code {process.returncode} while "
                    f"starting; its log:\n{self._log_tail()}"
                )
            if healthy(record.base_url, timeout=1.0):
                return record
            time.sleep(0.2)
        self._terminate(process)
        self._process = None
        raise ServerError(
            f"the local LLM server did not answer within {self.startup_timeout:g}s; "
            f"its log:\n{self._log_tail()}"
        )

    def _log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _forget(self) -> None:
        if self._process is not None:
            self._terminate(self._process)
        self._process, self._record = None, None

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        """Stop the server if this process started it; a reused one is left running."""
        with self._mutex:
            process, record = self._process, self._record
            self._process, self._record = None, None
            if process is None or record is None:
                return
            self._terminate(process)
            try:
                with self._lock(10):
                    if self.read_record() == record:
                        self.state_path.unlink(missing_ok=True)
            except (OSError, LockTimeout):
                pass

    def wait(self) -> int:
        """Block until the owned server exits (``rag llm serve``); its exit code."""
        if self._process is None:
            raise ServerError("no server started by this process")
        return self._process.wait()
