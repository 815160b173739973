"""The extractive backend's thresholds by measurement: refusal, side sentences, speeches.

Tuned on the project's own gold set (eval/gold/speeches.jsonl); the shared dev set is
printed beside it, never tuned on. Each row sets one constant of
``rag.answer.extractive`` or ``rag.answer.expect`` (the others keep their defaults) and prints answer accuracy,
refusal accuracy, false-refusal rate and citation precision on both sets.

    python benchmarks/answer_sweep.py [--only REFUSE_BELOW,KEEP_MARGIN]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import rag.answer.expect as expect
import rag.answer.extractive as extractive
from eval.runner import prepare_pipeline, run_gold
from rag.settings import Settings

GOLD = Path(__file__).resolve().parent.parent / "eval" / "gold"
GRID: dict[str, tuple[float, ...]] = {
    "REFUSE_BELOW": (0.2, 0.25, 0.3, 0.35, 0.4),
    "ABSENT_REFUSE": (0.2, 0.3, 0.4, 0.5),
    "KEEP_MARGIN": (0.0, 0.02, 0.05, 0.1, 10.0),
    "CROSS_DOC_KEEP": (0.5, 0.6, 0.7, 0.8, 0.9),
    "ENGLISH_LEXICAL": (0.0, 0.1, 0.2, 0.3, 0.5, 1.0),
    "EXPECT_KEEP": (0.5, 0.6, 0.7, 0.8, 0.9, 10.0),
    "EXPECT_DEPTH": (1, 4, 8, 16),
    "LIST_DEPTH": (1, 2, 4, 8),
    "LIST_KEEP": (0.6, 0.7, 0.8, 0.9, 1.0),
    "FOCUS_WINDOW": (2, 4, 8, 12, 20, 1000),
    "INTENT_BOOST": (0.0, 0.15, 0.35, 0.5, 1.0),
    "RANK_PRIOR": (0.0, 0.03, 0.06, 0.12, 0.25),
    "SCOPE_MATCH": (0.4, 0.5, 0.6, 0.8, 1.01),
    "LOOKAHEAD": (1, 2, 3, 5),
    "ANSWERABILITY_DEPTH": (1, 2, 3, 5),
}
# the module each constant lives in (rag.answer.extractive unless named here)
HOME = {"FOCUS_WINDOW": expect}
KEYS = ("answer_accuracy", "refusal_accuracy", "false_refusal_rate", "citation_precision")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated constants to sweep")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(GRID)
    pipeline, _ = prepare_pipeline(Settings())
    sets = {name: GOLD / f"{name}.jsonl" for name in ("speeches", "dev")}
    head = " ".join(f"{k[:10]:>10}" for k in KEYS)
    print(f"{'constant':>15} {'value':>6} | speeches {head} | dev {head}")
    for name in names:
        module = HOME.get(name, extractive)
        default = getattr(module, name)
        for value in GRID[name]:
            setattr(module, name, value)
            pipeline._backends.clear()  # backends read some constants when built
            row = []
            for path in sets.values():
                overall = run_gold(pipeline, path).results["overall"]
                row.append(" ".join(f"{(overall.get(k) or 0):>10.3f}" for k in KEYS))
            mark = "*" if value == default else " "
            print(f"{name:>15} {value:>5}{mark} | speeches {row[0]} | dev {row[1]}", flush=True)
        setattr(module, name, default)


if __name__ == "__main__":
    main()
