"""Tests for eval.report: the four report files and the A/B comparison."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

import eval.report as report
from eval.metrics import SUMMARY_KEYS, GoldItem, QuestionResult, aggregate, evaluate_question
from eval.report import compare, format_comparison, write_report

EVIDENCE = "群团组织要始终保持政治性先进性群众性"
MISSED = "深化党建带群建工作机制建设"
FILLER = "这是一段与问题无关的文字，讲的是别的事情。"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def passage(text: str, doc_id: str, section: str = "") -> dict[str, Any]:
    return {"text": text, "doc_id": doc_id, "section": section, "start": 0,
            "end": len(text), "score": 0.5}  # fmt: skip


def gold(item_id: str, kind: str, evidence: str | None, keyword: str = "") -> GoldItem:
    if evidence is None:
        return GoldItem(item_id, kind, f"问题{item_id}？", answerable=False)
    return GoldItem(item_id, kind, f"问题{item_id}？", (evidence,), ((keyword,),))


@pytest.fixture
def questions() -> list[QuestionResult]:
    timing = {"retrieve": 15.0, "answer": 40.0, "total": 55.0}
    return [
        evaluate_question(
            gold("hit", "factoid", EVIDENCE, "政治性"),
            [passage(EVIDENCE, "doc_a", "一、总体要求")],
            {"answer": "政治性", "refused": False, "degraded": False, "citations": []},
            latencies=timing,
        ),
        evaluate_question(
            gold("miss", "list", MISSED, "党建带群建"),
            [passage(FILLER, "doc_noise", "附录"), passage(FILLER, "doc_b")],
            {"answer": "", "refused": True, "degraded": False, "citations": []},
            latencies=timing,
        ),
        evaluate_question(
            gold("nope", "unanswerable", None),
            [passage(FILLER, "doc_b")],
            {"answer": "", "refused": True, "degraded": False, "citations": []},
            latencies=timing,
        ),
    ]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # IHDR follows the signature
    return width, height


def test_exported_names_exist() -> None:
    for name in report.__all__:
        assert hasattr(report, name), name


def test_write_report_writes_four_files(tmp_path: Path, questions: list[QuestionResult]) -> None:
    results = {**aggregate(questions), "run": {"retriever": "hybrid", "gold": "dev.jsonl"}}
    paths = write_report(results, questions, tmp_path / "out", title="Dev run")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "results.json", "questions.jsonl", "report.md", "report.png"
    }  # fmt: skip
    assert set(paths) == {"results", "questions", "markdown", "chart"}

    saved = json.loads(paths["results"].read_text(encoding="utf-8"))
    assert set(saved) == {"overall", "by_kind", "run"}
    assert saved["run"]["retriever"] == "hybrid"
    assert set(saved["overall"]) == set(SUMMARY_KEYS)
    assert set(saved["by_kind"]) == {"factoid", "list", "unanswerable"}
    for summary in saved["by_kind"].values():
        assert set(summary) == set(SUMMARY_KEYS)
    assert set(saved["overall"]["latency_ms"]) == {"retrieve", "first_token", "answer", "total"}
    assert saved["by_kind"]["unanswerable"]["hit@1"] is None

    lines = paths["questions"].read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["hit", "miss", "nope"]
    first = json.loads(lines[0])
    assert first["verdicts"]["hit@1"] == 1.0 and first["retrieved"][0]["doc_id"] == "doc_a"


def test_report_md_lists_the_misses(tmp_path: Path, questions: list[QuestionResult]) -> None:
    paths = write_report(aggregate(questions), questions, tmp_path, title="Dev run")
    text = paths["markdown"].read_text(encoding="utf-8")
    assert text.startswith("# Dev run")
    assert "## Overall" in text and "## By kind" in text
    retrieval = text.split("### Retrieval misses")[1].split("### Answer misses")[0]
    assert "**miss**" in retrieval and MISSED in retrieval  # question and expected evidence
    assert "doc_noise › 附录" in retrieval  # what was retrieved instead
    assert "**hit**" not in retrieval and "**nope**" not in retrieval
    answers = text.split("### Answer misses")[1]
    assert "**miss** (list, refused although answerable)" in answers
    assert "**hit**" not in answers and "**nope**" not in answers
    assert "| unanswerable | 1 | n/a |" in text  # not applicable is shown, never 0


def test_chart_is_a_real_png_and_grows_a_retriever_panel(
    tmp_path: Path, questions: list[QuestionResult]
) -> None:
    results = aggregate(questions)
    single = write_report(results, questions, tmp_path / "one", title="t")["chart"]
    assert single.stat().st_size > 10_000
    width, height = png_size(single)
    assert width > 600 and height > 300

    other = aggregate(questions[:1])
    both = write_report(
        results, questions, tmp_path / "two", title="t", extra_runs={"bm25": other, "dense": other}
    )["chart"]
    assert png_size(both)[1] > 1.5 * height


def test_compare_reports_deltas(questions: list[QuestionResult]) -> None:
    a = aggregate(questions[:1])  # only the hit
    b = aggregate(questions)
    rows = compare(a, b)
    by_key = {(scope, metric): (va, vb, d) for scope, metric, va, vb, d in rows}
    assert by_key[("overall", "hit@1")] == (1.0, 0.5, -0.5)
    assert by_key[("overall", "n")] == (1, 3, 2)
    assert by_key[("overall", "latency_ms.total.p50")] == (55.0, 55.0, 0.0)
    assert by_key[("list", "hit@1")] == (None, 0.0, None)  # kind only in B
    assert ("overall", "refusal_accuracy") in by_key
    assert ("factoid", "refusal_accuracy") not in by_key  # applies in neither run


def test_format_comparison_plain_and_rich(questions: list[QuestionResult]) -> None:
    rows = compare(aggregate(questions[:1]), aggregate(questions))
    plain = format_comparison(rows, a_label="before", b_label="after", use_rich=False)
    header = plain.splitlines()[0].split()
    assert header == ["scope", "metric", "before", "after", "delta", "change"]
    hit1 = next(line for line in plain.splitlines() if " hit@1 " in line and "overall" in line)
    assert hit1.split() == ["overall", "hit@1", "1.000", "0.500", "-0.500", "worse"]
    fancy = format_comparison(rows, a_label="before", b_label="after")
    assert "before" in fancy and "-0.500" in fancy and "worse" in fancy


def test_lower_is_better_for_latency_and_failure_rates() -> None:
    def summary(**values: Any) -> dict[str, Any]:
        return {"overall": values, "by_kind": {}}

    a = summary(false_refusal_rate=0.4, latency_ms={"total": {"p50": 90.0, "p95": 120.0}})
    b = summary(false_refusal_rate=0.1, latency_ms={"total": {"p50": 80.0, "p95": 150.0}})
    lines = format_comparison(compare(a, b), use_rich=False).splitlines()
    verdict = {line.split()[1]: line.split()[-1] for line in lines[2:]}
    assert verdict == {
        "false_refusal_rate": "better",
        "latency_ms.total.p50": "better",
        "latency_ms.total.p95": "worse",
    }
