"""Throughput and latency of the HTTP API, against the same pipeline called in-process.

For ``/v1/search`` and ``/v1/ask`` (extractive backend) at 1, 4 and 16 concurrent
clients, the same bounded number of requests goes once through a real ``rag serve``
process over loopback HTTP and once straight into the served pipeline in this process
(the ``api.service`` pipeline the server itself uses, so both sides share the embedder
lock and per-generation state). The ratio of the two is the HTTP overhead: JSON,
validation, middleware, the thread hop, uvicorn and the loopback socket.

Every request asks a different question (gold questions, numbered variants once they
run out), so the query-vector cache never answers for the embedder.

    python benchmarks/bench_api.py [--corpus bundled|extra] [--requests 48]
                                    [--concurrency 1,4,16] [--model multilingual-e5-small]
                                    [--home DIR]   # keep the index: later runs skip embedding
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from api.service import Service
from eval.extra import materialise_extra
from rag.pipeline import BUNDLED_CORPUS, Pipeline
from rag.settings import DEFAULT_EMBED_MODEL, Settings

REPO = Path(__file__).resolve().parent.parent
GOLD = REPO / "eval" / "gold"
EXTRA_CSV = REPO.parent / "shared" / "corpus-extra" / "xi_2020_speeches.csv"
STARTUP_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 120.0
TOP_K = 5

Call = Callable[[str], bool]  # one request; True when it succeeded


@dataclass
class Result:
    requests: int
    errors: int
    wall_s: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies_ms)
        return lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))] if lat else float("nan")


def questions() -> Iterator[str]:
    """Gold questions, then numbered variants of them, never the same string twice."""
    base: list[str] = []
    for name in ("dev.jsonl", "speeches.jsonl"):
        for line in (GOLD / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                q = json.loads(line).get("question")
                if isinstance(q, str) and q.strip():
                    base.append(q)
    n = 0
    while True:
        for q in base:
            yield q if n == 0 else f"{q}（{n}）"
        n += 1


def run_load(make_call: Callable[[], Call], queries: list[str], concurrency: int) -> Result:
    """Send ``queries`` from ``concurrency`` threads, each with its own client made (and
    connected) before the clock starts."""
    pending = iter(queries)
    lock = threading.Lock()
    latencies: list[float] = []
    errors = 0

    def worker(call: Call) -> None:
        nonlocal errors
        while True:
            with lock:
                q = next(pending, None)
            if q is None:
                return
            t0 = time.perf_counter()
            ok = call(q)
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(dt)
                errors += not ok

    threads = [threading.Thread(target=worker, args=(make_call(),)) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Result(len(queries), errors, time.perf_counter() - started, latencies)


# --------------------------------------------------------------------------- the two sides
def in_process_calls(service: Service) -> dict[str, Callable[[], Call]]:
    def search() -> Call:
        return lambda q: bool(service.current().search(q, TOP_K) is not None)

    def ask() -> Call:
        return lambda q: bool(service.current().ask(q, k=TOP_K, backend="extractive").answer)

    return {"search": search, "ask": ask}


def http_calls(base_url: str) -> dict[str, Callable[[], Call]]:
    def make(path: str, field: str, extra: dict[str, Any]) -> Callable[[], Call]:
        def factory() -> Call:
            client = httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
            client.get("/healthz")  # open the keep-alive connection outside the measurement
            return lambda q: client.post(path, json={field: q, "top_k": TOP_K, **extra}).is_success

        return factory

    return {
        "search": make("/v1/search", "query", {}),
        "ask": make("/v1/ask", "question", {"backend": "extractive"}),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(settings: Settings, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``rag serve`` on a free loopback port with ``settings``' data and model; waits for /readyz."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        {
            "RAG_HOME": str(settings.home),
            "RAG_EMBED_MODEL": settings.embed_model,
            "RAG_MODELS_HOME": str(settings.models_dir),
            "RAG_API_RATE_LIMIT": "0",
            "RAG_API_LOG_LEVEL": "warning",
            "RAG_BACKEND": "extractive",
        }
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rag serve exited:\n{log_path.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"rag serve not ready after {STARTUP_TIMEOUT_S:.0f}s")


# --------------------------------------------------------------------------- main
def build_index(settings: Settings, corpus: str, workdir: Path) -> tuple[int, int, float]:
    paths = [BUNDLED_CORPUS]
    if corpus == "extra":
        paths += materialise_extra(EXTRA_CSV, workdir / "extra")
    t0 = time.perf_counter()
    report = Pipeline(settings).ingest(paths)
    return report.total_documents, report.total_chunks, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", choices=("bundled", "extra"), default="bundled")
    ap.add_argument("--requests", type=int, default=48, help="requests per endpoint and level")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--model", default=DEFAULT_EMBED_MODEL)
    ap.add_argument(
        "--home",
        type=Path,
        default=None,
        help="data directory to keep the index in between runs (default: a temporary one)",
    )
    ap.add_argument(
        "--models-home",
        type=Path,
        default=None,
        help="where built models live (default: the user's models folder)",
    )
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",")]
    models_home = args.models_home or Settings().models_dir
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        workdir = Path(tmp)
        settings = Settings(
            home=args.home or workdir / "home",
            embed_model=args.model,
            models_home=models_home,
            api_rate_limit=0,
            backend="extractive",
        )
        docs, chunks, ingest_s = build_index(settings, args.corpus, workdir)
        print(
            f"# corpus={args.corpus}: {docs} documents, {chunks} chunks, model={args.model}, "
            f"ingest {ingest_s:.1f}s; {args.requests} requests per endpoint and level",
            flush=True,
        )
        source = questions()
        plan = {
            (ep, c): [next(source) for _ in range(args.requests)]
            for ep in ("search", "ask")
            for c in levels
        }
        results: dict[tuple[str, str, int], Result] = {}

        service = Service(settings)
        service.start()
        calls = in_process_calls(service)
        for (ep, c), qs in plan.items():
            run_load(calls[ep], qs[:2], 1)  # warm-up (first-call costs: statistics, caches)
            results[("in-process", ep, c)] = run_load(calls[ep], qs, c)
        service.close()
        del service

        proc, base = start_server(settings, workdir / "serve.log")
        try:
            calls = http_calls(base)
            for (ep, c), qs in plan.items():
                run_load(calls[ep], qs[:2], 1)
                results[("http", ep, c)] = run_load(calls[ep], qs, c)
        finally:
            proc.terminate()
            proc.wait(15)
    _print(results, levels)


def _print(results: dict[tuple[str, str, int], Result], levels: list[int]) -> None:
    print(
        f"{'endpoint':<8} {'clients':>7} | {'http rps':>8} {'p50 ms':>8} {'p95 ms':>8} | "
        f"{'inproc rps':>10} {'p50 ms':>8} {'p95 ms':>8} | {'rps ratio':>9} {'p50 ratio':>9} | errors"
    )
    ratios = []
    for ep in ("search", "ask"):
        for c in levels:
            h, p = results[("http", ep, c)], results[("in-process", ep, c)]
            ratios.append(h.pct(0.5) / p.pct(0.5))
            print(
                f"{ep:<8} {c:>7} | {h.throughput:>8.1f} {h.pct(0.5):>8.1f} {h.pct(0.95):>8.1f} | "
                f"{p.throughput:>10.1f} {p.pct(0.5):>8.1f} {p.pct(0.95):>8.1f} | "
                f"{h.throughput / p.throughput:>9.2f} {ratios[-1]:>9.2f} | "
                f"{h.errors + p.errors}"
            )
    print(
        f"# ratio = http / in-process (the HTTP overhead); mean p50 ratio "
        f"{statistics.fmean(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
