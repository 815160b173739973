"""What a killed upload leaves in the upload folder is removed when the server starts;
uploaded documents the index holds, and files that are not uploads, stay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from api.uploads import UPLOAD_DIR
from tests.api.helpers import UPLOAD_TEXT_BYTES


def test_orphaned_uploads_sidecars_and_temporary_files_are_removed_at_start(
    make_client: Callable[..., TestClient], home: Path
) -> None:
    client = make_client()
    r = client.post("/v1/documents", files={"files": ("kept.txt", UPLOAD_TEXT_BYTES, "text/plain")})
    assert r.status_code == 200, r.text
    root = home / UPLOAD_DIR
    kept = sorted(p.name for p in root.iterdir())
    assert len(kept) == 2  # the file and its sidecar
    orphans = [
        "upload-0123456789abcdef.txt",  # written, never indexed (killed mid-ingest)
        "upload-0123456789abcdef.txt.meta.json",
        "upload-fedcba9876543210.md.meta.json",  # a sidecar whose file never landed
        ".upload-0123456789abcdef.txt.k2j3h4.tmp",  # a temporary file of atomic_write_bytes
    ]
    for name in orphans:
        (root / name).write_bytes(b"left over")
    (root / "README.txt").write_text("not an upload: left alone", encoding="utf-8")

    make_client()  # a server starting over the same data directory
    assert sorted(p.name for p in root.iterdir()) == sorted([*kept, "README.txt"])
