"""Crash safety of an index write, step by step.

A write is interrupted after each of its steps in turn (transaction begun, replaced
documents removed, documents, chunks and manifest written, committed, log truncated):
once by an exception in this process, once by ``os._exit`` in a child process
(nothing cleaned up, as after kill -9). After every interruption the store loads the
last committed state, and the next write succeeds and loads its own state.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from index.atomic import checkpoint_hook
from index.store import IndexStore
from tests.test_store import _state

REPO = Path(__file__).resolve().parents[1]
CRASH_EXIT = 71
CHILD_TIMEOUT_S = 60.0
COMMITTED_DOCS, CRASHED_DOCS, NEXT_DOCS = 3, 4, 1
COMMITTED = "committed"

CHILD = f"""
import os, sys
from pathlib import Path
from index.atomic import checkpoint_hook
from index.store import IndexStore
from tests.test_store import _state

home, target = Path(sys.argv[1]), sys.argv[2]

def crash(step):
    if step == target:
        os._exit({CRASH_EXIT})

store = IndexStore(home)
state = _state({CRASHED_DOCS}, tokenizer="bigram")
with store.writer(), checkpoint_hook(crash):
    store.save(state)
sys.exit("the write finished without reaching " + repr(target))
"""


class Crash(Exception):
    pass


def _home_with_history(home: Path) -> IndexStore:
    """Two committed writes; the current state has COMMITTED_DOCS documents."""
    store = IndexStore(home)
    with store.writer():
        store.save(_state(2, tokenizer="bigram"))
        store.save(_state(COMMITTED_DOCS, tokenizer="bigram"))
    return store


def _steps(tmp_path: Path) -> list[str]:
    """Every checkpoint a write passes, in order."""
    store = _home_with_history(tmp_path / "record")
    seen: list[str] = []
    with store.writer(), checkpoint_hook(seen.append):
        store.save(_state(CRASHED_DOCS, tokenizer="bigram"))
    assert COMMITTED in seen, seen
    return seen


def _check_recovery(store: IndexStore, step: str, committed_after: bool) -> None:
    """The store loads the last committed state; the next write works."""
    loaded = store.load()
    assert loaded is not None, step
    expected = CRASHED_DOCS if committed_after else COMMITTED_DOCS
    assert loaded.manifest.n_documents == expected, f"after a crash at {step!r}"
    assert len(loaded.documents) == expected and len(loaded.chunks) == 2 * expected, step
    assert len(loaded.vectors) == loaded.vector_index.size == len(loaded.chunks), step  # type: ignore[union-attr]
    previous = loaded.manifest.generation
    with store.writer():
        name = store.save(_state(NEXT_DOCS, tokenizer="bigram"))
    assert name > previous, step
    loaded = store.load()
    assert loaded is not None and loaded.manifest.generation == name, step
    assert loaded.manifest.n_documents == NEXT_DOCS == len(loaded.documents), step
    assert not list(store.root.glob("*-journal")), step


def _crash_at(step: str) -> Callable[[str], None]:
    def hook(reached: str) -> None:
        if reached == step:
            raise Crash(step)

    return hook


def test_the_write_passes_every_step(tmp_path: Path) -> None:
    steps = _steps(tmp_path)
    assert steps == [
        "transaction begun",
        "removed replaced documents",
        "wrote documents",
        "wrote chunks",
        "wrote manifest",
        COMMITTED,
        "log truncated",
    ]


def test_an_exception_after_any_step_keeps_the_committed_index(tmp_path: Path) -> None:
    steps = _steps(tmp_path)
    for i, step in enumerate(steps):
        store = _home_with_history(tmp_path / f"step{i}")
        with (
            pytest.raises(Crash),
            store.writer(),
            checkpoint_hook(_crash_at(step)),
        ):
            store.save(_state(CRASHED_DOCS, tokenizer="bigram"))
        _check_recovery(store, step, committed_after=i >= steps.index(COMMITTED))


def test_a_kill_after_any_step_keeps_the_committed_index(tmp_path: Path) -> None:
    steps = _steps(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    for i, step in enumerate(steps):
        store = _home_with_history(tmp_path / f"step{i}")
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(store.home), step],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
        assert child.returncode == CRASH_EXIT, (step, child.stderr[-2000:])
        _check_recovery(store, step, committed_after=i >= steps.index(COMMITTED))
