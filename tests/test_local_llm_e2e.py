"""End to end: `--backend local` with the real Qwen2.5 1.5B model over the bundled speeches.

Three questions from the dev set: one fact, one list, one the speeches do not answer.
The model (1.1 GB) and llama-cpp-python are provisioned by `make test-deps`
(scripts/provision_local_llm.sh); without them this test skips locally and fails under
CI. It costs about 2-3 minutes of two CPU cores.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_server import on_ci

from eval.runner import prepare_pipeline
from rag.llm.models import MODELS
from rag.pipeline import Pipeline
from rag.settings import Settings

REPO = Path(__file__).resolve().parent.parent
MODEL = Path(
    os.environ.get("RAG_TEST_LOCAL_LLM", REPO / ".cache" / "models" / MODELS["1.5b"].file_name)
)
if "RAG_TEST_MODELS" in os.environ and "RAG_TEST_LOCAL_LLM" not in os.environ:
    MODEL = Path(os.environ["RAG_TEST_MODELS"]) / MODELS["1.5b"].file_name

pytestmark = [pytest.mark.slow, pytest.mark.local_llm]


@pytest.fixture(scope="module")
def pipeline(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    missing = [] if MODEL.is_file() else [f"model file {MODEL}"]
    if importlib.util.find_spec("llama_cpp") is None:
        missing.append("llama-cpp-python[server]")
    if missing:
        reason = f"missing {', '.join(missing)}: run `make test-deps`"
        if on_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    settings = Settings(
        home=tmp_path_factory.mktemp("home"), models_home=models_dir, local_model=str(MODEL)
    )
    p, _ = prepare_pipeline(settings, cache_root=tmp_path_factory.mktemp("eval"))
    try:
        yield p
    finally:
        p.backend("local").close()  # stops the server it started


def test_fact_list_and_unanswerable(pipeline: Pipeline) -> None:
    fact = pipeline.ask("商丘侨联开展的品牌活动叫什么？", backend="local")
    assert not fact.degraded, fact.notice
    assert fact.backend == "local" and not fact.refused
    assert "根在商丘" in fact.answer and fact.citations

    items = pipeline.ask("魏小东讲话强调要保持和增强群团组织的哪“三性”？", backend="local")
    assert not items.degraded, items.notice
    assert all(w in items.answer for w in ("政治性", "先进性", "群众性")), items.answer
    assert items.citations

    none = pipeline.ask("全国总工会2023年的会员总数是多少？", backend="local")
    assert not none.degraded, none.notice
    assert none.refused, none.answer
