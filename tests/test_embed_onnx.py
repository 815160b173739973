"""The int8 ONNX embedding backend: how it is chosen, and that it matches torch.

The tests that run the model need onnxruntime (extra ``onnx``) and the ONNX model in
the test model cache; `make test-deps` builds it (`rag model install --onnx`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import rag.embed
from rag.embed import get_embedder, onnx, resolve_backend
from rag.embed.onnx import (
    INSTALL_HINT,
    OnnxUnavailableError,
    onnx_model_dir,
    onnx_runtime_available,
    verify_texts,
)
from rag.embed.provision import DEFAULT_MODEL_NAME, ProvisionError, load_provenance

# ------------------------------------------------------------------ fast: choosing a backend


def test_torch_is_chosen_when_asked(tmp_path: Path) -> None:
    assert resolve_backend(DEFAULT_MODEL_NAME, "torch", tmp_path) == "torch"


def test_auto_falls_back_to_torch_without_a_built_onnx_model(tmp_path: Path) -> None:
    assert resolve_backend(DEFAULT_MODEL_NAME, "auto", tmp_path) == "torch"


def test_auto_uses_torch_for_other_models_even_with_onnx_built(tmp_path: Path) -> None:
    target = onnx_model_dir(tmp_path)
    target.mkdir()
    (target / "provenance.json").write_text("{}", encoding="utf-8")
    assert resolve_backend("some/other-model", "auto", tmp_path) == "torch"


@pytest.mark.parametrize("prefers", [False, True])
def test_auto_takes_onnx_once_built_only_when_preferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefers: bool
) -> None:
    monkeypatch.setattr(rag.embed, "AUTO_PREFERS_ONNX", prefers)
    target = onnx_model_dir(tmp_path)
    target.mkdir()
    (target / "provenance.json").write_text("{}", encoding="utf-8")
    expected = "onnx" if prefers and onnx_runtime_available() else "torch"
    assert resolve_backend(DEFAULT_MODEL_NAME, " AUTO ", tmp_path) == expected


def test_auto_is_torch_by_default_until_onnx_holds_the_accuracy_bar() -> None:
    assert rag.embed.AUTO_PREFERS_ONNX is False


def test_unknown_backend_is_refused_listing_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'auto', 'torch', 'onnx'"):
        resolve_backend(DEFAULT_MODEL_NAME, "tensorrt", tmp_path)


def test_onnx_serves_the_default_model_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RAG_EMBED_BACKEND=torch"):
        resolve_backend("/some/model/dir", "onnx", tmp_path)


def test_onnx_without_the_extra_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx, "onnx_runtime_available", lambda: False)
    with pytest.raises(OnnxUnavailableError, match=r"qunti-rag\[onnx\]"):
        get_embedder(DEFAULT_MODEL_NAME, models_dir=tmp_path, backend="onnx")
    with pytest.raises(OnnxUnavailableError, match=r"qunti-rag\[onnx\]"):
        onnx.ensure_onnx_model(tmp_path)
    assert "qunti-rag[onnx]" in INSTALL_HINT


def test_verify_texts_span_short_sentences_to_long_paragraphs() -> None:
    texts = verify_texts()
    assert len(texts) == onnx.VERIFY_COUNT >= 200
    assert len(set(texts)) == len(texts)
    lengths = [len(t) for t in texts]
    assert min(lengths) < 20 and max(lengths) > 300
    assert texts == verify_texts()  # the same sample every time


# ------------------------------------------------------------------ the real model

needs_runtime = pytest.mark.skipif(
    not onnx_runtime_available(),
    reason=f"onnxruntime/onnx not installed ({INSTALL_HINT})",
)


@pytest.fixture(scope="module")
def onnx_models(models_dir: Path) -> Path:
    if load_provenance(onnx_model_dir(models_dir)) is None:
        pytest.skip(
            f"no int8 ONNX model in {models_dir}: run "
            f"`RAG_MODELS_HOME={models_dir} rag model install --onnx` (make test-deps does)"
        )
    return models_dir


TEXTS = [
    "如何保持和增强群团组织的政治性、先进性、群众性？",
    "工会要维护好职工的合法权益，办好职工群众的操心事、烦心事。",
    "How do trade unions protect the lawful rights of workers?",
    "共青团要坚持为党育人，抓好青年思想政治引领，在乡村振兴、科技创新、基层治理中组织青年建功。"
    * 3,
]


@pytest.mark.slow
@needs_runtime
def test_onnx_vectors_match_torch(onnx_models: Path) -> None:
    torch_embedder = get_embedder(DEFAULT_MODEL_NAME, models_dir=onnx_models, backend="torch")
    onnx_embedder = get_embedder(DEFAULT_MODEL_NAME, models_dir=onnx_models, backend="onnx")
    assert type(onnx_embedder).__name__ == "OnnxEmbedder"
    # the same vector space, so an index built with one is searched with the other
    assert onnx_embedder.model_id == torch_embedder.model_id
    assert onnx_embedder.dim == torch_embedder.dim == 384
    for method in ("embed_queries", "embed_passages"):
        ours = getattr(onnx_embedder, method)(TEXTS)
        ref = getattr(torch_embedder, method)(TEXTS)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
        assert float(np.min(np.sum(ours * ref, axis=1))) >= onnx.MIN_COSINE
    auto = get_embedder(DEFAULT_MODEL_NAME, models_dir=onnx_models)
    assert type(auto).__name__ == "SentenceTransformerEmbedder"  # torch stays the default


@pytest.mark.slow
@needs_runtime
def test_onnx_order_and_batching_barely_change_vectors(onnx_models: Path) -> None:
    one = get_embedder(DEFAULT_MODEL_NAME, models_dir=onnx_models, backend="onnx", batch_size=1)
    many = get_embedder(DEFAULT_MODEL_NAME, models_dir=onnx_models, backend="onnx", batch_size=3)
    a = one.embed_passages(TEXTS)
    b = many.embed_passages(TEXTS[::-1])[::-1]
    # activations are quantised with one scale per batch, so a text's vector depends a
    # little on its batch mates (not on their order: rows are restored exactly)
    assert float(np.min(np.sum(a * b, axis=1))) >= 0.99
    np.testing.assert_array_equal(many.embed_passages(TEXTS), many.embed_passages(TEXTS))


@pytest.mark.slow
@needs_runtime
def test_a_model_that_fails_the_check_is_not_installed(
    onnx_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    shutil.copytree(onnx_models / DEFAULT_MODEL_NAME, models / DEFAULT_MODEL_NAME)
    built = onnx_model_dir(onnx_models) / "model.onnx"

    def fake_export(_src: Path, out_file: Path, *, work: Path) -> None:
        shutil.copy2(built, out_file)  # the real int8 model, without the minutes of export

    monkeypatch.setattr(onnx, "export_int8", fake_export)
    with pytest.raises(ProvisionError, match="nothing was installed"):
        onnx.ensure_onnx_model(models, texts=TEXTS, min_cosine=1.01)
    assert not onnx_model_dir(models).exists()
    assert [p.name for p in models.iterdir() if not p.name.startswith(".")] == [DEFAULT_MODEL_NAME]
    # with an attainable bound the same model is installed, provenance last
    path = onnx.ensure_onnx_model(models, texts=TEXTS)
    provenance = load_provenance(path)
    assert provenance is not None and provenance["min_cosine_vs_fp32"] >= onnx.MIN_COSINE
    onnx_embedder = get_embedder(DEFAULT_MODEL_NAME, models_dir=models, backend="onnx")
    assert onnx_embedder.embed_queries(TEXTS).shape == (4, 384)
