"""torch fp32 against the int8 ONNX embedder, in one run, on bundled + distractor speeches.

    RAG_MODELS_HOME=... python benchmarks/bench_onnx.py [--extra ../shared/corpus-extra/xi_2020_speeches.csv]

Both backends ingest the same files into their own temporary index. The files are
split into ``--groups`` groups ingested one after the other, torch and ONNX taking
turns (and turns at going first), so a load that comes and goes on a shared machine
falls on both alike; the ingest time of a backend is the sum over its groups (load,
clean, chunk, embed, index, atomic save). Then: the cosine between the two indexes'
vectors (chunks and sentences), query-embedding latency on the gold questions (one
question at a time, the backends alternating), and how many gold questions get the
same top-5 passages from both. Needs the ONNX model (`rag model install` with the
``onnx`` extra).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from eval.extra import materialise_extra
from eval.metrics import load_gold
from rag.pipeline import BUNDLED_CORPUS, Pipeline
from rag.settings import Settings

REPO = Path(__file__).resolve().parent.parent
GOLD = REPO / "eval" / "gold"
EXTRA = REPO.parent / "shared" / "corpus-extra" / "xi_2020_speeches.csv"
BACKENDS = ("torch", "onnx")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(round(q * (len(ordered) - 1))), len(ordered) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--extra", type=Path, default=EXTRA, help="distractor folder or CSV")
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (a smoke run)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = sorted(BUNDLED_CORPUS.glob("*.txt")) + materialise_extra(args.extra, work / "x")
        files = files[: args.limit] if args.limit else files
        models = Settings().models_dir
        pipes = {
            b: Pipeline(Settings(home=work / b, models_home=models, embed_backend=b))
            for b in BACKENDS
        }
        for b, p in pipes.items():
            p.embedder.embed_passages(["预热"])  # load and warm each model outside the timing
            print(f"{b}: {type(p.embedder).__name__} {p.embedder.model_id}", flush=True)

        ingest = dict.fromkeys(BACKENDS, 0.0)
        groups = [files[i :: args.groups] for i in range(args.groups)]
        for g, group in enumerate(groups):
            order = BACKENDS if g % 2 == 0 else BACKENDS[::-1]
            for b in order:
                t0 = time.perf_counter()
                pipes[b].ingest(group)
                ingest[b] += time.perf_counter() - t0
                print(f"group {g + 1}/{len(groups)} {b}: {ingest[b]:.1f} s so far", flush=True)

        states = {b: p.state(reload=True) for b, p in pipes.items()}
        st, so = states["torch"], states["onnx"]
        same_chunks = [(c.doc_id, c.start, c.end) for c in st.chunks] == [
            (c.doc_id, c.start, c.end) for c in so.chunks
        ]
        cos = np.concatenate(
            [
                np.sum(st.vectors * so.vectors, axis=1),
                np.sum(st.sentence_vectors * so.sentence_vectors, axis=1),
            ]
        )
        texts = len(st.vectors) + len(st.sentence_vectors)

        questions = [
            i.question for f in ("dev.jsonl", "speeches.jsonl") for i in load_gold(GOLD / f)
        ]
        latency: dict[str, list[float]] = {b: [] for b in BACKENDS}
        for q in questions:
            for b in BACKENDS:
                t0 = time.perf_counter()
                pipes[b].embedder.embed_queries([q])
                latency[b].append((time.perf_counter() - t0) * 1000)
        tops = [
            [[p.chunk.chunk_id for p in pipes[b].search(q, 5)] for b in BACKENDS] for q in questions
        ]
        same_top5 = sum(a == b for a, b in tops)
        overlap5 = statistics.mean(len(set(a) & set(b)) / 5 for a, b in tops)

    figures = {
        "files": len(files),
        "documents": len(st.documents),
        "chunks": len(st.chunks),
        "texts_embedded": texts,
        "same_chunks_and_offsets": same_chunks,
        "ingest_s": {b: round(v, 1) for b, v in ingest.items()},
        "texts_per_s": {b: round(texts / v, 2) for b, v in ingest.items()},
        "ingest_ratio_onnx_over_torch": round(ingest["onnx"] / ingest["torch"], 3),
        "query_ms_p50": {b: round(statistics.median(v), 1) for b, v in latency.items()},
        "query_ms_p95": {b: round(pct(v, 0.95), 1) for b, v in latency.items()},
        "cosine_min": round(float(cos.min()), 4),
        "cosine_mean": round(float(cos.mean()), 4),
        "gold_questions": len(questions),
        "same_top5_lists": same_top5,
        "top5_overlap_mean": round(overlap5, 3),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
