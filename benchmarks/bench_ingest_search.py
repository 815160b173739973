"""Ingest throughput against bare sentence-transformers encoding, warm search latency,
and index size — on the bundled speeches and on bundled + distractor speeches.

    python benchmarks/bench_ingest_search.py [--extra ../shared/corpus-extra] [--repeats 3]

Ingest is timed end to end (load, clean, chunk, embed, index, atomic save). The bare
baseline encodes exactly the texts that ingest embedded, in one
``SentenceTransformer.encode`` call with the same batch size; the ratio shows what the
pipeline costs on top of the model. Runs with and without sentence vectors, since
sentence vectors add texts to embed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from eval.extra import materialise_extra
from eval.metrics import load_gold
from index.state import sentence_texts
from rag.pipeline import BUNDLED_CORPUS, Pipeline
from rag.settings import Settings
from zh.script import to_simplified

GOLD = Path(__file__).resolve().parent.parent / "eval" / "gold"


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench(name: str, files: list[Path], sentence_vectors: bool, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), sentence_vectors=sentence_vectors,
                            models_home=Settings().models_dir)  # fmt: skip
        pipeline = Pipeline(settings)
        model = pipeline.embedder.sentence_transformer  # type: ignore[attr-defined]
        pipeline.embedder.embed_passages(["预热"])  # load and warm the model
        t0 = time.perf_counter()
        report = pipeline.ingest(files)
        ingest_s = time.perf_counter() - t0
        state = pipeline.state()
        texts = ["passage: " + to_simplified(c.index_text) for c in state.chunks]
        if sentence_vectors:
            texts += ["passage: " + t for t in sentence_texts(state.chunks)[0]]
        t0 = time.perf_counter()
        model.encode(texts, batch_size=settings.embed_batch_size, normalize_embeddings=True,
                     show_progress_bar=False)  # fmt: skip
        bare_s = time.perf_counter() - t0
        n = report.total_chunks
        questions = [i.question for i in load_gold(GOLD / "dev.jsonl")]
        lat: list[float] = []
        for _ in range(repeats):
            for q in questions:
                pipeline.query_vectors.clear()  # measure real query embedding every time
                t0 = time.perf_counter()
                pipeline.search(q, 5)
                lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        p95 = lat[int(0.95 * (len(lat) - 1))]
        size = du(pipeline.store.root)
        print(f"{name:<22} sent_vec={str(sentence_vectors):<5} docs={report.total_documents:>3} "
              f"chunks={n:>5} texts={len(texts):>5} | ingest {n / ingest_s:6.2f} chunks/s "
              f"({ingest_s:6.1f}s) | bare encode {len(texts) / bare_s:6.2f} texts/s ({bare_s:6.1f}s) "
              f"| ingest/bare time ratio {bare_s / ingest_s:5.1%} | search p50 "
              f"{statistics.median(lat):6.1f} ms p95 {p95:6.1f} ms | index {size / 1e6:6.2f} MB",
              flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--extra", type=Path, default=None, help="distractor folder or CSV")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sentence-vectors", choices=("both", "on", "off"), default="both")
    ap.add_argument("--only-extra", action="store_true", help="skip the bundled-only corpus")
    args = ap.parse_args()
    bundled = sorted(BUNDLED_CORPUS.glob("*.txt"))
    corpora = [("bundled", bundled)]
    tmp = tempfile.TemporaryDirectory()
    if args.extra:
        corpora.append(
            ("bundled+distractor", bundled + materialise_extra(args.extra, Path(tmp.name)))
        )
    if args.only_extra and args.extra:
        corpora = corpora[1:]
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.sentence_vectors]
    for name, files in corpora:
        for sv in modes:
            bench(name, files, sv, args.repeats)
    tmp.cleanup()


if __name__ == "__main__":
    main()
