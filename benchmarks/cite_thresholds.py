"""What ``rag.cite.LEXICAL_THRESHOLD`` separates: support scores of true and false claims.

Over the bundled speeches (cleaned and chunked as ingest does), every sentence of at
least ``MIN_UNITS`` content characters becomes a claim in a few shapes, and each is
scored with ``rag.cite.best_span`` against:

* its own chunk, claim copied verbatim;
* its own chunk, claim lightly rephrased: cut to its first 70 %, every fifth
  character dropped, or its last clause dropped (what a model does when it shortens
  a quote);
* the best-scoring chunk of *another* speech (a citation pointing at the wrong
  passage: the case the threshold has to drop).

It prints the score percentiles of each group and, for a few thresholds, the share of
rephrased claims kept and of wrong-passage claims kept. No model is needed.

    python benchmarks/cite_thresholds.py [--sample 150]
"""

from __future__ import annotations

import argparse
import random
import re

import numpy as np

from rag.chunk import chunk_document
from rag.cite import LEXICAL_THRESHOLD, best_span
from rag.documents import load_documents
from rag.pipeline import BUNDLED_CORPUS
from rag.types import Passage
from zh.text import sentence_spans

MIN_UNITS = 12  # shorter sentences are lead-ins and salutations, not claims
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def _rephrasings(sentence: str) -> list[str]:
    body = sentence.rstrip("。！？!?；;”’」』")
    clauses = [c for c in re.split(r"[，,；;：:]", body) if c]
    out = [body[: max(1, len(body) * 7 // 10)], "".join(ch for i, ch in enumerate(body) if i % 5)]
    if len(clauses) > 1:
        out.append("，".join(clauses[:-1]))
    return out


def share(scores: list[float], threshold: float) -> float:
    return sum(x >= threshold for x in scores) / len(scores)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=150, help="claims drawn (seeded)")
    args = ap.parse_args()
    docs, _ = load_documents(sorted(p for p in BUNDLED_CORPUS.iterdir() if p.suffix == ".txt"))
    passages = [Passage(chunk=c, meta=d.meta, score=0.0) for d in docs for c in chunk_document(d)]
    claims: list[tuple[str, Passage]] = []
    for p in passages:
        for s, e in sentence_spans(p.chunk.text):
            sentence = p.chunk.text[s:e]
            if len(re.findall(r"[\u4e00-\u9fff]", sentence)) >= MIN_UNITS:
                claims.append((sentence, p))
    random.Random(15).shuffle(claims)
    claims = claims[: args.sample]

    groups: dict[str, list[float]] = {"verbatim": [], "rephrased": [], "other speech": []}
    for sentence, own in claims:
        groups["verbatim"].append(best_span(sentence, own)[2])
        groups["rephrased"] += [best_span(r, own)[2] for r in _rephrasings(sentence)]
        others = [p for p in passages if p.chunk.doc_id != own.chunk.doc_id]
        groups["other speech"].append(max(best_span(sentence, p)[2] for p in others))

    print(f"{len(claims)} claims from {len(docs)} speeches, {len(passages)} chunks")
    print(f"{'group':>13} {'n':>5} {'p5':>6} {'p25':>6} {'p50':>6} {'p95':>6} {'max':>6}")
    for name, scores in groups.items():
        q = np.percentile(scores, [5, 25, 50, 95, 100])
        print(f"{name:>13} {len(scores):>5} " + " ".join(f"{x:6.3f}" for x in q))
    print(f"\n{'threshold':>9} {'rephrased kept':>15} {'wrong kept':>11}")
    for t in THRESHOLDS:
        mark = "  <- LEXICAL_THRESHOLD" if t == LEXICAL_THRESHOLD else ""
        print(
            f"{t:>9.2f} {share(groups['rephrased'], t):>15.3f} "
            f"{share(groups['other speech'], t):>11.3f}{mark}"
        )


if __name__ == "__main__":
    main()
