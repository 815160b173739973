"""``/healthz`` latency while 100 slow clients hold connections to ``rag serve``.

Opens ``--slow`` connections that send their request headers a byte at a time (the
classic slow-headers attack; each sends one more byte every second), then probes
``/healthz`` every ``--interval`` seconds for ``--seconds`` and prints the success rate
and the p50/p95 latency of the probes (503s and timeouts count as failures). Runs on the
hash embedder and the bundled speeches: nothing to download.

    python benchmarks/bench_slow_clients.py [--slow 100] [--seconds 15] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.pipeline import BUNDLED_CORPUS, Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from tests.api.server import start_server  # noqa: E402


def trickle(base_url: str, stop: threading.Event) -> None:
    """One slow client: connects, then sends a header byte a second until closed."""
    host, port = base_url.removeprefix("http://").split(":")
    try:
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        while not stop.wait(1.0):
            sock.sendall(b"a")
    except OSError:
        return  # the server closed it
    finally:
        try:
            sock.close()
        except (OSError, UnboundLocalError):
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slow", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--interval", type=float, default=0.1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    home = work / "home"
    Pipeline(Settings(home=home, embed_model="hash")).ingest([BUNDLED_CORPUS])
    server = start_server(home, work)
    stop = threading.Event()
    try:
        threads = [
            threading.Thread(target=trickle, args=(server.base_url, stop), daemon=True)
            for _ in range(args.slow)
        ]
        for t in threads:
            t.start()
        time.sleep(1.0)
        ok: list[float] = []
        failed = 0
        ends = time.monotonic() + args.seconds
        with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
            while time.monotonic() < ends:
                started = time.perf_counter()
                try:
                    if client.get("/healthz").status_code == 200:
                        ok.append((time.perf_counter() - started) * 1000)
                    else:
                        failed += 1
                except httpx.HTTPError:
                    failed += 1
                time.sleep(args.interval)
    finally:
        stop.set()
        server.stop()
    total = len(ok) + failed
    print(f"{args.slow} slow-header connections, {total} /healthz probes over {args.seconds:g} s")
    print(f"  succeeded: {len(ok)}/{total} ({100 * len(ok) / max(total, 1):.0f} %)")
    if len(ok) >= 2:
        q = statistics.quantiles(ok, n=20)
        print(f"  latency of the successes: p50 {statistics.median(ok):.1f} ms, p95 {q[18]:.1f} ms")


if __name__ == "__main__":
    main()
