"""Ray ingest against the local engine on one machine: overhead with one worker, 1 → 2 workers,
and whether the Ray-built index answers the gold questions with the local one's top-5.

    python benchmarks/bench_ray.py [--backend torch|onnx] [--extra CSV_OR_FOLDER] [--limit N]
        [--rounds 2]

Three fresh ingests of the same files, each into its own temporary RAG_HOME: the local
engine; `--engine ray` with one embedding actor holding every core (``worker_cpus`` =
cores, so the same threads as local); and with one actor per core. With ``--rounds 2``
the three run again in reverse order and each engine's time is the sum of its two runs,
so a load from other jobs that rises or falls during the run falls on all alike. Each Ray run starts
and stops its own local Ray runtime inside the timing, as `rag ingest --engine ray`
does, and loads the model in its actors inside the timing; the local engine's model
load is timed apart, so the ratio is given both with and without it. Then every
question of the gold sets is searched (top 5) in each index with the same query
vectors, and the Ray indexes' lists are compared with the local one's.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.extra import materialise_extra
from eval.metrics import load_gold
from rag.embed.base import Embedder
from rag.embed.query_cache import QueryVectors
from rag.ingest_ray import RayIngestStats, ingest_on_ray
from rag.pipeline import BUNDLED_CORPUS, Pipeline
from rag.settings import Settings

GOLD = Path(__file__).resolve().parent.parent / "eval" / "gold"
GOLD_SETS = ("dev.jsonl", "speeches.jsonl", "test.jsonl")


class QueryMemo(Embedder):
    """One query vector per question for all the indexes searched."""

    def __init__(self, real: Embedder) -> None:
        self.real, self.model_id, self.dim = real, real.model_id, real.dim
        self.cache = QueryVectors(real.embed_queries, size=1 << 20)  # every gold question

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self.real.embed_batch(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.real.embed_passages(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.cache(t) for t in texts], dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="torch", help="embedding backend: torch | onnx")
    ap.add_argument("--model", default=None, help="embedding model (default: settings)")
    ap.add_argument("--extra", type=Path, default=None, help="distractor folder or CSV")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files")
    ap.add_argument("--rounds", type=int, choices=(1, 2), default=1, help="2: ABC then CBA")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = sorted(BUNDLED_CORPUS.glob("*.txt"))
        if args.extra:
            files += materialise_extra(args.extra, work / "x")
        files = files[: args.limit] if args.limit else files
        base = Settings(models_home=Settings().models_dir, embed_backend=args.backend)
        if args.model:
            base = base.model_copy(update={"embed_model": args.model})

        def settings(name: str) -> Settings:
            return base.model_copy(update={"home": work / name})

        t0 = time.perf_counter()
        local = Pipeline(settings("local"))
        local.embedder.embed_passages(["预热"])
        model_load = time.perf_counter() - t0
        runs = {"ray_1_worker": (1, cores), f"ray_{cores}_workers": (cores, 1)}
        engines = ["local", *runs]
        if args.rounds == 2:  # there and back: a load that drifts falls on every engine alike
            engines += engines[::-1]
        times = dict.fromkeys(["local", *runs], 0.0)
        stats: dict[str, RayIngestStats] = {}
        for i, name in enumerate(engines):
            home = name if engines.index(name) == i else f"{name}_again"
            t0 = time.perf_counter()
            if name == "local":
                pipe = Pipeline(settings(home), embedder=local.embedder)
                report = pipe.ingest(files)
            else:
                workers, cpus = runs[name]
                stats[name] = RayIngestStats()
                ingest_on_ray(
                    settings(home), files, workers=workers, worker_cpus=cpus, stats=stats[name]
                )
            took = time.perf_counter() - t0
            times[name] += took
            print(f"{name}: {took:.1f} s {stats.get(name, '')} load {os.getloadavg()}", flush=True)

        memo = QueryMemo(local.embedder)
        local = Pipeline(settings("local"), embedder=memo)
        want = local.state()
        questions = [i.question for g in GOLD_SETS for i in load_gold(GOLD / g)]
        local_top = [[p.chunk.chunk_id for p in local.search(q, 5)] for q in questions]
        same: dict[str, object] = {}
        for name in runs:
            p = Pipeline(settings(name), embedder=memo)
            got = p.state()
            top = [[x.chunk.chunk_id for x in p.search(q, 5)] for q in questions]
            same_lists = sum(a == b for a, b in zip(top, local_top, strict=True))
            same_sets = sum(set(a) == set(b) for a, b in zip(top, local_top, strict=True))
            same[name] = {
                "chunks_and_offsets": [(c.chunk_id, c.start, c.end, c.text) for c in got.chunks]
                == [(c.chunk_id, c.start, c.end, c.text) for c in want.chunks],
                "max_abs_vector_diff": float(np.abs(got.vectors - want.vectors).max()),
                "max_abs_sentence_vector_diff": float(
                    np.abs(got.sentence_vectors - want.sentence_vectors).max()
                ),
                "same_top5_list": same_lists,
                "same_top5_set": same_sets,
                "questions": len(questions),
                "fraction_same_top5_list": round(same_lists / len(questions), 4),
            }
    texts = report.total_chunks + len(want.sentence_vectors)
    two = f"ray_{cores}_workers"
    figures = {
        "backend": args.backend,
        "files": len(files),
        "chunks": report.total_chunks,
        "texts_embedded": texts,
        "cores": cores,
        "load_avg_at_end": os.getloadavg(),
        "local_model_load_s": round(model_load, 1),
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "ratio_to_local": {k: round(v / times["local"], 3) for k, v in times.items()},
        "ratio_to_local_with_model_load": {
            k: round(v / (times["local"] + model_load), 3) for k, v in times.items()
        },
        "texts_per_s": {k: round(texts / v, 2) for k, v in times.items()},
        f"throughput_{cores}_vs_1_worker": round(times["ray_1_worker"] / times[two], 3),
        "stage_seconds": {
            k: {s: round(v, 1) for s, v in (st.seconds or {}).items()} for k, st in stats.items()
        },
        "driver_misses": {k: st.driver_misses for k, st in stats.items()},
        "same_as_local": same,
    }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
