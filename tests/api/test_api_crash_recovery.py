"""A real ``rag ingest`` process killed at chosen write steps (``os._exit``, no cleanup):
afterwards ``rag ingest``, ``rag remove`` and API uploads and deletes all still work.

(With the earlier generation-directory store, a kill between the rename of the new
generation and the pointer update made every later write fail and the API answer
uploads and deletes with 500 for ever; the SQLite store rolls such a write back.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from index.store import IndexStore
from tests.api.helpers import CORPUS, UPLOAD_TEXT_BYTES, api_settings
from tests.api.server import REPO, server_env

KILLED = 73
TIMEOUT_S = 60.0

CHILD = f"""
import os, sys
from index.atomic import checkpoint_hook
from cli.app import app

def crash(step):
    if step == sys.argv[1]:
        os._exit({KILLED})

with checkpoint_hook(crash):
    app(["ingest", *sys.argv[2:]])
"""


def _rag(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=server_env(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


@pytest.mark.parametrize("step", ["wrote chunks", "wrote manifest"])
def test_writes_work_after_ingest_is_killed_mid_commit(tmp_path: Path, step: str) -> None:
    home, first, second = tmp_path / "home", tmp_path / "first", tmp_path / "second"
    speeches = sorted(CORPUS.glob("*.txt"))
    for folder, files in ((first, speeches[:2]), (second, speeches[2:3])):
        folder.mkdir()
        for src in files:
            shutil.copy(src, folder)
    assert _rag(home, "ingest", str(first)).returncode == 0
    store = IndexStore(home)
    committed = store.current_generation()

    killed = subprocess.run(
        [sys.executable, "-c", CHILD, step, str(second)],
        cwd=REPO,
        env=server_env(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert killed.returncode == KILLED, killed.stderr[-2000:]
    assert store.current_generation() == committed  # the kill landed before the commit

    again = _rag(home, "ingest", str(second))
    assert again.returncode == 0, again.stderr[-2000:]
    state = store.load()
    assert state is not None and len(state.documents) == 3
    removed = _rag(home, "remove", speeches[0].stem)
    assert removed.returncode == 0, removed.stderr[-2000:]

    with TestClient(create_app(api_settings(home))) as client:
        up = client.post(
            "/v1/documents", files=[("files", ("new.txt", UPLOAD_TEXT_BYTES, "text/plain"))]
        )
        assert up.status_code == 200, up.text
        doc_id = up.json()["added"][0]["doc_id"]
        assert client.delete(f"/v1/documents/{doc_id}").status_code == 200
    assert not list(store.root.glob("*-journal"))
