"""Crash safety of an index write, step by step.

A write is interrupted after each of its steps in turn (temporary generation made,
each file written, fsync, rename, pointer temporary written, pointer replaced, each
generation pruned, each leftover removed): once by an exception in this process, once
by ``os._exit`` in a child process (nothing cleaned up, as after kill -9). After every
interruption the store loads the last committed state, and the next write succeeds,
loads its own state and leaves no leftovers behind.

The home the interrupted write starts from already holds what earlier crashes leave:
a temporary generation directory, a renamed but uncommitted ``gen-N`` (the name the
write will want) and a temporary file of the pointer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from index.atomic import checkpoint_hook
from index.store import KEEP_GENERATIONS, IndexStore
from tests.test_store import _state

REPO = Path(__file__).resolve().parents[1]
CRASH_EXIT = 71
CHILD_TIMEOUT_S = 60.0
COMMITTED_DOCS, CRASHED_DOCS, NEXT_DOCS = 3, 4, 1
POINTER_REPLACED = "CURRENT: replaced"

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


def _home_with_history_and_leftovers(home: Path) -> IndexStore:
    """Two committed generations (the current one has COMMITTED_DOCS documents) and
    the debris of crashed writes, including an uncommitted gen-000003."""
    store = IndexStore(home)
    with store.writer():
        store.save(_state(2, tokenizer="bigram"))
        store.save(_state(COMMITTED_DOCS, tokenizer="bigram"))
    for name in (".tmp-gen-000003", "gen-000003"):
        (store.generations / name).mkdir()
        (store.generations / name / "manifest.json").write_text("{half", encoding="utf-8")
    (store.root / ".CURRENT.0dd1ty.tmp").write_text("{", encoding="utf-8")
    return store


def _steps(tmp_path: Path) -> list[str]:
    """Every checkpoint a write from such a home passes, in order."""
    store = _home_with_history_and_leftovers(tmp_path / "record")
    seen: list[str] = []
    with store.writer(), checkpoint_hook(seen.append):
        store.save(_state(CRASHED_DOCS, tokenizer="bigram"))
    assert "generation renamed" in seen and POINTER_REPLACED in seen, seen
    return seen


def _check_recovery(store: IndexStore, step: str, committed_after: bool) -> None:
    """The store loads the last committed state; the next write works and tidies up."""
    loaded = store.load()
    assert loaded is not None, step
    expected = CRASHED_DOCS if committed_after else COMMITTED_DOCS
    assert loaded.manifest.n_documents == expected, f"after a crash at {step!r}"
    previous = loaded.manifest.generation
    with store.writer():
        name = store.save(_state(NEXT_DOCS, tokenizer="bigram"))
    loaded = store.load()
    assert loaded is not None and loaded.manifest.generation == name, step
    assert loaded.manifest.n_documents == NEXT_DOCS, step
    current = int(name.split("-")[1])
    gens = sorted(int(p.name.split("-")[1]) for p in store.generations.glob("gen-*"))
    assert gens[-1] == current and len(gens) <= KEEP_GENERATIONS, (step, gens)
    # what a reader may have loaded just before the flip is still there
    assert (store.generations / previous).is_dir(), f"{previous} pruned after {step!r}"
    assert not list(store.generations.glob(".tmp-*")), step
    assert not list(store.root.glob(".*.tmp")), step


def _crash_at(step: str) -> Callable[[str], None]:
    def hook(reached: str) -> None:
        if reached == step:
            raise Crash(step)

    return hook


def test_the_write_passes_every_step(tmp_path: Path) -> None:
    steps = _steps(tmp_path)
    expected_in_order = [
        "removed .tmp-gen-000003",
        "removed uncommitted gen-000003",
        "temporary generation created",
        "wrote manifest.json",
        "wrote docstore.json",
        "wrote bm25",
        "generation fsynced",
        "generation renamed",
        "generations fsynced",
        "CURRENT: temporary written",
        POINTER_REPLACED,
        "pointer written",
        "pruned gen-000001",
        "pruned",
    ]
    assert [s for s in steps if s in expected_in_order] == expected_in_order
    assert len(steps) == len(set(steps))


def test_an_exception_after_any_step_keeps_the_committed_index(tmp_path: Path) -> None:
    steps = _steps(tmp_path)
    for i, step in enumerate(steps):
        store = _home_with_history_and_leftovers(tmp_path / f"step{i}")
        with (
            pytest.raises(Crash),
            store.writer(),
            checkpoint_hook(_crash_at(step)),
        ):
            store.save(_state(CRASHED_DOCS, tokenizer="bigram"))
        _check_recovery(store, step, committed_after=i >= steps.index(POINTER_REPLACED))


def test_a_kill_after_any_step_keeps_the_committed_index(tmp_path: Path) -> None:
    steps = _steps(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    for i, step in enumerate(steps):
        store = _home_with_history_and_leftovers(tmp_path / f"step{i}")
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(store.home), step],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
        assert child.returncode == CRASH_EXIT, (step, child.stderr[-2000:])
        _check_recovery(store, step, committed_after=i >= steps.index(POINTER_REPLACED))
