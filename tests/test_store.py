from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from index.atomic import checkpoint_hook
from index.keywords import BM25Index, tokenize
from index.store import DEFAULT_VECTOR_CODEC, Changes, IndexState, IndexStore, Manifest, StoreError
from index.vectors import (
    IVFIndex,
    codec_dtype,
    decode_vectors,
    encode_vectors,
    make_vector_index,
)
from rag.pipeline import BUNDLED_CORPUS
from rag.types import Chunk, DocMeta, Document


def _manifest(dim: int = 4, ann: str = "flat", tokenizer: str = "jieba") -> Manifest:
    return Manifest(model_id="m", dim=dim, chunker_version="1", chunk_max_tokens=100,
                    chunk_overlap_tokens=10, tokenizer=tokenizer, ann=ann)  # fmt: skip


def _state(n_docs: int = 2, ann: str = "flat", tokenizer: str = "jieba") -> IndexState:
    docs, chunks, vecs = {}, [], []
    rng = np.random.default_rng(0)
    for d in range(n_docs):
        text = f"工会工作第{d}段。妇联工作第{d}段。"
        doc = Document(doc_id=f"d{d}", source=f"d{d}.txt", text=text,
                       meta=DocMeta(title=f"讲话{d}", speaker="苏宁"), sha256=str(d))  # fmt: skip
        docs[doc.doc_id] = doc
        half = len(text) // 2
        for j, (s, e) in enumerate([(0, half), (half, len(text))]):
            chunks.append(Chunk(chunk_id=f"d{d}#{j}", doc_id=doc.doc_id, start=s, end=e,
                                text=text[s:e], section="开头", index_text=text[s:e]))  # fmt: skip
            v = rng.normal(size=4)
            vecs.append(v / np.linalg.norm(v))
    state = IndexState(
        _manifest(ann=ann, tokenizer=tokenizer), docs, chunks, np.array(vecs, dtype=np.float32)
    )
    state.rebuild_indexes()
    return state


def test_round_trip_and_generations(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    assert store.load() is None
    with store.writer():
        first = store.save(_state())
        second = store.save(_state(3))
    assert (first, second) == ("gen-000001", "gen-000002")
    loaded = store.load()
    assert loaded is not None
    assert loaded.manifest.generation == "gen-000002"
    assert loaded.manifest.n_documents == 3 and loaded.manifest.n_chunks == 6
    assert loaded.documents["d1"].meta.speaker == "苏宁"
    assert [c.chunk_id for c in loaded.chunks][:2] == ["d0#0", "d0#1"]
    assert loaded.vectors.shape == (6, 4)
    # FAISS and BM25 came back aligned with the chunks
    assert loaded.vector_index is not None and loaded.vector_index.size == 6
    assert loaded.bm25 is not None and loaded.bm25.scores("妇联").shape == (6,)


def test_each_write_is_one_commit_and_only_touches_its_documents(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(3))
    before = _chunk_rows(store)
    extra = _state(4)
    new = Changes(
        [extra.documents["d3"]],
        extra.chunks[6:],
        extra.vectors[6:],
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.int64),
    )
    with store.writer():
        assert store.update(extra.manifest, new, remove=["d0"]) == "gen-000002"
    after = _chunk_rows(store)
    # d1 and d2 keep their rows (not rewritten); d0's are gone; d3's are new
    assert {k: v for k, v in before.items() if not k.startswith("d0")} == {
        k: v for k, v in after.items() if not k.startswith("d3")
    }
    assert sorted(after) == ["d1#0", "d1#1", "d2#0", "d2#1", "d3#0", "d3#1"]
    loaded = store.load()
    assert loaded is not None and sorted(loaded.documents) == ["d1", "d2", "d3"]
    assert loaded.manifest.n_documents == 3 and loaded.manifest.n_chunks == 6
    assert loaded.manifest.generation == "gen-000002"


