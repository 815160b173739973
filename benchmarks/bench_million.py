"""Approximate vector search at 1M chunks: recall@10 against exact search, latency, build.

    nice -n 10 python benchmarks/bench_million.py [--n 1000000] [--hnsw-n 200000]

Embedding a million real chunks would take a day on this machine, so the vectors are
made from real ones:

1. Real vectors: the distractor corpus (../shared/corpus-extra/xi_2020_speeches.csv) cut
   into passages of about a chunk's length and into sentences, embedded once with the
   configured model (``passage:`` prefix); cached under ``--cache``.
2. Queries: the questions of eval/gold/*.jsonl embedded with the query prefix (real
   question vectors, none of them among the base vectors).
3. ``--n`` vectors = a real vector (round-robin) + Gaussian noise, re-normalised. The
   noise is set so that a copy's cosine to its source equals the median cosine of a real
   vector to its nearest other real vector: the copies of one source are then about as
   far from each other as real neighbours are, so neighbourhoods stay realistic (not
   blocks of near-duplicates, which would make any index look perfect, nor random
   points on the sphere, which no real corpus looks like).

Exact search (``IndexFlatIP``) gives the true top 10 of every query; each approximate
configuration is built once (timed), then for each search setting: recall@10 (the share
of the true top 10 found), and warm single-query latency p50/p95 with 2 threads (every
query once to warm up, then every query timed). The project's HNSW (``index.vectors``
parameters) is measured at ``--hnsw-n`` vectors when that is smaller than ``--n`` (its
build on two shared cores does not fit the time) and its build time extrapolated as
n·log n; the figures say so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import CSV, paragraphs  # noqa: E402

from index.vectors import HNSWIndex  # noqa: E402

GOLD = Path(__file__).resolve().parents[1] / "eval" / "gold"
_SENT = re.compile(r"[^。！？；]+[。！？；]?")


def real_vectors(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(base vectors, query vectors) of the real model, cached."""
    path = cache / "real.npz"
    if path.exists():
        data = np.load(path)
        return data["base"], data["queries"]
    from rag.ingest import build_embedder
    from rag.settings import Settings

    paras = paragraphs(CSV)
    passages: list[str] = []
    for p in paras:  # chunk-sized windows of each paragraph
        passages += [p[i : i + 300] for i in range(0, len(p), 250) if len(p[i : i + 300]) > 40]
    sentences = [s.strip() for p in paras for s in _SENT.findall(p) if len(s.strip()) >= 12]
    texts = list(dict.fromkeys(passages + sentences))
    questions = [
        json.loads(line)["question"]
        for f in sorted(GOLD.glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip() and "question" in json.loads(line)
    ]
    questions = list(dict.fromkeys(questions))
    embedder = build_embedder(Settings())
    t0 = time.perf_counter()
    base = embedder.embed_passages(texts).astype(np.float32)
    queries = embedder.embed_queries(questions).astype(np.float32)
    print(f"embedded {len(texts)} passages/sentences and {len(questions)} questions "
          f"with {embedder.model_id} in {time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, base=base, queries=queries)
    return base, queries


def normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def noise_sigma(base: np.ndarray) -> tuple[float, float]:
    """Per-dimension noise so that cos(copy, source) ≈ the median real nearest-neighbour
    cosine (near-duplicates above 0.99 left out); returns (sigma, that cosine)."""
    sims = base @ base.T
    np.fill_diagonal(sims, -1.0)
    sims[sims > 0.99] = -1.0
    nn = float(np.median(sims.max(axis=1)))
    # |noise|² ≈ d·σ² and cos = 1 / sqrt(1 + d·σ²)
    return math.sqrt((1.0 / nn**2 - 1.0) / base.shape[1]), nn


def synthesise(base: np.ndarray, n: int, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):
        m = min(step, n - i)
        rows = base[np.arange(i, i + m) % len(base)]
        out[i : i + m] = rows + rng.standard_normal(rows.shape, dtype=np.float32) * sigma
    return normalise(out)


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


def latency(index: faiss.Index, queries: np.ndarray, params: Any) -> tuple[float, float]:
    """Warm single-query p50/p95 in ms."""
    for q in queries:
        index.search(q[None, :], 10, params=params)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], 10, params=params)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def file_mb(index: faiss.Index, cache: Path) -> tuple[float, float]:
    """Size of the index written to disk (≈ its memory) and the seconds to read it back."""
    path = cache / "index.faiss"
    faiss.write_index(index, str(path))
    t0 = time.perf_counter()
    faiss.read_index(str(path))
    read_s = time.perf_counter() - t0
    size = path.stat().st_size / 1e6
    path.unlink()
    return size, read_s


