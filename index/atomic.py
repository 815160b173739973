"""Crash-safe file writes: temp file in the same directory, fsync, rename, fsync the dir.

A process killed mid-write leaves its temporary file behind (``.<name>.<random>.tmp``);
``remove_temp_files`` deletes them, and must only run while no writer of that directory
is active (the index store calls it under its writer lock).

``checkpoint`` marks the steps of a write. It does nothing unless a crash test has
installed a hook with ``checkpoint_hook``, which can stop the write after any one
step (with an exception, or ``os._exit`` in a child process).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "TEMP_SUFFIX",
    "atomic_write_bytes",
    "atomic_write_json",
    "checkpoint",
    "checkpoint_hook",
    "fsync_dir",
    "fsync_tree",
    "remove_temp_files",
]

TEMP_SUFFIX = ".tmp"


_checkpoint_hooks: list[Callable[[str], None]] = []


def checkpoint(step: str) -> None:
    """A write reached ``step``: call the hooks a crash test installed (normally none)."""
    for hook in list(_checkpoint_hooks):
        hook(step)


@contextmanager
def checkpoint_hook(hook: Callable[[str], None]) -> Iterator[None]:
    """Call ``hook(step)`` at every checkpoint of writes made inside the block."""
    _checkpoint_hooks.append(hook)
    try:
        yield
    finally:
        _checkpoint_hooks.remove(hook)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        checkpoint(f"{path.name}: temporary written")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    checkpoint(f"{path.name}: replaced")
    fsync_dir(path.parent)


def remove_temp_files(directory: Path) -> list[Path]:
    """Delete the temporary files interrupted atomic writes left in ``directory``.

    Only names of the form ``atomic_write_bytes`` uses (``.<name>.<random>.tmp``,
    regular files, not links) are touched. Call it only while nothing else can be
    writing to ``directory``, e.g. under the lock that serialises its writers.
    """
    removed = []
    for path in directory.glob(f".*{TEMP_SUFFIX}"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8"))


def fsync_tree(root: Path) -> None:
    """fsync every file and directory below ``root`` (after writing a generation)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))
