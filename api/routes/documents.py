"""``/v1/documents``: list the indexed speeches, upload more, delete one.

Uploads are indexed incrementally on a fresh pipeline while queries keep being served
from the current generation; the new generation is swapped in when it is complete
(see ``api.service``). Files land under ``<home>/uploads`` with server-chosen names
(see ``api.uploads``).
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Path, UploadFile

from api.deps import ServedPipelineDep, ServiceDep, SettingsDep
from api.errors import ApiError, documented
from api.schemas import DeleteOut, DocumentsOut, UploadOut
from api.service import Service
from api.uploads import (
    ALLOWED_SUFFIXES,
    UPLOAD_DIR,
    StoredUpload,
    UnsupportedType,
    check_type,
    clean_filename,
    discard,
    original_filename,
    store_upload,
    upload_root,
)
from rag.ingest import IngestReport
from rag.settings import Settings

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["documents"])

DocId = Annotated[str, Path(min_length=1, max_length=200, description="See GET /v1/documents.")]


@router.get("/documents", response_model=DocumentsOut, responses=documented(503))
def list_documents(pipeline: ServedPipelineDep, settings: SettingsDep) -> dict[str, Any]:
    root = FsPath(settings.home) / UPLOAD_DIR
    rows = []
    total_chunks = 0
    for doc, n in pipeline.documents():
        uploaded_as = original_filename(doc, root)
        rows.append(
            {
                "doc_id": doc.doc_id,
                **doc.meta.to_dict(),
                "chunks": n,
                "filename": uploaded_as or FsPath(doc.source).name,
                "uploaded": uploaded_as is not None,
            }
        )
        total_chunks += n
    return {
        "documents": rows,
        "total_documents": len(rows),
        "total_chunks": total_chunks,
        "generation": pipeline.generation,
    }


@router.post(
    "/documents",
    response_model=UploadOut,
    responses=documented(413, 415, 422, 503),
    description="Upload speeches (" + ", ".join(sorted(ALLOWED_SUFFIXES)) + ") as multipart "
    "`files`. A file with a name uploaded before replaces that document.",
)
def upload_documents(
    files: Annotated[list[UploadFile], File(min_length=1, description="One or more speech files.")],
    service: ServiceDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    if len(files) > settings.api_max_upload_files:
        raise ApiError(
            422,
            f"{len(files)} files in one upload; the limit is {settings.api_max_upload_files}",
            param="files",
        )
    accepted: list[tuple[str, bytes]] = []
    rejected: list[dict[str, str]] = []
    for f in files:
        name = clean_filename(f.filename)
        try:
            check_type(name)
        except UnsupportedType as exc:
            rejected.append({"filename": name, "reason": str(exc)})
            continue
        data = f.file.read(settings.api_max_upload_bytes + 1)
        if len(data) > settings.api_max_upload_bytes:
            raise ApiError(
                413,
                f"{name} is larger than the {settings.api_max_upload_bytes}-byte "
                "limit for one file",
                param="files",
            )
        accepted.append((name, data))
    if not accepted:
        reasons = "; ".join(f"{r['filename']}: {r['reason']}" for r in rejected)
        raise ApiError(415, reasons or "no files", param="files")
    stored, report = _ingest(service, settings, accepted)
    return _upload_result(stored, report, rejected)


def _ingest(
    service: Service, settings: Settings, files: list[tuple[str, bytes]]
) -> tuple[list[StoredUpload], IngestReport]:
    """Store and index under the write lock; files that did not make it in are removed."""
    with service.writing() as pipeline:
        root = upload_root(settings.home)
        stored = [store_upload(root, name, data) for name, data in files]
        try:
            report = pipeline.ingest([s.path for s in stored])
        except BaseException:
            _forget_unindexed(service, stored, root)
            raise
        indexed = set(report.added + report.updated + report.unchanged)
        for s in stored:
            if s.doc_id not in indexed:  # the loader skipped it (empty, unreadable, ...)
                discard(str(s.path), root)
    return stored, report


def _forget_unindexed(service: Service, stored: list[StoredUpload], root: FsPath) -> None:
    try:
        indexed = set(service.current().state().documents)
    except Exception:  # nothing served yet: nothing of ours can be indexed
        indexed = set()
    for s in stored:
        if s.doc_id not in indexed:
            discard(str(s.path), root)


def _upload_result(
    stored: list[StoredUpload], report: IngestReport, rejected: list[dict[str, str]]
) -> dict[str, Any]:
    by_id = {s.doc_id: s.filename for s in stored}
    by_path = {str(s.path): s.filename for s in stored}

    def named(ids: list[str]) -> list[dict[str, str]]:
        return [{"doc_id": d, "filename": by_id.get(d, d)} for d in ids]

    skipped = rejected + [
        {"filename": by_path.get(s.path, FsPath(s.path).name), "reason": s.reason}
        for s in report.skipped
    ]
    return {
        "added": named(report.added),
        "updated": named(report.updated),
        "unchanged": named(report.unchanged),
        "skipped": skipped,
        "generation": report.generation,
        "total_documents": report.total_documents,
        "total_chunks": report.total_chunks,
    }


@router.delete("/documents/{doc_id}", response_model=DeleteOut, responses=documented(404, 503))
def delete_document(doc_id: DocId, service: ServiceDep, settings: SettingsDep) -> dict[str, Any]:
    try:
        known = service.current().state().documents.get(doc_id)
    except Exception:  # nothing served: the removal below still decides
        known = None
    with service.writing() as pipeline:
        if not pipeline.remove([doc_id]):
            raise ApiError(
                404,
                f"no document {doc_id!r} in the index",
                code="document_not_found",
                param="doc_id",
            )
        generation = pipeline.generation
    if known is not None:
        discard(known.source, FsPath(settings.home) / UPLOAD_DIR)
    return {"deleted": doc_id, "generation": generation}
