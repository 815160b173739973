"""The front of the product: ingest, search and answer, each a sequence of steps.

    files ─► load ─► clean (+metadata) ─► chunk ─► embed ─► index     (rag.ingest)
    question ─► retrieve (dense + BM25 → fuse → filter → MMR) ─► passages
    passages ─► draft (answer backend) ─► verify citations ─► question's script

A :class:`Pipeline` holds the collaborators the steps share (settings, the store, the
embedder and its query cache, the index's corpus statistics, the answer backends) and
hands each step the ones it needs. The CLI, the API and the evaluation harness call
it; none of them re-implements a step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from index.state import IndexState, Manifest
from index.store import IndexStore, StoreError
from rag.answer import (
    REFUSAL,
    Answer,
    AnswerBackend,
    AnswerRequest,
    BackendError,
    Turn,
    build_backend,
)
from rag.cite import verify
from rag.corpus import IndexCorpus
from rag.embed.base import Embedder
from rag.embed.query_cache import QueryVectors
from rag.followup import resolve_followup
from rag.ingest import (
    BUNDLED_CORPUS,
    IndexMismatchError,
    Ingestor,
    IngestReport,
    Progress,
    build_embedder,
    remove_documents,
)
from rag.question import MAX_QUERY_CHARS, check_question
from rag.retrieve import Filters, Retriever
from rag.settings import Settings
from rag.types import Document, Passage
from zh.script import to_simplified, to_traditional
from zh.text import question_language

__all__ = [
    "BUNDLED_CORPUS",
    "IngestReport",
    "Pipeline",
    "QueryError",
    "IndexMismatchError",
    "MAX_QUERY_CHARS",
    "MAX_TOP_K",
    "question_language",
    "build_embedder",
]

MAX_TOP_K = 100
FALLBACK_BACKEND = "extractive"  # needs no server: answers when the chosen backend fails


class QueryError(ValueError):
    """The question cannot be searched as given (empty, too long, bad k)."""


def validate_query(query: str, k: int) -> str:
    if not isinstance(query, str):
        raise QueryError("the question is empty")
    try:
        check_question(query)  # the rules the API and the CLI apply too
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    if not 1 <= k <= MAX_TOP_K:
        raise QueryError(f"k must be between 1 and {MAX_TOP_K}, got {k}")
    return query.strip()


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        store: IndexStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store if store is not None else IndexStore(settings.home)
        self._embedder = embedder
        self._state: IndexState | None = None
        self._backends: dict[str, AnswerBackend] = {}
        # term statistics, sentence vectors, English terms: what backends ask about
        self.corpus = IndexCorpus(
            self.state, self.embed_query, lambda texts: self.embedder.embed_passages(texts)
        )
        self.query_vectors = QueryVectors(lambda texts: self.embedder.embed_queries(texts))

    # -- components ------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = build_embedder(self.settings)
        return self._embedder

    def state(self, *, reload: bool = False) -> IndexState:
        """The current index (loaded once), checked against the configured model."""
        if self._state is None or reload:
            state = self.store.load()
            if state is None:
                raise StoreError(
                    f"no index in {self.store.root} yet: run `rag ingest` first "
                    "(with no path it indexes the bundled speeches)"
                )
            self._check_model(state.manifest)
            self._state = state
        return self._state

    def _check_model(self, have: Manifest) -> None:
        if have.model_id != self.embedder.model_id or have.dim != self.embedder.dim:
            raise IndexMismatchError(
                f"the index was built with embedding model {have.model_id!r} (dim {have.dim}) "
                f"but {self.embedder.model_id!r} (dim {self.embedder.dim}) is configured; "
                "query with the same model, or re-run `rag ingest --rebuild`"
            )

    # -- ingest ----------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[Path] | None = None,
        *,
        rebuild: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        """load → clean → (what changed) → chunk → embed → index, one transaction
        (:class:`rag.ingest.Ingestor`)."""
        try:
            return Ingestor(self.settings, self.store, self.embedder).run(
                paths, rebuild=rebuild, progress=progress
            )
        finally:
            self._state = None  # loaded from the store when next needed

    def remove(self, doc_ids: Sequence[str]) -> list[str]:
        """Delete documents from the index; returns the ids that were present."""
        try:
            return remove_documents(self.store, doc_ids)
        finally:
            self._state = None

    # -- query -------------------------------------------------------------------
    def embed_query(self, text: str) -> np.ndarray:
        """The question's vector, through the query cache (:mod:`rag.embed.query_cache`)."""
        return self.query_vectors(text)

    def retriever(self, mode: str | None = None, **overrides: object) -> Retriever:
        s = self.settings
        mode = mode or s.retriever
        state = self.state()
        params: dict[str, object] = {
            "fusion": s.fusion,
            "candidates": s.candidates,
            "rrf_k": s.rrf_k,
            "dense_weight": s.dense_weight,
            "bm25_weight": s.bm25_weight,
            "mmr_lambda": s.mmr_lambda,
        }
        params.update(overrides)
        embedder = None if mode == "bm25" else self.embedder
        return Retriever(
            state,
            embedder,
            mode=mode,
            embed_query=self.embed_query,
            translate=self.corpus.english_terms,
            **params,  # type: ignore[arg-type]
        )

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: str | None = None,
    ) -> list[Passage]:
        k = self.settings.top_k if k is None else k
        query = validate_query(query, k)
        return self.retriever(mode).search(query, k, filters)

    def documents(self) -> list[tuple[Document, int]]:
        state = self.state()
        counts = state.chunk_counts()
        return [(d, counts.get(d.doc_id, 0)) for d in state.documents.values()]

    # -- answer ------------------------------------------------------------------
    def backend(self, name: str | None = None) -> AnswerBackend:
        """The answer backend ``name`` (default: the configured one), built once, from
        the settings and the index's corpus (:class:`rag.corpus.IndexCorpus`)."""
        name = name or self.settings.backend
        if name not in self._backends:
            self._backends[name] = build_backend(name, self.settings, self.corpus)
        return self._backends[name]

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        backend: str | None = None,
        filters: Filters | None = None,
        history: Sequence[Turn] = (),
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Retrieve, draft with the chosen backend (falling back to extractive when it
        fails), verify every citation, and answer in the question's language/script."""
        k = self.settings.top_k if k is None else k
        question = validate_query(question, k)
        lang = question_language(question)
        chosen = self.backend(backend)
        t0 = time.perf_counter()
        search_query = chosen.search_query(resolve_followup(question, history), lang)
        passages = self.retriever().search(search_query, k, filters)
        t1 = time.perf_counter()
        request = AnswerRequest(question, passages, tuple(history), lang, search_query)
        degraded, notice = False, ""
        try:
            draft = chosen.generate(request, on_token if chosen.streams else None)
        except BackendError as exc:
            degraded = True
            notice = f"the {chosen.name} backend failed ({exc}); answered extractively instead"
            draft = self.backend(FALLBACK_BACKEND).generate(request)
        verified = verify(draft.text, passages, embed_pair=self.corpus.embed_pair)
        refused = draft.refused or not verified.citations
        t2 = time.perf_counter()
        answer = Answer(
            question=question,
            answer=REFUSAL[lang] if refused else verified.text,
            refused=refused,
            degraded=degraded,
            citations=[] if refused else verified.citations,
            passages=list(passages),
            backend=chosen.name if not degraded else FALLBACK_BACKEND,
            notice=notice,
            unsupported=[] if refused else verified.unsupported,
            search_query=search_query,
            timings_ms={"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000},
        )
        _to_question_script(answer, lang)
        if on_token is not None and not chosen.streams:
            on_token(answer.answer)
        return answer


def _to_question_script(answer: Answer, lang: str) -> None:
    """Show the answer in the question's script; quotes and offsets stay verbatim."""
    convert = to_traditional if lang == "zh-hant" else to_simplified
    if lang == "en":
        for c in answer.citations:
            c.display_quote = c.quote
        return
    if not answer.refused:
        answer.answer = convert(answer.answer)
    for c in answer.citations:
        c.display_quote = convert(c.quote)
