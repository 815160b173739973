"""`rag ask` latency per backend: p50/p95 of retrieve, answer and total, warm process.

    python benchmarks/bench_ask.py [--repeats 2] [--llm]

Uses the bundled speeches and the dev questions. With ``--llm`` it also measures the
``openai`` backend against a local llama.cpp server serving SmolLM2-135M (provisioned by
``scripts/provision_test_llm.sh``; tiny and English-only, with a 2048-token context, hence a 1000-token passage budget; this measures the plumbing
and a small model's speed, not answer quality).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from eval.metrics import load_gold
from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))]


def run(pipeline: Pipeline, backend: str, questions: list[str], repeats: int) -> None:
    stages: dict[str, list[float]] = {"retrieve": [], "answer": [], "total": []}
    degraded = 0
    for _ in range(repeats):
        for q in questions:
            pipeline.query_vectors.clear()  # embed the question every time, as a new one is
            t0 = time.perf_counter()
            a = pipeline.ask(q, backend=backend)
            stages["total"].append((time.perf_counter() - t0) * 1000)
            stages["retrieve"].append(a.timings_ms["retrieve"])
            stages["answer"].append(a.timings_ms["answer"])
            degraded += a.degraded
    cells = " | ".join(
        f"{k} p50 {statistics.median(v):7.1f} ms p95 {pct(v, 0.95):7.1f} ms"
        for k, v in stages.items()
    )
    print(f"{backend:<10} n={len(stages['total']):>3} degraded={degraded:>3} | {cells}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--llm", action="store_true")
    args = ap.parse_args()
    questions = [i.question for i in load_gold(ROOT / "eval" / "gold" / "dev.jsonl")]
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(home=Path(tmp), models_home=Settings().models_dir)
        pipeline = Pipeline(base)
        pipeline.ingest()
        pipeline.ask(questions[0])  # warm up model and caches
        run(pipeline, "extractive", questions, args.repeats)
        if args.llm:
            sys.path.insert(0, str(ROOT / "tests"))
            from llm_server import model_path, start_server

            server = start_server(model_path(), Path(tmp))
            try:
                llm = Pipeline(
                    base.model_copy(
                        update={
                            "llm_base_url": server.base_url,
                            "llm_max_tokens": 64,
                            "llm_context_tokens": 1000,
                        }
                    ),
                    embedder=pipeline.embedder,
                )
                llm.ask(questions[0], backend="openai")
                run(llm, "openai", questions, 1)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
