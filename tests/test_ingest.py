"""The ingest steps (rag.ingest) on their own: embedding groups, manifest checks, the
one-transaction run and removal, with the tiny hash embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.state import sentence_texts
from index.store import IndexStore
from rag.embed import HashEmbedder
from rag.ingest import (
    IndexMismatchError,
    Ingestor,
    embedding_groups,
    embedding_order,
    manifest_differences,
    remove_documents,
    wanted_manifest,
)
from rag.settings import Settings
from zh.script import to_simplified

SPEECH = "一、加强领导\n\n党委要把群团工作摆上重要议程。一是把好方向。二是搞好指导。\n"


def test_embedding_order_sorts_by_length_and_covers_every_text_once() -> None:
    texts = ["ccc", "a", "bbbb", "dd", "e"]
    groups = embedding_order(texts, 2)
    assert [len(g) for g in groups] == [2, 2, 1]
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(texts)))
    assert [len(texts[i]) for i in flat] == sorted(len(t) for t in texts)
    assert embedding_groups(texts, 2) == [[texts[i] for i in g] for g in groups]
    assert embedding_order([], 4) == []


class Recording(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def embed_passages(self, texts):  # type: ignore[no-untyped-def]
        self.calls.append(list(texts))
        return super().embed_passages(texts)


def test_embed_calls_the_embedder_once_per_group_and_keeps_each_texts_vector(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_text(SPEECH, encoding="utf-8")
    settings = Settings(home=tmp_path / "home", embed_model="hash", embed_batch_size=1)
    embedder = Recording()
    ingestor = Ingestor(settings, IndexStore(settings.home), embedder)
    docs, _, _ = ingestor.load([tmp_path / "a.txt"])
    chunks = ingestor.chunk(docs, None)
    vectors, sent_vectors, owner = ingestor.embed(chunks, None)
    assert embedder.calls and all(len(call) <= 4 for call in embedder.calls)  # batch size * 4
    chunk_texts = [to_simplified(c.index_text or c.text) for c in chunks]
    sentences, _ = sentence_texts(chunks)
    assert sorted(t for call in embedder.calls for t in call) == sorted(chunk_texts + sentences)
    # each vector is its own text's, wherever its group put it
    assert np.allclose(vectors, HashEmbedder().embed_passages(chunk_texts))
    assert np.allclose(sent_vectors, HashEmbedder().embed_passages(sentences))
    assert len(owner) == len(sent_vectors) and int(owner.max()) == len(chunks) - 1


def test_a_run_commits_once_and_a_changed_setting_needs_a_rebuild(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(SPEECH, encoding="utf-8")
    settings = Settings(home=tmp_path / "home", embed_model="hash")
    store = IndexStore(settings.home)
    report = Ingestor(settings, store, HashEmbedder()).run([tmp_path / "a.txt"])
    assert report.added == ["a"] and report.generation == store.current_generation()
    again = Ingestor(settings, store, HashEmbedder()).run([tmp_path / "a.txt"])
    assert again.unchanged == ["a"] and again.generation == report.generation

    other = settings.model_copy(update={"chunk_max_tokens": settings.chunk_max_tokens + 10})
    have = store.manifest()
    assert have is not None
    diff = manifest_differences(have, wanted_manifest(other, HashEmbedder()))
    assert diff and diff[0].startswith("chunk_max_tokens")
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        Ingestor(other, store, HashEmbedder()).run([tmp_path / "a.txt"])
    assert store.current_generation() == report.generation  # nothing written
    rebuilt = Ingestor(other, store, HashEmbedder()).run([tmp_path / "a.txt"], rebuild=True)
    assert rebuilt.generation != report.generation


def test_remove_documents_reports_only_what_was_there(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "home")
    assert remove_documents(store, ["a"]) == []  # no index yet
    (tmp_path / "a.txt").write_text(SPEECH, encoding="utf-8")
    settings = Settings(home=tmp_path / "home", embed_model="hash")
    Ingestor(settings, store, HashEmbedder()).run([tmp_path / "a.txt"])
    assert remove_documents(store, ["nope", "a", "a"]) == ["a"]
    assert store.indexed_documents() == {}
