"""Reliability against real processes: ``rag serve`` under concurrent reads and writes,
and ``rag ingest`` killed with SIGKILL at random points (bounded in time and requests)."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from filelock import FileLock, Timeout

from api.deps import GENERATION_HEADER
from api.main import create_app
from index.store import IndexStore
from tests.api.helpers import CORPUS, QUESTION, UNIQUE, api_settings
from tests.api.server import REPO, server_env, start_server

READERS = 4
MAX_READS_PER_READER = 150
WRITE_CYCLES = 4
THREAD_TIMEOUT_S = 60.0
QUERIES = (QUESTION, UNIQUE, "共青团要如何加强自身建设？", f"{UNIQUE}发挥了什么作用？")


def _speeches() -> list[Path]:
    return sorted(CORPUS.glob("*.txt"))


# --------------------------------------------------------------------------- concurrency
def test_queries_during_uploads_and_deletes_see_one_consistent_index(
    home: Path, tmp_path: Path
) -> None:
    server = start_server(home, tmp_path)
    try:
        _run_concurrent_clients(server.base_url)
    finally:
        server.stop()


def _run_concurrent_clients(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        listing = c.get("/v1/documents")
        base = frozenset(d["doc_id"] for d in listing.json()["documents"])
    generations: dict[str, frozenset[str]] = {listing.headers[GENERATION_HEADER]: base}
    observations: list[tuple[str, frozenset[str]]] = []
    failures: list[str] = []
    writes_done = threading.Event()

    def reader(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as c:
            for n in range(MAX_READS_PER_READER):
                if writes_done.is_set() and n > 10:
                    return
                query = QUERIES[(i + n) % len(QUERIES)]
                if n % 3 == 0:
                    r = c.post("/v1/ask", json={"question": query, "top_k": 8})
                else:
                    r = c.post("/v1/search", json={"query": query, "top_k": 8})
                if r.status_code // 100 != 2:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                ids = {p["doc_id"] for p in body.get("results", body.get("passages", []))}
                ids |= {c["doc_id"] for c in body.get("citations", [])}
                observations.append((r.headers[GENERATION_HEADER], frozenset(ids)))

    def writer() -> None:
        current = set(base)
        speeches = _speeches()
        with httpx.Client(base_url=base_url, timeout=60) as c:
            for cycle in range(WRITE_CYCLES):
                files = []
                for j in range(2):
                    text = speeches[(cycle + j) % len(speeches)].read_text(encoding="utf-8")
                    text += f"\n第{cycle}批第{j}份：{UNIQUE}在这次活动中发挥了突击队作用。\n"
                    files.append(("files", (f"批次{cycle}-{j}.txt", text.encode(), "text/plain")))
                r = c.post("/v1/documents", files=files)
                if r.status_code != 200:
                    failures.append(f"upload {r.status_code} {r.text[:200]}")
                    break
                added = [a["doc_id"] for a in r.json()["added"]]
                current.update(added)
                generations[r.json()["generation"]] = frozenset(current)
                time.sleep(0.2)  # let readers see this generation
                for doc_id in added:
                    r = c.delete(f"/v1/documents/{doc_id}")
                    if r.status_code != 200:
                        failures.append(f"delete {r.status_code} {r.text[:200]}")
                        continue
                    current.discard(doc_id)
                    generations[r.json()["generation"]] = frozenset(current)
        writes_done.set()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(THREAD_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "clients did not finish in time"
    assert failures == []
    assert len(generations) == 1 + 3 * WRITE_CYCLES
    assert len(observations) >= READERS * 10
    for generation, ids in observations:
        assert generation in generations, generation
        assert ids <= generations[generation], (generation, ids - generations[generation])
    # uploads were really seen while they existed, and the reads spanned several versions
    assert any(ids - base for _, ids in observations)
    assert len({g for g, _ in observations}) >= 3


# --------------------------------------------------------------------------- kill -9
KILL_ROUNDS = 20
INGEST_TIMEOUT_S = 60.0
SEED = 20240611


def _ingest_cmd(folder: Path) -> list[str]:
    return [sys.executable, "-m", "cli", "ingest", str(folder)]


def _ingest(folder: Path, home: Path) -> None:
    """One complete ``rag ingest`` of ``folder`` into ``home``, in its own process."""
    subprocess.run(
        _ingest_cmd(folder),
        cwd=REPO,
        env=server_env(home),
        check=True,
        capture_output=True,
        timeout=INGEST_TIMEOUT_S,
    )


def _make_folder(folder: Path) -> None:
    folder.mkdir()
    for copy in range(2):
        for src in _speeches():
            text = src.read_text(encoding="utf-8") + f"\n第{copy}份副本。\n"
            (folder / f"{src.stem}_{copy}.txt").write_text(text, encoding="utf-8")


def _mutate(folder: Path, round_: int) -> None:
    """Change two speeches, so every ingest writes a new generation."""
    files = sorted(folder.glob("*.txt"))
    for path in (files[round_ % len(files)], files[(round_ + 3) % len(files)]):
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"第{round_}轮修改：工会要做好困难职工帮扶工作。\n")


def _writing(home: Path) -> bool:
    """Whether another process holds the index's writer lock (an ingest between reading
    what is indexed and committing its transaction)."""
    lock = FileLock(str(home / "index" / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _kill_ingest(folder: Path, home: Path, when: str, delay: float, window: float) -> str:
    """Run ``rag ingest`` and SIGKILL it: after ``delay`` s (``when="delay"``), just after
    it takes the writer lock (``"writing"``: embedding, then the transaction), or just
    after its commit became visible, while it tidies up (``"flipped"``). Returns where
    the kill landed: "writing" (it held the writer lock), "flipped" (a new generation
    was committed) or "" (before either)."""
    store = IndexStore(home)
    pointer = store.current_generation()
    proc = subprocess.Popen(
        _ingest_cmd(folder),
        cwd=REPO,
        env=server_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if when == "delay":
            time.sleep(delay)
        else:
            deadline = time.monotonic() + window
            while time.monotonic() < deadline and proc.poll() is None:
                if when == "writing" and _writing(home):
                    time.sleep(delay)
                    break
                if when == "flipped" and store.current_generation() != pointer:
                    break
                time.sleep(0.002)
        writing = _writing(home)
        flipped = store.current_generation() != pointer
        proc.kill()
    finally:
        proc.wait(INGEST_TIMEOUT_S)
    return "flipped" if flipped else "writing" if writing else ""


def _serve_check(home: Path) -> dict[str, Any]:
    """Start the app as the server would after a restart and query it."""
    with TestClient(create_app(api_settings(home))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        r = client.post("/v1/search", json={"query": "工会要做好困难职工帮扶工作", "top_k": 3})
        assert r.status_code == 200 and r.json()["results"]
        assert r.headers[GENERATION_HEADER] == ready.json()["generation"]
        listed = client.get("/v1/documents").json()
        assert listed["total_documents"] == ready.json()["documents"]
        result: dict[str, Any] = ready.json()
        return result


def test_killed_ingest_leaves_the_previous_or_the_new_index(tmp_path: Path) -> None:
    folder, home = tmp_path / "speeches", tmp_path / "home"
    _make_folder(folder)
    started = time.monotonic()
    _ingest(folder, home)
    duration = time.monotonic() - started
    store = IndexStore(home)
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    for round_ in range(KILL_ROUNDS):
        before = _serve_check(home)
        assert before["generation"] == store.current_generation()
        _mutate(folder, round_)
        when = ("delay", "writing", "flipped")[round_ % 3]
        delay = rng.uniform(0.0, 1.5 * duration) if when == "delay" else rng.uniform(0.0, 0.02)
        landed = _kill_ingest(folder, home, when, delay, window=5 * duration)
        outcomes[f"killed {landed or 'before writing'}"] += 1
        after = _serve_check(home)
        if after["generation"] == before["generation"]:
            assert landed != "flipped"
            outcomes["previous"] += 1
            assert after["documents"] == before["documents"]
        else:
            outcomes["new"] += 1
            number = int(before["generation"].split("-")[1])
            assert after["generation"] == f"gen-{number + 1:06d}"
            assert after["documents"] == len(list(folder.glob("*.txt")))
    assert sum(outcomes[k] for k in ("previous", "new")) == KILL_ROUNDS
    assert outcomes["killed writing"] >= 1 and outcomes["killed flipped"] >= 1, outcomes
    assert outcomes["new"] >= 1, outcomes
    # A restarted `rag serve` process loads the last good generation, and a complete
    # ingest afterwards still works (no stale lock, leftovers cleaned).
    server = start_server(home, tmp_path)
    try:
        ready = httpx.get(server.base_url + "/readyz", timeout=10).json()
        assert ready["generation"] == store.current_generation()
    finally:
        server.stop()
    _ingest(folder, home)
    final = _serve_check(home)
    assert final["documents"] == len(list(folder.glob("*.txt")))
    assert not list((home / "index").glob("*-journal"))
    print(f"kill -9 outcomes over {KILL_ROUNDS} rounds: {dict(outcomes)}")
