"""Retrieval choices by measurement: chunk size, keyword tokeniser, fusion and weights.

Tuned on the project's own gold set (eval/gold/speeches.jsonl); the shared dev set is
reported beside it, never tuned on. Prints one table row per configuration.

    python benchmarks/retrieval_sweep.py [--extra ../shared/corpus-extra]
    python benchmarks/retrieval_sweep.py --constants [--only SENTENCE_MIX,INTENT_BONUS]

With ``--constants`` it sweeps the named constants of ``rag.retrieve`` instead, one at
a time (the others keep their defaults), over the default configuration.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import rag.retrieve as retrieve
from eval.metrics import GoldItem, aggregate, evaluate_question, load_gold
from eval.runner import RETRIEVE_K, prepare_pipeline
from rag.pipeline import Pipeline
from rag.settings import Settings

GOLD = Path(__file__).resolve().parent.parent / "eval" / "gold"
# the constants of rag.retrieve a --constants run sweeps (default value marked *)
GRID: dict[str, tuple[float, ...]] = {
    "SENTENCE_MIX": (0.0, 0.25, 0.5, 0.75, 1.0),
    "SENTENCE_DEPTH": (1, 2, 4, 8),
    "INTENT_BONUS": (0.0, 0.15, 0.3, 0.5),
    "MAX_CONTINUATION": (0, 2, 4, 8),
    "MAX_LIST_CONTINUATION": (4, 8, 12, 20),
}


def _scores(
    pipeline: Pipeline, items: list[GoldItem], mode: str | None = None, **kw: object
) -> list[float]:
    retriever = pipeline.retriever(mode, **kw)
    results = [
        evaluate_question(i, [p.to_dict() for p in retriever.search(i.question, RETRIEVE_K)])
        for i in items
    ]
    o = aggregate(results)["overall"]
    return [o["hit@1"], o["hit@5"], o["mrr@10"]]


def sweep_constants(names: list[str], sets: dict[str, list[GoldItem]]) -> None:
    pipeline, _ = prepare_pipeline(Settings())
    print(f"{'constant':>22} {'value':>6} | speeches hit@1  hit@5    mrr | dev hit@1  hit@5    mrr")
    for name in names:
        default = getattr(retrieve, name)
        for value in GRID[name]:
            setattr(retrieve, name, type(default)(value))
            row = _scores(pipeline, sets["speeches"]) + _scores(pipeline, sets["dev"])
            mark = "*" if value == default else " "
            print(f"{name:>22} {value:>5}{mark} | {row[0]:>14.3f} {row[1]:>6.3f} {row[2]:>6.3f}"
                  f" | {row[3]:>9.3f} {row[4]:>6.3f} {row[5]:>6.3f}", flush=True)  # fmt: skip
        setattr(retrieve, name, default)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--extra", type=Path, default=None)
    ap.add_argument("--chunk-sizes", default="200,320")
    ap.add_argument("--constants", action="store_true", help="sweep rag.retrieve's constants")
    ap.add_argument("--only", default="", help="comma-separated constants (with --constants)")
    args = ap.parse_args()
    sets = {name: load_gold(GOLD / f"{name}.jsonl") for name in ("speeches", "dev")}
    if args.constants:
        sweep_constants([n for n in args.only.split(",") if n] or list(GRID), sets)
        return
    configs = [("dense", "rrf", 1.0), ("bm25", "rrf", 1.0)]
    configs += [("hybrid", "rrf", w) for w in (1.0, 0.5, 0.3)]
    configs += [("hybrid", "convex", w) for w in (1.0, 0.5, 0.3)]
    print(
        f"{'chunk':>5} {'tok':>6} {'mode':>6} {'fusion':>6} {'w_dense':>7} | "
        f"{'speeches hit@1':>14} {'hit@5':>6} {'mrr':>6} | {'dev hit@1':>9} {'hit@5':>6} {'mrr':>6}"
    )
    for size in [int(x) for x in args.chunk_sizes.split(",")]:
        for tok in ("jieba", "bigram"):
            t0 = time.perf_counter()
            settings = Settings(chunk_max_tokens=size, keyword_tokenizer=tok)
            pipeline, _ = prepare_pipeline(settings, extra_corpus=args.extra)
            n_chunks = len(pipeline.state().chunks)
            for mode, fusion, w in configs:
                row = []
                for items in sets.values():
                    row += _scores(pipeline, items, mode=mode, fusion=fusion, dense_weight=w)
                print(
                    f"{size:>5} {tok:>6} {mode:>6} {fusion:>6} {w:>7} | "
                    f"{row[0]:>14.3f} {row[1]:>6.3f} {row[2]:>6.3f} | "
                    f"{row[3]:>9.3f} {row[4]:>6.3f} {row[5]:>6.3f}",
                    flush=True,
                )
            print(f"# chunk={size} tok={tok}: {n_chunks} chunks, {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
