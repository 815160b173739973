"""The one place where ingest and search are written as a sequence of steps.

    files ─► load ─► clean (+metadata) ─► chunk ─► embed ─► index (new generation)
    question ─► retrieve (dense + BM25 → fuse → filter → MMR) ─► passages

The CLI, the API and the evaluation harness call this module; none of them
re-implements a step.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.state import Changes, IndexState, Manifest, sentence_texts
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
from rag.chunk import CHUNKER_VERSION, chunk_document
from rag.cite import verify
from rag.corpus import IndexCorpus
from rag.documents import assign_doc_ids, load_documents
from rag.embed import get_embedder
from rag.embed.base import Embedder
from rag.followup import resolve_followup
from rag.question import MAX_QUERY_CHARS, check_question
from rag.retrieve import Filters, Retriever
from rag.settings import Settings
from rag.types import Chunk, Document, Passage, SkippedFile
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

BUNDLED_CORPUS = Path(__file__).parent / "corpus"
MAX_TOP_K = 100
QUERY_CACHE_SIZE = 1024
FALLBACK_BACKEND = "extractive"  # needs no server: answers when the chosen backend fails

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class QueryError(ValueError):
    """The question cannot be searched as given (empty, too long, bad k)."""


class IndexMismatchError(StoreError):
    """The index on disk was built with another model or chunker than the one configured."""


@dataclass
class IngestReport:
    files: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    chunks_embedded: int = 0
    total_documents: int = 0
    total_chunks: int = 0
    generation: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)


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


def build_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name, configured from them."""
    return get_embedder(
        settings.embed_model,
        models_dir=settings.models_dir,
        batch_size=settings.embed_batch_size,
        query_prefix=settings.query_prefix,
        passage_prefix=settings.passage_prefix,
        allow_download=settings.allow_downloads,
        backend=settings.embed_backend,
    )


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
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- components ------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = build_embedder(self.settings)
        return self._embedder

    def _wanted_manifest(self) -> Manifest:
        s = self.settings
        return Manifest(
            model_id=self.embedder.model_id,
            dim=self.embedder.dim,
            chunker_version=CHUNKER_VERSION,
            chunk_max_tokens=s.chunk_max_tokens,
            chunk_overlap_tokens=s.chunk_overlap_tokens,
            tokenizer=s.keyword_tokenizer,
            ann=s.ann,
            sentence_vectors=s.sentence_vectors,
            vector_codec=s.vector_codec,
        )

    @staticmethod
    def _differences(have: Manifest, want: Manifest) -> list[str]:
        keys = ("model_id", "dim", "chunker_version", "chunk_max_tokens",
                "chunk_overlap_tokens", "tokenizer", "ann", "sentence_vectors", "vector_codec")  # fmt: skip
        return [
            f"{k}: index has {getattr(have, k)!r}, configured {getattr(want, k)!r}"
            for k in keys
            if getattr(have, k) != getattr(want, k)
        ]

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
        """load → clean → (what changed) → chunk → embed → index, one transaction."""
        paths = list(paths) if paths else [BUNDLED_CORPUS]
        want = self._wanted_manifest()
        with self.store.writer():
            docs, skipped, raw_lines = self._load(paths)
            report = IngestReport(files=len(docs) + len(skipped), skipped=list(skipped))
            have = self._indexed_manifest(want, rebuild)
            to_index = self._changed(docs, have, rebuild, report)
            if not to_index:
                if have is not None:
                    report.total_documents = have.n_documents
                    report.total_chunks = have.n_chunks
                    report.generation = have.generation or None
                return report
            new_chunks = self._chunk_all(to_index, progress)
            vectors, sent_vectors, sent_owner = self._embed_all(new_chunks, progress)
            lines = {d.doc_id: raw_lines[d.source] for d in to_index if d.source in raw_lines}
            changes = Changes(to_index, new_chunks, vectors, sent_vectors, sent_owner, lines)
            report.generation = self.store.update(want, changes, replace_all=rebuild)
            report.chunks_embedded = len(new_chunks)
            report.total_documents = want.n_documents
            report.total_chunks = want.n_chunks
            self._state = None  # loaded from the store when next needed
        return report

    def _load(
        self, paths: Sequence[Path]
    ) -> tuple[list[Document], list[SkippedFile], dict[str, set[str]]]:
        """Load and clean the files (``rag.documents``); also each file's raw lines."""
        # lines the indexed documents share count as site furniture too, so a file
        # cleans the same alone as in one batch with them
        raw_lines: dict[str, set[str]] = {}

        def known_lines(batch: list[tuple[str, set[str]]]) -> dict[str, int]:
            raw_lines.update(batch)
            try:
                return self.store.line_counts(batch)
            except StoreError:
                return {}  # unreadable index: only a rebuild goes on, from the batch

        docs, skipped = load_documents(
            paths,
            max_text_mb=self.settings.max_text_mb,
            max_file_mb=self.settings.max_file_mb,
            known_lines=known_lines,
        )
        return docs, skipped, raw_lines

    def _indexed_manifest(self, want: Manifest, rebuild: bool) -> Manifest | None:
        """The manifest of the index on disk, which must match ``want`` unless rebuilding."""
        try:
            have = self.store.manifest()
        except StoreError:
            if not rebuild:
                raise
            have = None  # unreadable (e.g. corrupt): rebuild from the given paths
        if have is not None and self._differences(have, want) and not rebuild:
            raise IndexMismatchError(
                "the index on disk was built with other settings ("
                + "; ".join(self._differences(have, want))
                + "); re-run with `rag ingest --rebuild` to rebuild it"
            )
        return have

    def _changed(
        self, docs: list[Document], have: Manifest | None, rebuild: bool, report: IngestReport
    ) -> list[Document]:
        """The documents to (re)index, each counted in ``report`` as added, updated or
        unchanged; a rebuild also re-chunks the documents already indexed."""
        # only ids, sources and hashes are read to decide what changed; a rebuild
        # carries the documents already indexed (their cleaned text) into the new index
        carried: dict[str, Document] = {}
        indexed: dict[str, Document] = {}
        if rebuild and have is not None:
            carried = self.store.indexed_documents(texts=True)
        elif not rebuild:
            indexed = self.store.indexed_documents()
        # a file with the stem of an indexed document from another source gets its own id
        incoming = {d.doc_id: d for d in assign_doc_ids(docs, {**carried, **indexed})}
        for doc_id, doc in carried.items():
            incoming.setdefault(doc_id, doc)
        # an unchanged file whose cleaned text differs (other boilerplate statistics,
        # another cleaner) is re-indexed too
        stored = self.store.document_texts(d for d in incoming if d in indexed)
        to_index: list[Document] = []
        for doc in incoming.values():
            prev = indexed.get(doc.doc_id)
            if prev is None:
                report.added.append(doc.doc_id)
                to_index.append(doc)
            elif prev.sha256 != doc.sha256 or stored.get(doc.doc_id, doc.text) != doc.text:
                report.updated.append(doc.doc_id)
                to_index.append(doc)
            else:
                report.unchanged.append(doc.doc_id)
        return to_index

    def _chunk_all(self, docs: Sequence[Document], progress: Progress | None) -> list[Chunk]:
        chunks: list[Chunk] = []
        for i, doc in enumerate(docs, start=1):
            chunks.extend(
                chunk_document(
                    doc,
                    max_tokens=self.settings.chunk_max_tokens,
                    overlap_tokens=self.settings.chunk_overlap_tokens,
                )
            )
            if progress:
                progress("chunk", i, len(docs))
        return chunks

    def _embed_all(
        self, chunks: Sequence[Chunk], progress: Progress | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chunk vectors, and (when enabled) one vector per sentence with its chunk row."""
        dim = self.embedder.dim
        texts = [to_simplified(c.index_text or c.text) for c in chunks]
        owner: list[int] = []
        if self.settings.sentence_vectors:
            sentences, owner = sentence_texts(chunks)
            texts += sentences
        # Embed in length order (as a single encode call would) so that short sentences
        # are not padded to the length of the chunks they share a batch with.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        step = max(self.settings.embed_batch_size * 4, 1)
        parts = [np.zeros((0, dim), np.float32)]
        for i in range(0, len(order), step):
            parts.append(self.embedder.embed_passages([texts[j] for j in order[i : i + step]]))
            if progress:
                progress("embed", min(i + step, len(texts)), len(texts))
        allv = np.empty((len(texts), dim), np.float32)
        allv[order] = np.vstack(parts)
        n = len(chunks)
        return allv[:n], allv[n:], np.asarray(owner, dtype=np.int64)

    def remove(self, doc_ids: Sequence[str]) -> list[str]:
        """Delete documents from the index; returns the ids that were present."""
        with self.store.writer():
            manifest = self.store.manifest()
            if manifest is None:
                return []
            indexed = self.store.indexed_documents()
            gone = list(dict.fromkeys(d for d in doc_ids if d in indexed))
            if not gone:
                return []
            self.store.update(manifest, remove=gone)
            self._state = None
        return gone

    # -- query -------------------------------------------------------------------
    def embed_query(self, text: str) -> np.ndarray:
        """Query vector, cached: an answer, its evaluation and a chat turn often search
        the same question more than once."""
        with self._cache_lock:
            vec = self._query_vectors.get(text)
            if vec is not None:
                self._query_vectors.move_to_end(text)
                return vec
        vec = self.embedder.embed_queries([text])[0]
        with self._cache_lock:  # requests in threads share the cache
            self._query_vectors[text] = vec
            while len(self._query_vectors) > QUERY_CACHE_SIZE:
                self._query_vectors.popitem(last=False)
        return vec

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
