"""One contract, every implementation: each embedder and each answer backend goes
through the same checks, so a new one (or a rewrite) is held to what the pipeline
relies on rather than to its own tests' idea of it.

Embedders: the hash embedder always; the real model when it is already built (in the
tests' model cache or the user's models dir), skipped otherwise — building it is
``make test``'s job, not this file's. Answer backends: extractive, and openai against
the fake upstream on loopback (tests/fake_llm.py), streaming and not. The ``local``
backend is the openai client against a llama.cpp server it manages; it needs that
server (tests/test_local_llm_e2e.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.answer import BACKENDS, AnswerBackend, AnswerRequest
from rag.answer.extractive import ExtractiveBackend
from rag.answer.openai import OpenAIBackend
from rag.cite import verify
from rag.embed import EMBEDDERS, Embedder, get_embedder
from rag.settings import DEFAULT_EMBED_MODEL, Settings
from rag.types import Chunk, DocMeta, Passage
from tests.conftest import MODEL_CACHE
from tests.fake_llm import FakeLLM

# ------------------------------------------------------------------------- embedders

TEXTS = ["群团组织要保持和增强政治性、先进性、群众性。", "工会要组织开展职工技能大赛。", "", "x"]


def _built_model_dir() -> Path | None:
    """A models dir holding an already built default model (its provenance file is
    written last, so its presence means the build finished)."""
    for models in (MODEL_CACHE, Settings().models_dir):
        if (models / DEFAULT_EMBED_MODEL / "provenance.json").is_file():
            return models
    return None


EMBEDDER_NAMES = [
    *(pytest.param(name, id=name) for name in sorted(EMBEDDERS)),
    pytest.param(DEFAULT_EMBED_MODEL, id=DEFAULT_EMBED_MODEL, marks=pytest.mark.slow),
]


@pytest.fixture(scope="module", params=EMBEDDER_NAMES)
def embedder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    name: str = request.param
    if name in EMBEDDERS:
        return get_embedder(name, models_dir=tmp_path_factory.mktemp("models"), batch_size=3)
    models = _built_model_dir()
    if models is None:
        pytest.skip(f"{name} is not built here (make test builds it into {MODEL_CACHE})")
    return get_embedder(name, models_dir=models, batch_size=3)


def test_embedder_returns_unit_float32_rows_of_its_dim(embedder: Embedder) -> None:
    assert embedder.dim > 0 and embedder.model_id
    for embed in (embedder.embed_queries, embedder.embed_passages):
        vecs = embed(TEXTS)
        assert vecs.shape == (len(TEXTS), embedder.dim) and vecs.dtype == np.float32
        assert np.all(np.isfinite(vecs))
        norms = np.linalg.norm(vecs, axis=1)
        assert np.allclose(norms[norms > 0], 1.0, atol=1e-5)
    assert embedder.embed_queries([]).shape == (0, embedder.dim)


def test_embedder_is_deterministic_and_batch_independent(embedder: Embedder) -> None:
    together = embedder.embed_passages(TEXTS)  # batch_size 3: two batches
    alone = np.vstack([embedder.embed_passages([t]) for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-4)
    assert np.array_equal(embedder.embed_passages(TEXTS), together)


def test_embedder_ranks_a_text_closest_to_itself(embedder: Embedder) -> None:
    texts = TEXTS[:2]
    sims = embedder.embed_passages(texts) @ embedder.embed_passages(texts).T
    assert all(int(np.argmax(row)) == i for i, row in enumerate(sims))


# ------------------------------------------------------------------ answer backends

PASSAGE_TEXTS = [
    "群团组织要保持和增强政治性、先进性、群众性。这是群团工作的根本。",
    "工会要组织开展职工技能大赛。要做好困难职工帮扶工作。",
]
QUESTION = "群团组织要增强哪三性？"
_MARKER = re.compile(r"\[(\d+)\]")


def _passages() -> list[Passage]:
    out = []
    for n, text in enumerate(PASSAGE_TEXTS, start=1):
        chunk = Chunk(f"d{n}#0", f"d{n}", 0, len(text), text, section="一、总体要求")
        meta = DocMeta(title=f"讲话{n}", speaker="魏小东", date="2015-12-17")
        out.append(Passage(chunk=chunk, meta=meta, score=1.0 / n, rank=n))
    return out


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    yield fake
    fake.close()


BackendFactory = Callable[[FakeLLM], AnswerBackend]
BACKEND_FACTORIES: dict[str, BackendFactory] = {
    "extractive": lambda _fake: ExtractiveBackend(),
    "openai-stream": lambda fake: OpenAIBackend(base_url=fake.base_url, stream=True),
    "openai": lambda fake: OpenAIBackend(base_url=fake.base_url, stream=False),
}


@pytest.fixture(params=sorted(BACKEND_FACTORIES))
def backend(request: pytest.FixtureRequest, upstream: FakeLLM) -> Iterator[AnswerBackend]:
    upstream.mode = "ok"
    made = BACKEND_FACTORIES[request.param](upstream)
    yield made
    close = getattr(made, "close", None)
    if close is not None:
        close()


def test_every_backend_but_local_is_under_contract() -> None:
    covered = {name.removesuffix("-stream") for name in BACKEND_FACTORIES}
    assert covered == set(BACKENDS) - {"local"}


def test_backend_answers_with_markers_the_verifier_accepts(backend: AnswerBackend) -> None:
    assert backend.name in BACKENDS
    passages = _passages()
    pieces: list[str] = []
    draft = backend.generate(AnswerRequest(QUESTION, passages), on_token=pieces.append)
    assert draft.text.strip() and not draft.refused
    numbers = [int(n) for n in _MARKER.findall(draft.text)]
    assert numbers and all(1 <= n <= len(passages) for n in numbers)
    checked = verify(draft.text, passages)
    assert checked.citations and not checked.unsupported and checked.dropped == 0
    for c in checked.citations:
        assert c.quote in passages[int(c.doc_id[1:]) - 1].chunk.text
    # what on_token delivered, joined, is the draft (streamed or in one piece)
    assert "".join(pieces) == draft.text
    assert backend.streams or len(pieces) <= 1


def test_backend_search_query_is_text_and_never_raises(backend: AnswerBackend) -> None:
    for query, language in ((QUESTION, "zh-hans"), ("What must mass organisations keep?", "en")):
        assert isinstance(backend.search_query(query, language), str)