def _chunk_rows(store: IndexStore) -> dict[str, int]:
    with closing(sqlite3.connect(store.db_path)) as con:
        return dict(con.execute("SELECT chunk_id, id FROM chunks"))


def test_failed_write_keeps_previous_index(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(2))

    def boom(step: str) -> None:
        if step == "wrote chunks":
            raise OSError("disk full")

    with store.writer(), checkpoint_hook(boom), pytest.raises(OSError, match="disk full"):
        store.save(_state(3))
    loaded = store.load()
    assert loaded is not None and loaded.manifest.n_documents == 2
    assert loaded.manifest.generation == "gen-000001"


def test_single_writer_lock(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    other = IndexStore(tmp_path)
    with (
        store.writer(),
        pytest.raises(StoreError, match="another process"),
        other.writer(timeout=0.1),
    ):
        pass


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state())
    for extra in ("-wal", "-shm"):
        Path(f"{store.db_path}{extra}").unlink(missing_ok=True)
    store.db_path.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="index database"):
        store.load()


def test_stored_as_plain_data_not_pickle(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state())
    assert not list(store.root.rglob("*.pkl")) and not list(store.root.rglob("*.pickle"))
    with closing(sqlite3.connect(store.db_path)) as con:
        (blob,) = con.execute("SELECT vector FROM chunks LIMIT 1").fetchone()
    assert len(blob) == codec_dtype(DEFAULT_VECTOR_CODEC, 4).itemsize