def measure(name: str, index: faiss.Index, build_s: float, mem_mb: float, n: int,
            queries: np.ndarray, truth: np.ndarray, settings: list[tuple[str, Any]],
            note: str = "", lat_n: int | None = None) -> list[dict[str, object]]:  # fmt: skip
    rows = []
    for label, params in settings:
        _, found = index.search(queries, 10, params=params)
        rec = recall_at_10(found, truth)
        p50, p95 = latency(index, queries[:lat_n], params)
        row = {"index": name, "n": n, "search": label, "recall@10": rec, "p50_ms": p50,
               "p95_ms": p95, "build_s": build_s, "mem_mb": mem_mb, "note": note}  # fmt: skip
        rows.append(row)
        ok = rec >= 0.95 and p50 <= 30 and p95 <= 50
        print(f"{name:<14} n={n:>8} {label:<12} recall@10 {rec:.3f}  p50 {p50:6.2f} ms  "
              f"p95 {p95:6.2f} ms  build {build_s:6.1f} s  {mem_mb:6.0f} MB on disk"
              f"{'  meets the target' if ok else ''}{'  ' + note if note else ''}", flush=True)  # fmt: skip
    return rows


def build(factory: str, x: np.ndarray, train_n: int) -> tuple[faiss.Index, float]:
    t0 = time.perf_counter()
    index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        rng = np.random.default_rng(1)
        index.train(x[rng.choice(len(x), min(train_n, len(x)), replace=False)])
    index.add(x)
    return index, time.perf_counter() - t0


