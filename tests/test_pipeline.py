"""The pipeline end to end on the bundled speeches, with the tiny hash embedder."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from index.state import IndexState
from index.store import IndexStore, StoreError
from rag.answer import Turn
from rag.pipeline import BUNDLED_CORPUS, IndexMismatchError, Pipeline, QueryError
from rag.retrieve import Filters
from rag.settings import Settings
from zh.script import detect_script


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    home = tmp_path_factory.mktemp("home")
    pipeline = Pipeline(Settings(home=home, embed_model="hash"))
    report = pipeline.ingest()
    assert len(report.added) == 5 and report.total_chunks > 50
    return pipeline


def test_reingest_unchanged_is_a_noop(built: Pipeline) -> None:
    gen = built.state().manifest.generation
    report = built.ingest()
    assert not report.changed and len(report.unchanged) == 5
    assert built.store.current_generation() == gen


def test_changed_file_replaces_its_chunks_and_remove_deletes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(BUNDLED_CORPUS, corpus)
    pipeline = Pipeline(Settings(home=tmp_path / "home", embed_model="hash"))
    pipeline.ingest([corpus])
    target = next(corpus.glob("001_*.txt"))
    before = sum(1 for c in pipeline.state().chunks if c.doc_id == target.stem)
    target.write_text(
        target.read_text(encoding="utf-8") + "\n同志们，最后再强调一点：妇联要关爱留守儿童。\n",
        encoding="utf-8",
    )
    report = pipeline.ingest([corpus])
    assert report.updated == [target.stem] and len(report.unchanged) == 4
    state = pipeline.state()
    ids = [c.chunk_id for c in state.chunks]
    assert len(ids) == len(set(ids))
    assert sum(1 for c in state.chunks if c.doc_id == target.stem) >= before
    assert any("留守儿童" in c.text for c in state.chunks if c.doc_id == target.stem)
    # sentence vectors follow their chunks
    assert int(state.sentence_owner.max()) == len(state.chunks) - 1
    assert pipeline.remove([target.stem, "nope"]) == [target.stem]
    reloaded = Pipeline(Settings(home=tmp_path / "home", embed_model="hash")).state()
    assert target.stem not in reloaded.documents
    assert all(c.doc_id != target.stem for c in reloaded.chunks)
    assert len(reloaded.sentence_owner) == len(reloaded.sentence_vectors)


def test_answer_statistics_follow_new_documents(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(BUNDLED_CORPUS, corpus)
    pipeline = Pipeline(Settings(home=tmp_path / "home", embed_model="hash"))
    pipeline.ingest([corpus])
    question = "冰雪嘉年华在哪座公园举办？"
    assert pipeline.ask(question).refused  # nothing about it yet
    assert pipeline.corpus.term_df("嘉年华") == 0
    (corpus / "new.txt").write_text(
        "市妇联主席的讲话\n妇联要举办冰雪嘉年华，地点在人民公园。\n", encoding="utf-8"
    )
    pipeline.ingest([corpus])
    assert pipeline.corpus.term_df("嘉年华") == 1
    answer = pipeline.ask(question)
    assert not answer.refused
    assert any("冰雪嘉年华" in c.quote for c in answer.citations)


def test_the_store_is_given_through_the_constructor(tmp_path: Path) -> None:
    class CountingStore(IndexStore):
        loads = 0

        def load(self) -> IndexState | None:
            CountingStore.loads += 1
            return super().load()

    store = CountingStore(tmp_path / "home")
    pipeline = Pipeline(Settings(home=tmp_path / "home", embed_model="hash"), store=store)
    assert pipeline.store is store
    pipeline.ingest()
    assert pipeline.search("群团组织的灵魂是什么？", k=1)
    assert CountingStore.loads == 1  # the search read the index through the given store


def test_bad_files_are_skipped_and_the_batch_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(next(BUNDLED_CORPUS.glob("000_*.txt")), folder)
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 8)
    report = Pipeline(Settings(home=tmp_path / "home", embed_model="hash")).ingest([folder])
    assert len(report.added) == 1
    assert {Path(s.path).name for s in report.skipped} == {"empty.txt", "binary.txt"}
    assert all(s.reason for s in report.skipped)


def test_querying_with_another_model_is_a_clear_error(built: Pipeline) -> None:
    other = Pipeline(built.settings.model_copy(update={"embed_model": "hash-256"}))
    other._embedder = type(built.embedder)(dim=128)  # same family, other dimension
    other._embedder.model_id = "hash-128"
    with pytest.raises(IndexMismatchError, match="hash-128"):
        other.search("工会", 3)


def test_no_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="rag ingest"):
        Pipeline(Settings(home=tmp_path, embed_model="hash")).search("工会", 3)


@pytest.mark.parametrize(
    "query,k", [("", 5), ("   ", 5), ("工" * 2001, 5), ("工会", 0), ("工会", 101)]
)
def test_bad_queries_are_rejected(built: Pipeline, query: str, k: int) -> None:
    with pytest.raises(QueryError):
        built.search(query, k)


def test_search_results_point_into_the_cleaned_text(built: Pipeline) -> None:
    state = built.state()
    for p in built.search("妇联要深入开展哪些创建活动", 5):
        assert state.documents[p.chunk.doc_id].text[p.chunk.start : p.chunk.end] == p.chunk.text
        assert p.chunk.section


def test_speaker_filter(built: Pipeline) -> None:
    hits = built.search("群团工作", 5, Filters(speaker="苏宁"))
    assert hits and {p.meta.speaker for p in hits} == {"苏宁"}


def test_ask_cites_verbatim_spans(built: Pipeline) -> None:
    answer = built.ask("苏宁讲话主要回答了哪三个问题？")
    assert not answer.refused and answer.citations
    docs = built.state().documents
    for c in answer.citations:
        assert docs[c.doc_id].text[c.start : c.end] == c.quote
        assert f"[{c.n}]" in answer.answer
    assert "怎么干" in answer.answer


def test_ask_refuses_when_the_speeches_do_not_say(built: Pipeline) -> None:
    answer = built.ask("量子计算机的商业化前景如何？")
    assert answer.refused and answer.citations == []
    assert "未找到" in answer.answer
    assert answer.passages  # the closest passages are still shown for checking


def test_traditional_question_gets_traditional_answer(built: Pipeline) -> None:
    answer = built.ask("蘇寧講話主要回答了哪三個問題？")
    assert not answer.refused
    assert detect_script(answer.answer) == "traditional"
    for c in answer.citations:  # quotes stay verbatim; the display copy is converted
        assert built.state().documents[c.doc_id].text[c.start : c.end] == c.quote
        assert detect_script(c.display_quote) == "traditional"


def test_followup_uses_the_history(built: Pipeline) -> None:
    history = [Turn("user", "商丘工会开展了什么品牌活动？"), Turn("assistant", "……")]
    answer = built.ask("那妇联呢？", history=history)
    assert "妇联" in answer.search_query and "品牌活动" in answer.search_query


def test_unknown_backend_lists_the_valid_ones(built: Pipeline) -> None:
    with pytest.raises(ValueError, match="extractive, openai"):
        built.ask("工会", backend="gpt-9")


def test_dead_llm_backend_degrades_to_extractive(built: Pipeline) -> None:
    settings = built.settings.model_copy(
        update={
            "llm_base_url": "http://127.0.0.1:9/v1",
            "llm_max_retries": 0,
            "llm_connect_timeout": 0.5,
            "llm_deadline": 3.0,
        }  # fmt: skip
    )
    pipeline = Pipeline(settings, embedder=built.embedder)
    answer = pipeline.ask("苏宁讲话主要回答了哪三个问题？", backend="openai")
    assert answer.degraded and "openai" in answer.notice
    assert answer.backend == "extractive" and answer.citations


def _speech(topic: str) -> str:
    return (
        f"关于{topic}的讲话\n同志们：\n今天我们召开会议，专门研究{topic}。"
        f"{topic}在全市工作中发挥了重要作用，各级组织要认真学习{topic}的经验。\n"
    )


def _two_reports(tmp_path: Path) -> tuple[Path, Path, Pipeline]:
    """Two folders each holding a speech named report.txt, and an empty pipeline."""
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, topic in ((first, "蓝鲸港口志愿服务队"), (second, "雪松林场护林员")):
        folder.mkdir()
        (folder / "report.txt").write_text(_speech(topic), encoding="utf-8")
    return first, second, Pipeline(Settings(home=tmp_path / "home", embed_model="hash"))


def test_same_file_name_from_two_folders_is_two_documents(tmp_path: Path) -> None:
    first, second, pipeline = _two_reports(tmp_path)
    assert pipeline.ingest([first / "report.txt"]).added == ["report"]  # a lone file: its stem
    report = pipeline.ingest([second])
    assert len(report.added) == 1 and not report.updated
    other = report.added[0]
    assert other.startswith("report-") and other != "report"
    assert report.total_documents == 2
    state = pipeline.state()
    assert {d: Path(doc.source).parent.name for d, doc in state.documents.items()} == {
        "report": "first",
        other: "second",
    }
    for doc_id, phrase in (("report", "蓝鲸港口志愿服务队"), (other, "雪松林场护林员")):
        hits = pipeline.search(phrase, 3, mode="bm25")
        assert hits and hits[0].chunk.doc_id == doc_id

    # the same files again: no new document ("report", cleaned before its sibling came,
    # is re-cleaned once with the lines they share as boilerplate), then nothing changes;
    # an edited one is updated in place
    assert not pipeline.ingest([first, second]).added
    again = pipeline.ingest([first, second])
    assert sorted(again.unchanged) == sorted(["report", other]) and not again.changed
    with (second / "report.txt").open("a", encoding="utf-8") as fh:
        fh.write("护林员们常年坚守在雪松林场，守护着这片森林的安全与宁静。\n")
    edited = pipeline.ingest([second / "report.txt"])
    assert edited.updated == [other] and not edited.added
    assert edited.total_documents == 2
    assert "report" in pipeline.state().documents
    assert pipeline.remove([other]) == [other]
    assert set(pipeline.state().documents) == {"report"}


def test_ids_given_in_one_batch_stay_with_their_files(tmp_path: Path) -> None:
    first, second, pipeline = _two_reports(tmp_path)
    both = pipeline.ingest([first, second])
    assert len(both.added) == 2
    ids = {Path(d.source).parent.name: d.doc_id for d in pipeline.state().documents.values()}
    (second / "report.txt").write_text(_speech("雪松林场防火队"), encoding="utf-8")
    alone = pipeline.ingest([second])  # used to come in as "report" and replace first/
    assert alone.updated == [ids["second"]] and not alone.added
    docs = pipeline.state().documents
    assert {Path(d.source).parent.name: i for i, d in docs.items()} == ids


def test_bundled_speeches_keep_their_file_stems(built: Pipeline) -> None:
    stems = {p.stem for p in BUNDLED_CORPUS.glob("*.txt")}
    assert set(built.state().documents) == stems


def test_the_same_speeches_from_another_checkout_are_not_duplicated(tmp_path: Path) -> None:
    # e.g. the bundled corpus of a second installation sharing the default data home
    home = tmp_path / "home"
    for checkout in ("one", "two"):
        shutil.copytree(BUNDLED_CORPUS, tmp_path / checkout)
    pipeline = Pipeline(Settings(home=home, embed_model="hash"))
    pipeline.ingest([tmp_path / "one"])
    report = pipeline.ingest([tmp_path / "two"])
    assert len(report.unchanged) == 5 and not report.changed
    assert set(pipeline.state().documents) == {p.stem for p in BUNDLED_CORPUS.glob("*.txt")}


def test_large_k_returns_k_passages(built: Pipeline) -> None:
    # passages continued over a list swallow later candidates; the candidate depth
    # must leave enough behind them for k results
    assert len(built.state().chunks) > 120
    for query in ("群团组织的灵魂是什么？", "他要求各级党委做好哪几项工作？"):
        assert len(built.search(query, 100)) == 100


def test_adding_a_speech_neither_loads_nor_rewrites_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, late = tmp_path / "corpus", tmp_path / "late"
    shutil.copytree(BUNDLED_CORPUS, corpus)
    late.mkdir()
    newcomer = sorted(corpus.glob("*.txt"))[-1]
    newcomer = newcomer.rename(late / newcomer.name)
    settings = Settings(home=tmp_path / "home", embed_model="hash")
    Pipeline(settings).ingest([corpus])
    store = IndexStore(settings.home)
    before = _chunk_rows(store)

    def whole(self: IndexStore, *args: object, **kwargs: object) -> None:
        raise AssertionError("a one-speech ingest read or wrote the whole index")

    monkeypatch.setattr(IndexStore, "load", whole)
    monkeypatch.setattr(IndexStore, "save", whole)
    report = Pipeline(settings).ingest([newcomer])
    monkeypatch.undo()
    assert report.added == [newcomer.stem] and report.total_documents == 5
    after = _chunk_rows(store)
    assert {k: v for k, v in after.items() if not k.startswith(newcomer.stem)} == before
    reader = Pipeline(settings)
    own = [c for c in reader.state().chunks if c.doc_id == newcomer.stem]
    assert own and len(reader.state().documents) == 5
    hits = reader.search(own[len(own) // 2].text[:60], 3, mode="bm25")
    assert hits and hits[0].chunk.doc_id == newcomer.stem


def _chunk_rows(store: IndexStore) -> dict[str, int]:
    """Chunk id → its row in the database (a rewritten chunk gets a new row)."""
    with closing(sqlite3.connect(store.db_path)) as con:
        return dict(con.execute("SELECT chunk_id, id FROM chunks"))


SITE_TOP = ("欢迎访问群团工作网", "首页 要闻 工作动态 理论研究")
SITE_BOTTOM = ("主办：群团工作网编辑部 联系我们", "本文来源：群团工作网")


def test_a_speech_ingested_alone_is_cleaned_as_in_one_batch(tmp_path: Path) -> None:
    # every page carries the same site lines; by their shape and place alone the
    # cleaner keeps the bottom ones of 000_*, repeated across speeches they go
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for src in sorted(BUNDLED_CORPUS.glob("*.txt")):
        text = src.read_text(encoding="utf-8")
        (corpus / src.name).write_text(
            "\n".join([*SITE_TOP, text, *SITE_BOTTOM]) + "\n", encoding="utf-8"
        )
    files = sorted(corpus.glob("*.txt"))
    lone = files[0]
    together = Pipeline(Settings(home=tmp_path / "together", embed_model="hash"))
    together.ingest([corpus])
    batch = {d: doc.text for d, doc in together.state().documents.items()}
    assert not any(line in text for text in batch.values() for line in SITE_BOTTOM)

    apart = Pipeline(Settings(home=tmp_path / "apart", embed_model="hash"))
    apart.ingest(files[1:])
    assert apart.ingest([lone]).added == [lone.stem]
    assert {d: doc.text for d, doc in apart.state().documents.items()} == batch
    assert not apart.ingest([corpus]).changed  # the same files again: nothing to do
    # removed documents leave the statistics: alone again, the site lines stay
    others = [f.stem for f in files[1:]]
    assert apart.remove(others) == others
    assert apart.ingest([lone]).updated == [lone.stem]
    assert SITE_BOTTOM[0] in apart.state().documents[lone.stem].text
