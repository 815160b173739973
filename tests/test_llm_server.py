"""The local LLM server manager and backend, against a fake server process
(tests/fake_llama_server.py standing in for llama_cpp.server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.answer.base import AnswerRequest, BackendError
from rag.answer.local import LocalBackend
from rag.llm.server import LocalServer, ServerError, healthy
from rag.types import Chunk, DocMeta, Passage

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TEXT = "群团组织是党联系群众的桥梁和纽带。工会要维护职工合法权益。"


@pytest.fixture(autouse=True)
def _child_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server child must import the fake server and this checkout's rag."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(TESTS)]))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF fake")
    return path


@pytest.fixture
def managers(tmp_path: Path, model: Path) -> Iterator[list[LocalServer]]:
    made: list[LocalServer] = []
    yield made
    for m in made:
        m.stop()


def manager(made: list[LocalServer], state: Path, model: Path, **kw: object) -> LocalServer:
    server = LocalServer(state, model, module="fake_llama_server", startup_timeout=30, **kw)  # type: ignore[arg-type]
    made.append(server)
    return server


def gone(pid: int, wait: float = 15.0) -> bool:
    """Whether process ``pid`` has exited (polled, bounded)."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a child of ours that exited is a zombie until reaped
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


def test_starts_records_and_stops(tmp_path: Path, model: Path, managers: list[LocalServer]) -> None:
    server = manager(managers, tmp_path / "state", model)
    url = server.ensure()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert healthy(url) and server.owned
    record = server.read_record()
    assert record is not None and record.base_url == url and record.model == str(model)
    assert record.owner == os.getpid()
    assert server.ensure() == url  # the same server while it lives

    server.stop()
    assert gone(record.pid)
    assert not server.state_path.exists()


def test_a_second_process_reuses_the_server_and_does_not_stop_it(
    tmp_path: Path, model: Path, managers: list[LocalServer]
) -> None:
    first = manager(managers, tmp_path / "state", model)
    url = first.ensure()
    second = manager(managers, tmp_path / "state", model)
    assert second.ensure() == url and not second.owned
    second.stop()
    assert healthy(url)  # only the owner stops it
    first.stop()
    assert not healthy(url, timeout=0.5)


def test_a_dead_recorded_server_is_replaced(
    tmp_path: Path, model: Path, managers: list[LocalServer]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "server.json").write_text(
        json.dumps({"pid": 999999, "port": 9, "model": str(model), "owner": 1})
    )
    server = manager(managers, state, model)
    url = server.ensure()
    assert healthy(url) and server.owned and not url.startswith("http://127.0.0.1:9/")


def test_a_server_that_dies_on_startup_is_an_error_with_its_log(
    tmp_path: Path, model: Path
) -> None:
    # json.tool rejects llama.cpp's options and exits with code 2
    server = LocalServer(tmp_path / "state", model, module="json.tool", startup_timeout=30)
    with pytest.raises(ServerError, match="(?s)exited with code 2.*--model"):
        server.ensure()
    assert server.read_record() is None


def test_a_missing_server_package_says_what_to_install(tmp_path: Path, model: Path) -> None:
    server = LocalServer(tmp_path / "state", model, module="no_such_server_module")
    with pytest.raises(ServerError, match=r"pip install 'qunti-rag\[llm\]'"):
        server.ensure()


def test_missing_model_is_an_error(tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "s", tmp_path / "absent.gguf", module="fake_llama_server")
    with pytest.raises(ServerError, match="rag llm install"):
        server.ensure()


