from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from index.store import IndexState, Manifest
from rag.embed.base import Embedder
from rag.retrieve import Filters, Retriever, convex_fuse, rrf_fuse
from rag.types import Chunk, DocMeta, Document


class KeywordEmbedder(Embedder):
    """Bag-of-characters over a fixed alphabet: enough to make dense ranking predictable."""

    model_id = "kw"
    alphabet = "工会妇联团青年职工家庭"
    dim = len(alphabet)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for j, ch in enumerate(self.alphabet):
                out[i, j] = t.count(ch)
            out[i, 0] += 0.01  # never the zero vector
        return out


DOCS = [
    ("a", "苏宁", "2012-01-04", ["工会职工技能大赛", "工会送温暖"]),
    ("b", "魏小东", "2015-12-17", ["妇联最美家庭", "妇联巾帼建功"]),
    ("c", "李玉清", "2016-09-02", ["共青团青年志愿", "團青年創業"]),
]


@pytest.fixture
def state() -> IndexState:
    emb = KeywordEmbedder()
    docs, chunks = {}, []
    for doc_id, speaker, date, paras in DOCS:
        text = "\n".join(paras)
        docs[doc_id] = Document(
            doc_id, f"{doc_id}.txt", text, DocMeta(title=doc_id, speaker=speaker, date=date)
        )
        pos = 0
        for j, p in enumerate(paras):
            start = text.index(p, pos)
            chunks.append(
                Chunk(f"{doc_id}#{j}", doc_id, start, start + len(p), p, "开头", ["开头"], p)
            )
            pos = start + len(p)
    manifest = Manifest(model_id="kw", dim=emb.dim, chunker_version="1", chunk_max_tokens=9,
                        chunk_overlap_tokens=0, tokenizer="bigram", ann="flat")  # fmt: skip
    st = IndexState(manifest, docs, chunks, emb.embed_passages([c.text for c in chunks]))
    st.rebuild_indexes()
    return st


def test_rrf_rewards_agreement() -> None:
    fused = rrf_fuse([[1, 2, 3], [2, 1, 4]], [1.0, 1.0], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1] == pytest.approx(fused[2])
    assert fused[3] == pytest.approx(fused[4]) and fused[3] < fused[1]
    weighted = rrf_fuse([[1], [2]], [2.0, 1.0], k=60)
    assert weighted[1] > weighted[2]


def test_convex_fusion_normalises_each_side() -> None:
    fused = convex_fuse([{1: 10.0, 2: 0.0}, {2: 0.9, 3: 0.1}], [0.5, 0.5])
    assert fused[1] == pytest.approx(0.5)
    assert fused[2] == pytest.approx(0.5)
    assert fused[3] == pytest.approx(0.0)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_finds_the_matching_chunk(state: IndexState, mode: str) -> None:
    r = Retriever(state, KeywordEmbedder(), mode=mode)
    top = r.search("妇联家庭", k=2)
    assert top[0].chunk.chunk_id == "b#0"
    assert top[0].meta.speaker == "魏小东"
    assert [p.rank for p in top] == [1, 2]
    d = top[0].to_dict()
    assert d["text"] == state.documents["b"].text[d["start"] : d["end"]]


def test_traditional_query_finds_simplified_text(state: IndexState) -> None:
    r = Retriever(state, KeywordEmbedder(), mode="bm25")
    assert r.search("婦聯巾幗建功", k=1)[0].chunk.chunk_id == "b#1"
    assert r.search("团青年创业", k=1)[0].chunk.chunk_id == "c#1"


def test_filters(state: IndexState) -> None:
    r = Retriever(state, KeywordEmbedder(), mode="hybrid")
    only_a = r.search("妇联家庭", k=5, filters=Filters(speaker="苏宁"))
    assert {p.chunk.doc_id for p in only_a} == {"a"}
    dated = r.search("工会", k=5, filters=Filters(date_from="2015", date_to="2016-06"))
    assert {p.chunk.doc_id for p in dated} == {"b"}
    by_doc = r.search("工会", k=5, filters=Filters(doc_ids=("c",)))
    assert {p.chunk.doc_id for p in by_doc} == {"c"}
    assert r.search("工会", k=5, filters=Filters(speaker="nobody")) == []


def test_mmr_diversifies(state: IndexState) -> None:
    plain = Retriever(state, KeywordEmbedder(), mode="dense").search("工会职工", k=2)
    diverse = Retriever(state, KeywordEmbedder(), mode="dense", mmr_lambda=0.3).search(
        "工会职工", k=2
    )
    assert {p.chunk.doc_id for p in plain} == {"a"}
    assert len({p.chunk.doc_id for p in diverse}) == 2


