"""Ray ingest against the local engine on one machine: overhead with one worker, 1 → 2 workers.

    RAG_MODELS_HOME=... python benchmarks/bench_ray.py [--backend onnx] [--extra CSV]

Three fresh ingests of the same files, each into its own temporary index: the local
engine; `--engine ray` with one embedding actor holding every core (``worker_cpus``
= cores, so the same threads as local); and with one actor per core. Each Ray run
starts and stops its own local Ray runtime inside the timing, as `rag ingest --engine
ray` does. Also checks that both Ray indexes have the local one's chunks and top-5.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from eval.extra import materialise_extra
from eval.metrics import load_gold
from rag.ingest_ray import RayIngestStats, ingest_on_ray
from rag.pipeline import BUNDLED_CORPUS, Pipeline
from rag.settings import Settings

GOLD = Path(__file__).resolve().parent.parent / "eval" / "gold"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="onnx", help="embedding backend: torch | onnx")
    ap.add_argument("--model", default=None, help="embedding model (default: settings)")
    ap.add_argument("--extra", type=Path, default=None, help="distractor folder or CSV")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = sorted(BUNDLED_CORPUS.glob("*.txt"))
        if args.extra:
            files += materialise_extra(args.extra, work / "x")
        base = Settings(models_home=Settings().models_dir, embed_backend=args.backend)
        if args.model:
            base = base.model_copy(update={"embed_model": args.model})

        def settings(name: str) -> Settings:
            return base.model_copy(update={"home": work / name})

        local = Pipeline(settings("local"))
        local.embedder.embed_passages(["预热"])  # model load outside the timing
        t0 = time.perf_counter()
        report = local.ingest(files)
        times = {"local": time.perf_counter() - t0}
        runs = {"ray_1_worker": (1, cores), f"ray_{cores}_workers": (cores, 1)}
        stats: dict[str, RayIngestStats] = {}
        for name, (workers, cpus) in runs.items():
            stats[name] = RayIngestStats()
            t0 = time.perf_counter()
            ingest_on_ray(
                settings(name), files, workers=workers, worker_cpus=cpus, stats=stats[name]
            )
            times[name] = time.perf_counter() - t0
            print(f"{name}: {times[name]:.1f} s {stats[name]}", flush=True)

        want = local.state()
        questions = [i.question for i in load_gold(GOLD / "dev.jsonl")]
        same: dict[str, object] = {}
        for name in runs:
            p = Pipeline(settings(name))
            got = p.state()
            same[name] = {
                "chunks_and_offsets": [(c.chunk_id, c.start, c.end) for c in got.chunks]
                == [(c.chunk_id, c.start, c.end) for c in want.chunks],
                "max_abs_vector_diff": float(np.abs(got.vectors - want.vectors).max()),
                "same_top5": sum(
                    [x.chunk.chunk_id for x in p.search(q, 5)]
                    == [x.chunk.chunk_id for x in local.search(q, 5)]
                    for q in questions
                ),
                "questions": len(questions),
            }
    texts = report.total_chunks + len(want.sentence_vectors)
    figures = {
        "backend": args.backend,
        "files": len(files),
        "chunks": report.total_chunks,
        "texts_embedded": texts,
        "cores": cores,
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "ratio_to_local": {k: round(v / times["local"], 3) for k, v in times.items()},
        "texts_per_s": {k: round(texts / v, 2) for k, v in times.items()},
        "stage_seconds": {k: s.seconds for k, s in stats.items()},
        "same_as_local": same,
    }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