def test_the_server_exits_with_the_process_that_started_it(tmp_path: Path, model: Path) -> None:
    script = (
        "import os, sys\n"
        "from rag.llm.server import LocalServer\n"
        f"s = LocalServer({str(tmp_path / 'state')!r}, {str(model)!r}, module='fake_llama_server')\n"
        "s.ensure()\n"
        "print(s.read_record().pid, flush=True)\n"
        "os._exit(0)  # no stop(), no atexit: as if killed\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert gone(int(done.stdout.split()[0]))


def request() -> AnswerRequest:
    passage = Passage(
        chunk=Chunk("d1#0", "d1", 0, len(TEXT), TEXT, section=""),
        meta=DocMeta(title="讲话", speaker="某人", date="2015-07-06"),
        score=1.0,
    )
    return AnswerRequest(question="群团组织是什么？", passages=[passage])


def test_local_backend_starts_the_server_and_sends_the_local_prompt(
    tmp_path: Path, model: Path, managers: list[LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    last = tmp_path / "last.json"
    monkeypatch.setenv("FAKE_LLAMA_LAST", str(last))
    backend = LocalBackend(manager(managers, tmp_path / "state", model), passage_tokens=500,
                           max_retries=0)  # fmt: skip
    tokens: list[str] = []
    draft = backend.generate(request(), tokens.append)
    backend.close()

    assert draft.text.endswith("[1]。") and "".join(tokens).strip() == draft.text
    sent = json.loads(last.read_text())
    assert sent["cache_prompt"] is True and sent["model"] == "local"
    assert "逐项全部列出" in sent["messages"][0]["content"]  # system_local.txt
    assert not managers[0].owned  # close() stopped it


def test_local_backend_failure_is_a_backend_error(tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "s", tmp_path / "absent.gguf", module="fake_llama_server")
    backend = LocalBackend(server)
    with pytest.raises(BackendError, match="rag llm install"):
        backend.generate(request())
    # no passages: the refusal needs no server at all
    assert backend.generate(AnswerRequest(question="q", passages=[])).refused
    backend.close()


def test_english_questions_are_translated_for_retrieval(
    tmp_path: Path, model: Path, managers: list[LocalServer]
) -> None:
    backend = LocalBackend(manager(managers, tmp_path / "state", model), max_retries=0)
    assert backend.search_query("群团组织是什么？", "zh-hans") == "群团组织是什么？"
    # the fake replies to a prompt without passages with the (Chinese) refusal sentence
    assert backend.search_query("What are mass organisations?", "en") == "资料中未找到相关内容。"
    off = LocalBackend(manager(managers, tmp_path / "state", model), translate=False)
    assert off.search_query("What?", "en") == "What?"
    broken = LocalBackend(LocalServer(tmp_path / "x", tmp_path / "absent.gguf"))
    assert broken.search_query("What?", "en") == "What?"  # failure: keep the question
    for b in (backend, off, broken):
        b.close()


def test_the_api_and_the_cli_accept_the_local_backend(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.schemas import check_backend
    from cli.app import app

    assert check_backend("local") == "local"
    result = CliRunner().invoke(app, ["llm", "status", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "missing: rag llm install" in result.output and "not running" in result.output


def test_the_pipeline_retrieves_with_the_backends_search_query(tmp_path: Path) -> None:
    """A backend's rewritten query (the local one's translation) is what gets searched."""
    from rag.answer.base import AnswerBackend
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    class Translating(AnswerBackend):
        name = "translating"

        def __init__(self, inner: AnswerBackend) -> None:
            self.inner = inner
            self.seen: list[tuple[str, str]] = []

        def search_query(self, query: str, language: str) -> str:
            self.seen.append((query, language))
            return "商丘侨联开展的品牌活动叫什么？"

        def generate(self, request: AnswerRequest, on_token: object = None) -> object:  # type: ignore[override]
            return self.inner.generate(request)

    pipeline = Pipeline(Settings(home=tmp_path, embed_model="hash"))
    pipeline.ingest()
    backend = Translating(pipeline.backend("extractive"))
    pipeline._backends["translating"] = backend
    answer = pipeline.ask("What brand activity did the Shangqiu overseas Chinese federation run?",
                          backend="translating")  # fmt: skip
    assert backend.seen == [
        ("What brand activity did the Shangqiu overseas Chinese federation run?", "en")
    ]
    assert answer.search_query == "商丘侨联开展的品牌活动叫什么？"
    assert any("根在商丘" in p.chunk.text for p in answer.passages)
