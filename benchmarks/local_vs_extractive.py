"""Answer quality and latency of `--backend local` beside `extractive`, in one run.

    RAG_LOCAL_MODEL=/path/to/model.gguf nice -n 15 python benchmarks/local_vs_extractive.py \
        [--gold eval/gold/dev.jsonl ...] [--report reports/local]

Both backends answer the same gold questions over the same cached index in the same
process (so they see the same machine load); prints one row per backend and writes each
run's report under --report. On eval/gold/test.jsonl (the frozen split) it reports; never tune on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eval.report import write_report
from eval.runner import prepare_pipeline, run_gold
from rag.settings import Settings

KEYS = ("answer_accuracy", "citation_precision", "verbatim_rate", "refusal_accuracy",
        "false_refusal_rate", "degraded_rate")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gold", type=Path, action="append")
    parser.add_argument("--backend", action="append", help="default: extractive and local")
    parser.add_argument("--report", type=Path, default=Path("reports/local"))
    args = parser.parse_args()
    golds = args.gold or [Path("eval/gold/dev.jsonl")]
    backends = args.backend or ["extractive", "local"]
    pipeline, _ = prepare_pipeline(Settings())
    head = ["gold", "backend", "n", *KEYS, "degraded", "ttft p50", "ttft p95", "total p50",
            "total p95"]  # fmt: skip
    print(" | ".join(head))
    try:
        for gold in golds:
            for name in backends:
                run = run_gold(pipeline, gold, backend=name)
                write_report(run.results, run.questions, args.report / f"{gold.stem}-{name}",
                             title=f"{gold.stem}: {name}")  # fmt: skip
                o = run.results["overall"]
                lat = o["latency_ms"]
                degraded = sum(bool((q.answer or {}).get("degraded")) for q in run.questions)
                cells = [gold.stem, name, str(o["n"])]
                cells += ["–" if o[k] is None else f"{o[k]:.3f}" for k in KEYS]
                cells += [str(degraded)]
                cells += [f"{(lat[s][p] or 0) / 1000:.1f}s" for s in ("first_token", "total")
                          for p in ("p50", "p95")]  # fmt: skip
                print(" | ".join(cells), flush=True)
    finally:
        if "local" in backends:
            pipeline.backend("local").close()  # stops the server it started


if __name__ == "__main__":
    main()