@pytest.mark.parametrize("codec", ["f32", "f16", "i8"])
def test_vector_codecs_round_trip(codec: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rec = encode_vectors(x, codec)
    back = decode_vectors(rec.tobytes(), codec, 384)
    cos = (back * x).sum(axis=1) / np.linalg.norm(back, axis=1)
    assert back.shape == x.shape and cos.min() > 0.999


def test_vector_codec_is_kept_in_the_manifest(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    state = _state()
    state.manifest.vector_codec = "f16"
    with store.writer():
        store.save(state)
    loaded = store.load()
    assert loaded is not None and loaded.manifest.vector_codec == "f16"
    np.testing.assert_allclose(loaded.vectors, state.vectors, atol=1e-3)


@pytest.mark.parametrize("ann", ["flat", "hnsw"])
def test_vector_index_search_and_filter(ann: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    vi = make_vector_index(ann, 16)
    vi.build(x)
    top = vi.search(x[7], 3)
    assert top[0][0] == 7 and top[0][1] == pytest.approx(1.0, abs=1e-4)
    allowed = np.array([10, 20, 30])
    assert {r for r, _ in vi.search(x[7], 5, allowed)} == {10, 20, 30}
    assert vi.search(x[7], 5, np.array([], dtype=np.int64)) == []


def test_ivf_index_trains_cells_above_its_threshold(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(IVFIndex, "MIN_ROWS", 1000)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    vi = make_vector_index("ivf", 16)
    vi.build(x[:500])
    assert vi.to_bytes()[:4] == b"IxFI"  # below the threshold: flat, exact
    vi.build(x)
    assert vi.to_bytes()[:4] == b"IwFl"  # inverted lists
    top = vi.search(x[7], 3)
    assert top[0][0] == 7 and top[0][1] == pytest.approx(1.0, abs=1e-4)
    allowed = np.array([10, 20, 30])
    assert {r for r, _ in vi.search(x[7], 5, allowed)} == {10, 20, 30}
    vi.save(tmp_path)
    again = make_vector_index("ivf", 16)
    again.load(tmp_path)
    assert again.search(x[7], 3) == top


def test_approximate_index_is_cached_per_commit(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(ann="hnsw"))
    first = store.load()
    assert first is not None and first.vector_index is not None
    cached = sorted(p.name for p in store.root.glob("faiss-*.faiss"))
    assert [n.split("-")[1] for n in cached] == ["chunks", "sentences"]
    stamp = {p: p.stat().st_mtime_ns for p in store.root.glob("faiss-*.faiss")}
    again = store.load()  # read from the cache, not rebuilt
    assert again is not None and again.vector_index is not None
    assert {p: p.stat().st_mtime_ns for p in store.root.glob("faiss-*.faiss")} == stamp
    q = first.vectors[1]
    assert again.vector_index.search(q, 2) == first.vector_index.search(q, 2)
    with store.writer():
        store.save(_state(n_docs=3, ann="hnsw"))
    third = store.load()
    assert third is not None and third.vector_index is not None
    assert third.vector_index.size == 6
    now = sorted(p.name for p in store.root.glob("faiss-*.faiss"))
    assert len(now) == 2 and not set(now) & set(cached)  # the old commit's files are gone
    for path in store.root.glob("faiss-*.faiss"):
        path.write_bytes(b"garbage")
    fourth = store.load()  # an unreadable cache is rebuilt
    assert fourth is not None and fourth.vector_index is not None
    assert fourth.vector_index.search(q, 2) == third.vector_index.search(q, 2)


def test_exact_index_is_not_cached(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(ann="flat"))
    assert store.load() is not None
    assert list(store.root.glob("faiss-*")) == []


def test_unknown_index_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="flat, hnsw, ivf"):
        make_vector_index("ivf-nope", 4)
    with pytest.raises(ValueError, match="jieba, bigram"):
        tokenize("x", "nope")


@pytest.mark.parametrize("tokenizer", ["jieba", "bigram"])
def test_keyword_side_matches_across_scripts(tokenizer: str) -> None:
    bm = BM25Index(tokenizer)
    bm.build(["省直機關群團工作座談會在濟南召開", "妇联开展最美家庭活动", "工会职工技能大赛"])
    scores = bm.scores("省直机关群团工作座谈会")
    assert int(np.argmax(scores)) == 0
    assert scores[2] == 0
    assert bm.scores("").tolist() == [0.0, 0.0, 0.0]


def test_a_reader_sees_one_snapshot_while_a_writer_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(2))
    original = DocMeta.from_dict.__func__  # type: ignore[attr-defined]
    calls = 0

    def two_writes_meanwhile(cls: type[DocMeta], data: dict[str, object]) -> DocMeta:
        # another process commits twice while this reader is between its first and
        # second row of documents
        nonlocal calls
        calls += 1
        if calls == 1:
            writer = IndexStore(tmp_path)
            with writer.writer():
                writer.save(_state(3))
                writer.save(_state(4))
        result: DocMeta = original(cls, data)
        return result

    monkeypatch.setattr(DocMeta, "from_dict", classmethod(two_writes_meanwhile))
    loaded = store.load()
    assert loaded is not None and loaded.manifest.generation == "gen-000001"
    assert loaded.manifest.n_documents == 2 and len(loaded.documents) == 2
    assert len(loaded.chunks) == len(loaded.vectors) == 4
    monkeypatch.undo()
    latest = store.load()
    assert latest is not None and latest.manifest.generation == "gen-000003"
    assert len(latest.documents) == 4


def _write_legacy(root: Path, state: IndexState) -> None:
    """The generation-directory layout (format 2) as the previous store wrote it."""
    gdir = root / "generations" / "gen-000004"
    gdir.mkdir(parents=True)
    manifest = {**state.manifest.to_dict(), "format_version": 2, "generation": "gen-000004"}
    manifest.pop("vector_codec")
    (gdir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    docstore = {
        "documents": [
            {"doc_id": d.doc_id, "source": d.source, "sha256": d.sha256,
             "meta": d.meta.to_dict(), "text": d.text}
            for d in state.documents.values()
        ],
        "chunks": [c.to_dict() for c in state.chunks],
    }  # fmt: skip
    (gdir / "docstore.json").write_text(json.dumps(docstore), encoding="utf-8")
    np.save(gdir / "vectors.npy", state.vectors)
    np.save(gdir / "sentences.npy", np.zeros((0, 4), np.float32))
    np.save(gdir / "sentence_owner.npy", np.zeros(0, np.int64))
    (root / "CURRENT").write_text('{"generation": "gen-000004"}', encoding="utf-8")


def test_an_index_of_the_old_layout_is_read_then_converted_by_the_next_write(
    tmp_path: Path,
) -> None:
    store = IndexStore(tmp_path)
    old = _state(3)
    _write_legacy(store.root, old)
    loaded = store.load()
    assert loaded is not None and loaded.manifest.generation == "gen-000004"
    assert sorted(loaded.documents) == ["d0", "d1", "d2"] and len(loaded.chunks) == 6
    assert store.current_generation() == "gen-000004"
    new = _state(4)
    with store.writer():
        name = store.update(new.manifest, Changes(
            [new.documents["d3"]], new.chunks[6:], new.vectors[6:],
            np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
        ))  # fmt: skip
    assert name == "gen-000005"
    assert not (store.root / "generations").exists() and not (store.root / "CURRENT").exists()
    converted = store.load()
    assert converted is not None and sorted(converted.documents) == ["d0", "d1", "d2", "d3"]
    assert [c.chunk_id for c in converted.chunks][:6] == [c.chunk_id for c in old.chunks]
    np.testing.assert_allclose(converted.vectors[:6], old.vectors, atol=0.01)


def test_an_unreadable_old_index_says_how_to_rebuild(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    _write_legacy(store.root, _state(2))
    (store.root / "generations" / "gen-000004" / "docstore.json").write_text("{half")
    with pytest.raises(StoreError, match="old generation-directory format.*--rebuild"):
        store.load()
    with store.writer():
        store.save(_state(1))  # a rebuild replaces it
    loaded = store.load()
    assert loaded is not None and len(loaded.documents) == 1
    assert not (store.root / "generations").exists()


def test_keyword_index_loaded_from_stored_terms_equals_a_fresh_build(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(3, tokenizer="bigram"))
        extra = _state(5, tokenizer="bigram")
        for d in ("d3", "d4"):
            rows = [i for i, c in enumerate(extra.chunks) if c.doc_id == d]
            store.update(extra.manifest, Changes(
                [extra.documents[d]], [extra.chunks[i] for i in rows], extra.vectors[rows],
                np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
            ), remove=["d1"])  # fmt: skip
    loaded = store.load()
    assert loaded is not None and sorted(loaded.documents) == ["d0", "d2", "d3", "d4"]
    fresh = BM25Index("bigram")
    fresh.build([c.index_text for c in loaded.chunks])
    assert loaded.bm25 is not None
    for query in ("妇联工作第3段", "工会", "第4段。妇联", "没有的词"):
        np.testing.assert_allclose(loaded.bm25.scores(query), fresh.scores(query), rtol=1e-6)
    assert loaded.bm25.scores("第3段").argmax() in {4, 5}


def test_keyword_scores_are_those_of_bm25s() -> None:
    bm25s = pytest.importorskip("bm25s")
    texts = [p.read_text(encoding="utf-8") for p in sorted(BUNDLED_CORPUS.glob("*.txt"))]
    texts = [t[i : i + 300] for t in texts for i in range(0, len(t), 300)]
    corpus = [tokenize(t, "bigram") for t in texts]
    reference = bm25s.BM25(k1=BM25Index.K1, b=BM25Index.B)
    reference.index([t or ["\u0000"] for t in corpus], show_progress=False)
    ours = BM25Index("bigram")
    ours.build_tokens(corpus)
    for query in ("群团组织的灵魂是什么", "工会要做好困难职工帮扶工作", "妇联 共青团 青年"):
        tokens = tokenize(query, "bigram")
        np.testing.assert_allclose(
            ours.scores_tokens(tokens), reference.get_scores(tokens), rtol=1e-5, atol=1e-6
        )
