"""Run the system over gold question sets and score it.

The index is built in a cache directory keyed by the corpus and the settings that
shape it, so repeated runs (and CI's quality gate) reuse it; the user's own index
is never touched.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from eval.baseline import NaiveBaseline
from eval.extra import materialise_extra
from eval.metrics import GoldItem, QuestionResult, aggregate, evaluate_question, load_gold
from index.state import FORMAT_VERSION
from rag.answer import Turn
from rag.chunk import CHUNKER_VERSION
from rag.followup import resolve_followup
from rag.pipeline import BUNDLED_CORPUS, Pipeline
from rag.settings import Settings

__all__ = ["EvalRun", "prepare_pipeline", "run_gold", "run_baseline", "RETRIEVE_K"]

RETRIEVE_K = 10  # depth scored by the retrieval metrics
Progress = Callable[[str, int, int], None]


@dataclass
class EvalRun:
    name: str
    results: dict[str, Any]
    questions: list[QuestionResult] = field(default_factory=list)


def _corpus_files(extra: Path | None, work: Path) -> list[Path]:
    files = sorted(p for p in BUNDLED_CORPUS.iterdir() if p.suffix == ".txt")
    if extra is not None:
        files += materialise_extra(extra, work / "extra")
    return files


def _cache_key(settings: Settings, files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    h.update(f"format={FORMAT_VERSION} chunker={CHUNKER_VERSION}\n".encode())
    for k in ("embed_model", "chunk_max_tokens", "chunk_overlap_tokens", "ann",
              "keyword_tokenizer", "sentence_vectors", "embed_backend",
              "vector_codec"):  # fmt: skip
        h.update(f"{k}={getattr(settings, k)}\n".encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def prepare_pipeline(
    settings: Settings,
    *,
    extra_corpus: Path | None = None,
    cache_root: Path | None = None,
    progress: Progress | None = None,
) -> tuple[Pipeline, list[Path]]:
    """A pipeline over the bundled speeches (plus ``extra_corpus``) in a cached eval home."""
    cache_root = cache_root or Path(user_cache_dir("qunti-rag")) / "eval"
    staging = cache_root / "staging"
    files = _corpus_files(extra_corpus, staging)
    home = cache_root / _cache_key(settings, files)
    run_settings = settings.model_copy(update={"home": home, "models_home": settings.models_dir})
    pipeline = Pipeline(run_settings)
    pipeline.ingest(files, progress=progress)
    return pipeline, files


def _ask_record(
    pipeline: Pipeline, item: GoldItem, backend: str | None
) -> tuple[dict[str, Any], dict[str, float]]:
    history: list[Turn] = []
    for turn in item.history:
        prior = pipeline.ask(turn, backend=backend, history=history)
        history += [Turn("user", turn), Turn("assistant", prior.answer)]
    first: list[float] = []

    def on_token(_piece: str) -> None:
        if not first:
            first.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    answer = pipeline.ask(item.question, backend=backend, history=history, on_token=on_token)
    total = (time.perf_counter() - t0) * 1000
    return answer.to_dict(), {
        **answer.timings_ms,
        "first_token": first[0] if first else total,
        "total": total,
    }


def run_gold(
    pipeline: Pipeline,
    gold: Path,
    *,
    retriever: str | None = None,
    backend: str | None = None,
    answers: bool = True,
    progress: Progress | None = None,
) -> EvalRun:
    items = load_gold(gold)
    docs = {d.doc_id: d.text for d in pipeline.state().documents.values()}
    questions: list[QuestionResult] = []
    for i, item in enumerate(items, start=1):
        query = item.question
        if item.history:
            query = resolve_followup(item.question, [Turn("user", t) for t in item.history])
        t0 = time.perf_counter()
        passages = pipeline.search(query, RETRIEVE_K, mode=retriever)
        retrieve_ms = (time.perf_counter() - t0) * 1000
        record, latencies = (None, {"retrieve": retrieve_ms})
        if answers:
            record, asked = _ask_record(pipeline, item, backend)
            # the query vector was computed (and cached) by the search above: count it there
            latencies = {
                "retrieve": retrieve_ms,
                "first_token": retrieve_ms + asked["first_token"],
                "answer": asked["answer"],
                "total": retrieve_ms + asked["total"],
            }
        questions.append(
            evaluate_question(
                item,
                [p.to_dict() for p in passages],
                record,
                documents=docs,
                latencies=latencies,
            )
        )
        if progress:
            progress(gold.stem, i, len(items))
    s = pipeline.settings
    results = {
        **aggregate(questions),
        "run": {
            "gold": str(gold),
            "retriever": retriever or s.retriever,
            "backend": (backend or s.backend) if answers else None,
            "model": pipeline.state().manifest.model_id,
            "documents": pipeline.state().manifest.n_documents,
            "chunks": pipeline.state().manifest.n_chunks,
            "fusion": s.fusion,
        },
    }
    return EvalRun(gold.stem, results, questions)


def run_baseline(files: Sequence[Path], gold: Path) -> EvalRun:
    """Retrieval metrics of the naive baseline (300-char windows, BM25 over jieba)."""
    baseline = NaiveBaseline(list(files))
    items = load_gold(gold)
    questions = [
        evaluate_question(item, baseline.search(item.question, RETRIEVE_K)) for item in items
    ]
    return EvalRun(
        gold.stem, {**aggregate(questions), "run": {"retriever": "naive-baseline"}}, questions
    )


def load_results(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