def test_bad_names_are_clear_errors(state: IndexState) -> None:
    with pytest.raises(ValueError, match="dense, bm25, hybrid"):
        Retriever(state, KeywordEmbedder(), mode="sparse")
    with pytest.raises(ValueError, match="rrf, convex"):
        Retriever(state, KeywordEmbedder(), fusion="max")
    with pytest.raises(ValueError, match="needs an embedder"):
        Retriever(state, None, mode="dense")


def one_speech_state(paras: list[str], subsections: tuple[int, ...] = ()) -> IndexState:
    """One speech, a chunk per paragraph; the paragraphs in ``subsections`` sit one
    level down (their own sub-section under “全文”)."""
    emb = KeywordEmbedder()
    text = "".join(paras)
    doc = Document("d", "d.txt", text, DocMeta(title="d", speaker="苏宁"))
    chunks, pos = [], 0
    for j, p in enumerate(paras):
        path = ["全文", p[:4]] if j in subsections else ["全文"]
        chunks.append(Chunk(f"d#{j}", "d", pos, pos + len(p), p, " › ".join(path), path, p))
        pos += len(p)
    manifest = Manifest(model_id="kw", dim=emb.dim, chunker_version="1", chunk_max_tokens=9,
                        chunk_overlap_tokens=0, tokenizer="bigram", ann="flat")  # fmt: skip
    st = IndexState(manifest, {"d": doc}, chunks, emb.embed_passages([c.text for c in chunks]))
    st.rebuild_indexes()
    return st


@pytest.fixture
def list_state() -> IndexState:
    """One speech whose list is spread over chunks, the lead-in at the end of the first."""
    paras = [
        "职工工会年会开幕。他要求,",
        "一是妇联家庭。",
        "二是共青团青年。",
        "三是职工技能。",
        "另谈工会。",
    ]
    return one_speech_state(paras, subsections=(1, 2, 3))


def test_a_passage_announcing_a_list_continues_over_its_items(list_state: IndexState) -> None:
    hit = Retriever(list_state, None, mode="bm25").search("职工工会年会", 3)[0]
    assert hit.chunk.text == "职工工会年会开幕。他要求,一是妇联家庭。二是共青团青年。三是职工技能。"
    assert list_state.documents["d"].text[hit.chunk.start : hit.chunk.end] == hit.chunk.text
    assert hit.chunk.section == "全文"  # the common parent of the chunks it spans


def test_an_item_continues_to_the_next_only_for_list_questions(list_state: IndexState) -> None:
    r = Retriever(list_state, None, mode="bm25")
    plain = r.search("妇联家庭", 1)[0]
    assert plain.chunk.text == "一是妇联家庭。"
    listed = r.search("妇联家庭有哪些", 1)[0]
    assert listed.chunk.text == "一是妇联家庭。二是共青团青年。三是职工技能。"


def test_chunks_inside_a_continued_passage_are_not_returned_again(
    list_state: IndexState,
) -> None:
    results = Retriever(list_state, None, mode="bm25").search("职工工会年会 青年 技能", 5)
    spans = [(p.chunk.start, p.chunk.end) for p in results]
    for i, (a, b) in enumerate(spans):
        assert not any(c <= a and b <= d for j, (c, d) in enumerate(spans) if j != i)


@pytest.fixture
def long_items_state() -> IndexState:
    """A list whose first item runs over two more chunks before the second item."""
    paras = [
        "一是妇联家庭。",
        "妇联要做好工作。",
        "各级要重视。",
        "二是共青团青年。",
        "三是职工技能。",
    ]
    return one_speech_state([*paras, "一是另一份名单。"])


def test_a_list_question_reads_over_a_long_item_to_the_next_ones(
    long_items_state: IndexState,
) -> None:
    r = Retriever(long_items_state, None, mode="bm25")
    listed = r.search("妇联家庭有哪些", 1)[0]
    # on to item three; the next list (its numbering starts again) is not taken
    assert listed.chunk.text.endswith("二是共青团青年。三是职工技能。")
    assert listed.chunk.text.startswith("一是妇联家庭。")
    assert r.search("妇联家庭", 1)[0].chunk.text == "一是妇联家庭。"  # not a list question
    # the count asked for is reached: no need to read on
    assert r.search("妇联家庭是哪两个", 1)[0].chunk.text.endswith("二是共青团青年。")


def test_a_list_passage_opening_mid_list_starts_at_item_one(long_items_state: IndexState) -> None:
    r = Retriever(long_items_state, None, mode="bm25")
    listed = r.search("职工技能有哪些", 1)[0]  # the best chunk holds item three
    assert listed.chunk.text.startswith("一是妇联家庭。")
    assert "三是职工技能。" in listed.chunk.text
    assert r.search("职工技能", 1)[0].chunk.text == "三是职工技能。"  # not a list question
