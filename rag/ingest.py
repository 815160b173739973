"""Ingest, as steps over the store: load → clean → (what changed) → chunk → embed → index.

:class:`Ingestor` runs the steps for one call of ``rag ingest`` (or an upload) inside
the store's writer lock and commits a new generation in one transaction; nothing is
written when a step fails. The local engine runs every step here; the Ray engine
(``rag.ingest_ray``) does the load/clean/chunk and embed work on a cluster and hands
the vectors to an ``Ingestor`` for the commit, through the same embedding groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.state import Changes, Manifest, sentence_texts
from index.store import IndexStore, StoreError
from rag.chunk import CHUNKER_VERSION, chunk_document
from rag.documents import assign_doc_ids, load_documents
from rag.embed import get_embedder
from rag.embed.base import Embedder
from rag.settings import Settings
from rag.types import Chunk, Document, SkippedFile
from zh.script import to_simplified

__all__ = [
    "BUNDLED_CORPUS",
    "IndexMismatchError",
    "IngestReport",
    "Ingestor",
    "Progress",
    "build_embedder",
    "embedding_groups",
    "embedding_step",
    "manifest_differences",
    "remove_documents",
]

BUNDLED_CORPUS = Path(__file__).parent / "corpus"

Progress = Callable[[str, int, int], None]  # (stage, done, total)

# what an index is built with; an index built otherwise cannot be extended
MANIFEST_KEYS = ("model_id", "dim", "chunker_version", "chunk_max_tokens",
                 "chunk_overlap_tokens", "tokenizer", "ann", "sentence_vectors", "vector_codec")  # fmt: skip


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


def wanted_manifest(settings: Settings, embedder: Embedder) -> Manifest:
    """The manifest an index built with these settings and this embedder carries."""
    s = settings
    return Manifest(
        model_id=embedder.model_id,
        dim=embedder.dim,
        chunker_version=CHUNKER_VERSION,
        chunk_max_tokens=s.chunk_max_tokens,
        chunk_overlap_tokens=s.chunk_overlap_tokens,
        tokenizer=s.keyword_tokenizer,
        ann=s.ann,
        sentence_vectors=s.sentence_vectors,
        vector_codec=s.vector_codec,
    )


def manifest_differences(have: Manifest, want: Manifest) -> list[str]:
    return [
        f"{k}: index has {getattr(have, k)!r}, configured {getattr(want, k)!r}"
        for k in MANIFEST_KEYS
        if getattr(have, k) != getattr(want, k)
    ]


BATCHES_PER_CALL = 4  # an embedder call takes this many batches' worth of texts


def embedding_step(settings: Settings) -> int:
    """Texts per embedder call: the size of an embedding group."""
    return max(settings.embed_batch_size * BATCHES_PER_CALL, 1)


def embedding_order(texts: Sequence[str], step: int) -> list[list[int]]:
    """Positions of ``texts`` in length order, cut into groups of ``step``: one embedder
    call per group, so short sentences are not padded to the length of the chunks they
    would share a batch with (as a single encode call would sort them)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[i : i + step] for i in range(0, len(order), step)]


def embedding_groups(texts: Sequence[str], step: int) -> list[list[str]]:
    """The texts of each embedding group (:func:`embedding_order`): what another engine
    hands to its embedder so that each text is padded (and, with int8, its activations
    scaled) alongside the same neighbours as in a local ingest."""
    return [[texts[j] for j in group] for group in embedding_order(texts, step)]


def remove_documents(store: IndexStore, doc_ids: Sequence[str]) -> list[str]:
    """Delete documents from the index; returns the ids that were present."""
    with store.writer():
        manifest = store.manifest()
        if manifest is None:
            return []
        indexed = store.indexed_documents()
        gone = list(dict.fromkeys(d for d in doc_ids if d in indexed))
        if gone:
            store.update(manifest, remove=gone)
        return gone


class Ingestor:
    """One ingest: the steps, each a method, over a store and an embedder."""

    def __init__(self, settings: Settings, store: IndexStore, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder

    def run(
        self,
        paths: Sequence[Path] | None = None,
        *,
        rebuild: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        """load → clean → (what changed) → chunk → embed → index, one transaction."""
        paths = list(paths) if paths else [BUNDLED_CORPUS]
        want = wanted_manifest(self.settings, self.embedder)
        with self.store.writer():
            docs, skipped, raw_lines = self.load(paths)
            report = IngestReport(files=len(docs) + len(skipped), skipped=list(skipped))
            have = self.indexed_manifest(want, rebuild)
            to_index = self.changed(docs, have, rebuild, report)
            if not to_index:
                if have is not None:
                    report.total_documents = have.n_documents
                    report.total_chunks = have.n_chunks
                    report.generation = have.generation or None
                return report
            new_chunks = self.chunk(to_index, progress)
            vectors, sent_vectors, sent_owner = self.embed(new_chunks, progress)
            lines = {d.doc_id: raw_lines[d.source] for d in to_index if d.source in raw_lines}
            changes = Changes(to_index, new_chunks, vectors, sent_vectors, sent_owner, lines)
            report.generation = self.store.update(want, changes, replace_all=rebuild)
            report.chunks_embedded = len(new_chunks)
            report.total_documents = want.n_documents
            report.total_chunks = want.n_chunks
        return report

    def load(
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

    def indexed_manifest(self, want: Manifest, rebuild: bool) -> Manifest | None:
        """The manifest of the index on disk, which must match ``want`` unless rebuilding."""
        try:
            have = self.store.manifest()
        except StoreError:
            if not rebuild:
                raise
            have = None  # unreadable (e.g. corrupt): rebuild from the given paths
        differences = manifest_differences(have, want) if have is not None else []
        if differences and not rebuild:
            raise IndexMismatchError(
                "the index on disk was built with other settings ("
                + "; ".join(differences)
                + "); re-run with `rag ingest --rebuild` to rebuild it"
            )
        return have

    def changed(
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

    def chunk(self, docs: Sequence[Document], progress: Progress | None) -> list[Chunk]:
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

    def embed(
        self, chunks: Sequence[Chunk], progress: Progress | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chunk vectors, and (when enabled) one vector per sentence with its chunk row."""
        dim = self.embedder.dim
        texts = [to_simplified(c.index_text or c.text) for c in chunks]
        owner: list[int] = []
        if self.settings.sentence_vectors:
            sentences, owner = sentence_texts(chunks)
            texts += sentences
        allv = np.empty((len(texts), dim), np.float32)
        done = 0
        for group in embedding_order(texts, embedding_step(self.settings)):
            allv[group] = self.embedder.embed_passages([texts[j] for j in group])
            done += len(group)
            if progress:
                progress("embed", done, len(texts))
        n = len(chunks)
        return allv[:n], allv[n:], np.asarray(owner, dtype=np.int64)
