"""rag.corpus: the statistics backends ask for follow the index they are asked about."""

from __future__ import annotations

import numpy as np

from index.state import IndexState, Manifest
from rag.corpus import IndexCorpus
from rag.types import Chunk, DocMeta, Document


def _state(generation: str, texts: list[str]) -> IndexState:
    manifest = Manifest("hash", 4, "v", 320, 0, "bigram", "flat", False, generation=generation)
    docs = {
        f"d{i}": Document(f"d{i}", f"d{i}.txt", t, DocMeta(speaker="张三"))
        for i, t in enumerate(texts)
    }
    chunks = [Chunk(f"d{i}#0", f"d{i}", 0, len(t), t) for i, t in enumerate(texts)]
    return IndexState(manifest, docs, chunks)


def test_term_counts_follow_the_current_generation() -> None:
    current = [_state("gen-1", ["工会维护职工权益。", "共青团联系青年。"])]
    corpus = IndexCorpus(lambda: current[0], lambda q: np.ones(4), lambda ts: np.ones((len(ts), 4)))
    assert corpus.term_df("工会") == 1
    assert corpus.term_df("職工權益") == 1  # traditional script counts as simplified
    assert corpus.term_df("妇联") == 0
    assert corpus.n_chunks() == 2
    current[0] = _state("gen-2", ["妇联关心妇女儿童。", "工会开展劳动竞赛。", "工会服务职工。"])
    assert corpus.term_df("工会") == 2
    assert corpus.term_df("妇联") == 1
    assert corpus.n_chunks() == 3


def test_claims_are_embedded_on_demand_without_stored_sentence_vectors() -> None:
    state = _state("gen-1", ["工会维护职工权益。"])
    asked: list[list[str]] = []

    def embed_passages(texts: list[str]) -> np.ndarray:
        asked.append(list(texts))
        return np.ones((len(texts), 4)) / 2

    corpus = IndexCorpus(lambda: state, lambda q: np.ones(4) / 2, embed_passages)
    assert corpus.embed_pair("工会维护权益", ["工会维护职工权益。"]).tolist() == [1.0]
    assert asked == [["工会维护职工权益。"]]
