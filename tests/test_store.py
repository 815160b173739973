from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.keywords import BM25Index, tokenize
from index.store import IndexState, IndexStore, Manifest, StoreError
from index.vectors import make_vector_index
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


def test_old_generations_are_pruned(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        for _ in range(4):
            store.save(_state())
    names = sorted(p.name for p in store.generations.iterdir())
    assert names == ["gen-000003", "gen-000004"]


def test_crash_during_save_keeps_previous_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(2))

    def boom(self: BM25Index, directory: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(BM25Index, "save", boom)
    with store.writer(), pytest.raises(OSError, match="disk full"):
        store.save(_state(3))
    monkeypatch.undo()
    loaded = store.load()
    assert loaded is not None and loaded.manifest.n_documents == 2
    assert not list(store.generations.glob(".tmp-*"))


def test_leftover_temporary_from_a_killed_writer_is_ignored_then_removed(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(2))
    junk = store.generations / ".tmp-gen-000002"
    junk.mkdir()
    (junk / "manifest.json").write_text("{half")
    loaded = store.load()
    assert loaded is not None and loaded.manifest.generation == "gen-000001"
    with store.writer():
        store.save(_state(1))
    assert not junk.exists()


def test_single_writer_lock(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    other = IndexStore(tmp_path)
    with (
        store.writer(),
        pytest.raises(StoreError, match="another process"),
        other.writer(timeout=0.1),
    ):
        pass


def test_corrupt_pointer_and_inconsistent_generation_are_clear_errors(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        name = store.save(_state())
    np.save(store.generations / name / "vectors.npy", np.zeros((1, 4), np.float32))
    with pytest.raises(StoreError, match="inconsistent"):
        store.load()
    store.pointer.write_text("not json")
    with pytest.raises(StoreError, match="corrupt index pointer"):
        store.load()


def test_docstore_is_plain_json_not_pickle(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        name = store.save(_state())
    data = json.loads((store.generations / name / "docstore.json").read_text("utf-8"))
    assert {d["doc_id"] for d in data["documents"]} == {"d0", "d1"}
    vectors = np.load(store.generations / name / "vectors.npy", allow_pickle=False)
    assert vectors.dtype == np.float32
    assert not list(store.root.rglob("*.pkl")) and not list(store.root.rglob("*.pickle"))


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


def test_unknown_index_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="flat, hnsw"):
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


def test_uncommitted_generation_left_by_a_crash_does_not_block_writes(tmp_path: Path) -> None:
    # What kill -9 between the rename and the pointer update leaves: gen-000002 on disk,
    # CURRENT still naming gen-000001. Every later write used to fail with ENOTEMPTY.
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(2))
    leftover = store.generations / "gen-000002"
    leftover.mkdir()
    (leftover / "manifest.json").write_text("{half", encoding="utf-8")
    loaded = store.load()
    assert loaded is not None and loaded.manifest.generation == "gen-000001"
    with store.writer():
        name = store.save(_state(3))
    assert name == "gen-000002"
    loaded = store.load()
    assert loaded is not None and loaded.manifest.n_documents == 3
    assert loaded.manifest.generation == "gen-000002"


def test_pointer_temporaries_of_a_killed_write_are_removed_by_the_next(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(2))
    stale = store.root / ".CURRENT.k1ll3d.tmp"
    stale.write_text('{"generation": "gen-000002"}', encoding="utf-8")
    keep = store.root / "notes.tmp"  # not a name atomic writes use
    keep.write_text("mine", encoding="utf-8")
    with store.writer():
        store.save(_state(1))
    assert not stale.exists() and keep.exists()


def test_prune_keeps_the_previous_committed_generation_despite_leftovers(
    tmp_path: Path,
) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(2))
        store.save(_state(2))
    (store.generations / "gen-000009").mkdir()  # never committed
    with store.writer():
        assert store.save(_state(3)) == "gen-000003"
    # a reader that loaded gen-000002 just before the flip still finds its files
    names = sorted(p.name for p in store.generations.iterdir())
    assert names == ["gen-000002", "gen-000003"]


def test_prune_orders_generations_by_number(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    store.generations.mkdir(parents=True)
    for name in ("gen-999998", "gen-999999"):
        (store.generations / name).mkdir()
    store.pointer.write_text('{"generation": "gen-999999"}', encoding="utf-8")
    with store.writer():
        assert store.save(_state(1)) == "gen-1000000"
    names = {p.name for p in store.generations.iterdir()}
    assert names == {"gen-999999", "gen-1000000"}
    loaded = store.load()
    assert loaded is not None and loaded.manifest.generation == "gen-1000000"


def test_load_follows_the_pointer_when_its_generation_is_pruned_mid_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IndexStore(tmp_path)
    with store.writer():
        store.save(_state(2))
    original = Manifest.from_dict.__func__  # type: ignore[attr-defined]
    calls = 0

    def two_writes_meanwhile(cls: type[Manifest], data: dict[str, object]) -> Manifest:
        # another process commits twice while this reader is between its first and
        # second file: gen-000001 is pruned under it
        nonlocal calls
        calls += 1
        if calls == 1:
            writer = IndexStore(tmp_path)
            with writer.writer():
                writer.save(_state(3))
                writer.save(_state(4))
        result: Manifest = original(cls, data)
        return result

    monkeypatch.setattr(Manifest, "from_dict", classmethod(two_writes_meanwhile))
    loaded = store.load()
    assert not (store.generations / "gen-000001").exists()
    assert loaded is not None and loaded.manifest.generation == "gen-000003"
    assert loaded.manifest.n_documents == 4
