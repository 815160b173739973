"""The `rag` command, driven through typer's runner with the hash embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("home")
    result = runner.invoke(app, ["ingest", "--home", str(path)], env={"RAG_EMBED_MODEL": "hash"})
    assert result.exit_code == 0, result.output
    assert "5 documents" in result.output
    return path


def rag(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--home", str(home)], env={"RAG_EMBED_MODEL": "hash"})
    return result.exit_code, result.stdout


def test_search_json_shape(home: Path) -> None:
    code, out = rag(home, "search", "妇联创建活动", "-k", "3", "--json")
    assert code == 0
    record = json.loads(out)
    assert record["query"] == "妇联创建活动" and len(record["results"]) == 3
    assert set(record["results"][0]) == {
        "text", "doc_id", "title", "speaker", "date", "section", "start", "end", "score"
    }  # fmt: skip


def test_batch_modes_answer_line_by_line(home: Path, tmp_path: Path) -> None:
    batch = tmp_path / "q.txt"
    batch.write_text("苏宁讲话主要回答了哪三个问题？\n\n工会\n", encoding="utf-8")
    code, out = rag(home, "search", "--batch", str(batch), "--json")
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [x["query"] for x in lines] == ["苏宁讲话主要回答了哪三个问题？", "工会"]
    code, out = rag(home, "ask", "--batch", str(batch), "--json")
    answers = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and len(answers) == 2
    assert {"question", "answer", "refused", "degraded", "citations", "passages"} <= set(answers[0])


def test_ask_prints_answer_and_sources(home: Path) -> None:
    code, out = rag(home, "ask", "苏宁讲话主要回答了哪三个问题？")
    assert code == 0 and "怎么干" in out and "Sources" in out


def test_docs_and_remove(home: Path, tmp_path: Path) -> None:
    code, out = rag(home, "docs", "--json")
    docs = json.loads(out)
    assert code == 0 and len(docs) == 5 and all(d["chunks"] > 0 for d in docs)
    code, _ = rag(home, "remove", "no-such-doc")
    assert code == 1


def test_errors_are_clear_and_nonzero(home: Path, tmp_path: Path) -> None:
    assert rag(home, "search")[0] == 1  # neither a query nor --batch
    assert rag(home, "search", "   ")[0] == 2  # empty query: a bad argument
    assert rag(tmp_path, "search", "工会")[0] == 1  # no index yet
    assert rag(home, "ingest", str(tmp_path / "missing"))[0] == 1


def _invoke(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--home", str(home)], env={"RAG_EMBED_MODEL": "hash"})
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("ask", "\udcff"),  # what `rag ask $'\xff'` hands over (surrogate-escaped argv)
        ("search", "工会\udcff"),
        ("ask", "工会", "--speaker", "\udcff"),
        ("search", "工会", "--doc", "\udcff"),
        ("remove", "\udcff"),
    ],
)
def test_undecodable_arguments_are_a_usage_error_without_traceback(
    home: Path, args: tuple[str, ...]
) -> None:
    code, stderr = _invoke(home, *args)
    assert code == 2
    assert "not valid Unicode" in stderr and "Traceback" not in stderr


def test_undecodable_argv_bytes_from_the_os(tmp_path: Path) -> None:
    """The real path: the OS hands Python bytes, which it decodes with surrogateescape."""
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "ask", b"\xff", "--home", str(tmp_path)],
        capture_output=True,
        env={**os.environ, "RAG_EMBED_MODEL": "hash", "LC_ALL": "C.UTF-8"},
        timeout=120,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, stderr
    assert "not valid Unicode" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("question", ["？？？", "a", "😀", "\u200b\u200b"])
def test_questions_without_content_are_refused(home: Path, question: str) -> None:
    for command in ("ask", "search"):
        code, stderr = _invoke(home, command, question)
        assert code == 2 and "no words to search for" in stderr


def test_batch_errors_echo_a_short_part_of_the_line(home: Path, tmp_path: Path) -> None:
    batch = tmp_path / "long.txt"
    batch.write_text("工" * 200_000 + "\n", encoding="utf-8")
    for command, key in (("search", "query"), ("ask", "question")):
        code, out = rag(home, command, "--batch", str(batch), "--json")
        record = json.loads(out)
        assert code == 0 and "limit is" in record["error"]
        assert len(record[key]) <= 80 and record[key].endswith("…")


def test_top_k_setting_is_the_default_of_minus_k(home: Path) -> None:
    env = {"RAG_EMBED_MODEL": "hash", "RAG_TOP_K": "2"}
    result = runner.invoke(app, ["search", "工会", "--json", "--home", str(home)], env=env)
    assert result.exit_code == 0 and len(json.loads(result.stdout)["results"]) == 2
    result = runner.invoke(
        app, ["ask", "工会的作用是什么？", "--json", "--home", str(home)], env=env
    )
    assert result.exit_code == 0 and len(json.loads(result.stdout)["passages"]) == 2
    code, out = rag(home, "search", "工会", "-k", "3", "--json")  # -k still wins
    assert code == 0 and len(json.loads(out)["results"]) == 3