def rss_of(pid: int) -> tuple[float, float]:
    """(current, peak) resident MB of a process."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def startup(speeches: int, ann: str, cache: Path, port: int = 8765) -> None:
    """Ingest ``speeches`` synthetic speeches (hash embedder, as bench_scale.py) into a
    home under ``cache`` (kept for reruns), then start ``rag serve`` twice and time
    each start until ``/readyz`` answers 200 (the first start builds and caches the
    approximate index, the second reads the cache); resident memory after it."""
    import subprocess
    import urllib.request

    from bench_scale import write_speeches

    from rag.pipeline import Pipeline
    from rag.settings import Settings

    home = cache / f"home-{speeches}-{ann}"
    env = {**os.environ, "RAG_HOME": str(home), "RAG_EMBED_MODEL": "hash", "RAG_ANN": ann}
    if not (home / "index" / "index.db").exists():
        files = write_speeches(cache / f"corpus-{speeches}", 0, speeches, paragraphs(CSV), 6000)
        t0 = time.perf_counter()
        Pipeline(Settings(home=home, embed_model="hash", ann=ann)).ingest(files)
        print(f"ingested {speeches} speeches in {time.perf_counter() - t0:.0f} s", flush=True)
    for f in (home / "index").glob("faiss-*"):
        f.unlink()
    for run in ("first start (builds the cache)", "second start (reads the cache)"):
        cmd = [sys.executable, "-m", "cli", "serve", "--port", str(port)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        body = b""
        try:
            while time.perf_counter() - t0 < 900:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz") as r:
                        if r.status == 200:
                            body = r.read()
                            break
                except OSError:
                    time.sleep(0.2)
            ready_s = time.perf_counter() - t0
            rss, peak = rss_of(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
        info = json.loads(body or b"{}")
        print(f"rag serve, {info.get('chunks')} chunks, RAG_ANN={ann}, {run}: ready in "
              f"{ready_s:.1f} s, RSS {rss:.0f} MB (peak {peak:.0f} MB)", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--hnsw-n", type=int, default=200_000, help="vectors for the HNSW build")
    ap.add_argument("--ivf", nargs="*", default=["IVF1024,Flat", "IVF1024,SQ8"])
    ap.add_argument("--nprobe", type=int, nargs="+", default=[32, 64, 96, 128])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bench-million"))
    ap.add_argument("--startup-speeches", type=int, help="measure rag serve start-up instead")
    ap.add_argument("--ann", default="ivf", help="RAG_ANN for --startup-speeches")
    args = ap.parse_args()
    if args.startup_speeches:
        startup(args.startup_speeches, args.ann, args.cache)
        return
    faiss.omp_set_num_threads(args.threads)

    base, queries = real_vectors(args.cache)
    sigma, nn = noise_sigma(base)
    print(f"{len(base)} real vectors, {len(queries)} query vectors; median real nearest-"
          f"neighbour cosine {nn:.3f} -> noise sigma {sigma:.4f} per dimension", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    x = synthesise(base, args.n, sigma)
    print(f"{args.n} synthetic vectors in {time.perf_counter() - t0:.1f} s", flush=True)

    flat, flat_s = build("Flat", x, 0)
    t0 = time.perf_counter()
    _, truth = flat.search(queries, 10)
    print(f"exact top-10 of {len(queries)} queries in {time.perf_counter() - t0:.1f} s", flush=True)
    flat_mb = args.n * x.shape[1] * 4 / 1e6
    rows = measure("Flat (exact)", flat, flat_s, flat_mb, args.n, queries, truth, [("-", None)],
                   lat_n=50)  # fmt: skip
    del flat

    for factory in args.ivf:
        nlist = int(re.findall(r"IVF(\d+)", factory)[0])
        index, build_s = build(factory, x, 64 * nlist)
        mem, read_s = file_mb(index, args.cache)
        ivf_params = faiss.SearchParametersIVF
        settings = [(f"nprobe={p}", ivf_params(nprobe=p)) for p in args.nprobe]  # type: ignore[call-arg]
        rows += measure(factory, index, build_s, mem, args.n, queries, truth, settings,
                        f"(read back from disk in {read_s:.1f} s)")  # fmt: skip
        del index

    hn = min(args.hnsw_n, args.n)
    sub = x[:hn]
    sub_truth = truth
    if hn < args.n:
        exact = faiss.IndexFlatIP(x.shape[1])
        exact.add(sub)
        _, sub_truth = exact.search(queries, 10)
        del exact
    hnsw = HNSWIndex(x.shape[1])
    t0 = time.perf_counter()
    hnsw.build(sub)
    build_s = time.perf_counter() - t0
    mem, read_s = file_mb(hnsw._index, args.cache)
    scale = args.n * math.log(args.n) / (hn * math.log(hn))
    note = (f"(measured at {hn}; at {args.n}: build ~{build_s * scale:.0f} s, index "
            f"~{mem * args.n / hn:.0f} MB, extrapolated; read back in {read_s:.1f} s)") if hn < args.n else ""  # fmt: skip
    hnsw_params = faiss.SearchParametersHNSW  # type: ignore[attr-defined]
    settings = [(f"efSearch={e}", hnsw_params(efSearch=e))
                for e in (64, HNSWIndex.EF_SEARCH, 256)]  # fmt: skip
    rows += measure("HNSW32 (rag)", hnsw._index, build_s, mem, hn, queries, sub_truth, settings,
                    note)  # fmt: skip
    (args.cache / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
