"""Every endpoint through TestClient: contracts, documents, errors, probes and metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.uploads import UPLOAD_DIR
from rag.pipeline import MAX_QUERY_CHARS, Pipeline
from tests.api.helpers import CORPUS, QUESTION, UNIQUE, UPLOAD_TEXT, api_settings, sse_events

PASSAGE_KEYS = {"text", "doc_id", "title", "speaker", "date", "section", "start", "end", "score"}
ANSWER_KEYS = {
    "question",
    "answer",
    "refused",
    "degraded",
    "citations",
    "passages",
    "backend",
    "notice",
    "unsupported",
    "search_query",
}


def doc_text(client: TestClient, doc_id: str) -> str:
    """The cleaned text of a document in the generation the app serves."""
    service = client.app.state.service  # type: ignore[attr-defined]
    text: str = service.current().state().documents[doc_id].text
    return text


# --------------------------------------------------------------------------- search
def test_search_returns_passages_in_the_contract_shape(client: TestClient) -> None:
    r = client.post("/v1/search", json={"query": QUESTION, "top_k": 3})
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 3
    for p in results:
        assert set(p) == PASSAGE_KEYS
        assert doc_text(client, p["doc_id"])[p["start"] : p["end"]] == p["text"]
    assert results[0]["speaker"] == "苏宁"
    assert r.headers["X-Index-Generation"] == client.get("/readyz").json()["generation"]


def test_search_filters_narrow_the_results(client: TestClient) -> None:
    body = {"query": "工会", "top_k": 10, "filters": {"speaker": "苏宁"}}
    results = client.post("/v1/search", json=body).json()["results"]
    assert results and all("苏宁" in p["speaker"] for p in results)
    some_doc = results[0]["doc_id"]
    body = {"query": "工会", "top_k": 10, "filters": {"doc_ids": [some_doc]}}
    assert {p["doc_id"] for p in client.post("/v1/search", json=body).json()["results"]} == {
        some_doc
    }
    body = {"query": "工会", "filters": {"date_from": "2099"}}
    assert client.post("/v1/search", json=body).json()["results"] == []


def test_search_default_top_k_comes_from_settings(make_client: Callable[..., TestClient]) -> None:
    client = make_client(top_k=2)
    assert len(client.post("/v1/search", json={"query": "工会"}).json()["results"]) == 2


# --------------------------------------------------------------------------- ask
def test_ask_returns_the_answer_object_with_verbatim_citations(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200
    answer = r.json()
    assert set(answer) >= ANSWER_KEYS
    assert not answer["refused"] and answer["citations"]
    assert "为什么、干什么、怎么干" in answer["answer"]
    for c in answer["citations"]:
        assert doc_text(client, c["doc_id"])[c["start"] : c["end"]] == c["quote"]
    assert r.headers["X-Index-Generation"].startswith("gen-")


def test_ask_refuses_what_the_speeches_do_not_answer(client: TestClient) -> None:
    answer = client.post("/v1/ask", json={"question": "2030年火星基地的预算是多少？"}).json()
    assert answer["refused"] is True
    assert answer["citations"] == []


def test_ask_stream_sends_tokens_then_the_same_answer(client: TestClient) -> None:
    plain = client.post("/v1/ask", json={"question": QUESTION}).json()
    r = client.post("/v1/ask", json={"question": QUESTION, "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["X-Index-Generation"].startswith("gen-")
    events = sse_events(r.text)
    names = [name for name, _ in events]
    assert names[-1] == "answer" and set(names[:-1]) <= {"token"} and "token" in names
    final = json.loads(events[-1][1])
    assert final["answer"] == plain["answer"]
    assert final["citations"] == plain["citations"]


def test_ask_uses_history_to_resolve_a_follow_up(client: TestClient) -> None:
    history = [
        {"role": "user", "content": "工会开展了哪些品牌活动？"},
        {"role": "assistant", "content": "……"},
    ]
    answer = client.post("/v1/ask", json={"question": "那妇联呢？", "history": history}).json()
    assert "妇联" in answer["search_query"] and "品牌活动" in answer["search_query"]


def test_ask_answers_in_the_question_script(client: TestClient) -> None:
    answer = client.post("/v1/ask", json={"question": "蘇寧講話主要回答了哪三個問題？"}).json()
    assert not answer["refused"]
    assert "三點意見" in answer["answer"]


# --------------------------------------------------------------------------- documents
def test_documents_lists_metadata_and_chunk_counts(client: TestClient) -> None:
    r = client.get("/v1/documents")
    assert r.status_code == 200
    body = r.json()
    ready = client.get("/readyz").json()
    assert body["total_documents"] == ready["documents"] == len(list(CORPUS.glob("*.txt")))
    assert body["total_chunks"] == ready["chunks"] == sum(d["chunks"] for d in body["documents"])
    titles = {d["title"] for d in body["documents"]}
    assert any("苏宁" in t for t in titles)
    assert all(not d["uploaded"] and d["filename"].endswith(".txt") for d in body["documents"])
    assert body["generation"] == r.headers["X-Index-Generation"]


def upload(client: TestClient, *files: tuple[str, bytes]) -> dict[str, Any]:
    r = client.post(
        "/v1/documents", files=[("files", (n, d, "application/octet-stream")) for n, d in files]
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_upload_search_and_delete_a_document(client: TestClient, home: Path) -> None:
    before = client.get("/readyz").json()
    result = upload(client, ("港口讲话.txt", UPLOAD_TEXT.encode("utf-8")))
    assert [a["filename"] for a in result["added"]] == ["港口讲话.txt"]
    doc_id = result["added"][0]["doc_id"]
    assert result["total_documents"] == before["documents"] + 1
    assert result["generation"] != before["generation"]

    r = client.post("/v1/search", json={"query": UNIQUE, "top_k": 1})
    assert r.headers["X-Index-Generation"] == result["generation"]
    assert r.json()["results"][0]["doc_id"] == doc_id
    listed = {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert listed[doc_id]["uploaded"] and listed[doc_id]["filename"] == "港口讲话.txt"
    stored = list((home / UPLOAD_DIR).iterdir())
    assert stored and all(p.name.startswith(doc_id) for p in stored)

    r = client.delete(f"/v1/documents/{doc_id}")
    assert r.status_code == 200 and r.json()["deleted"] == doc_id
    assert r.json()["generation"] == client.get("/readyz").json()["generation"]
    results = client.post("/v1/search", json={"query": UNIQUE, "top_k": 5}).json()["results"]
    assert doc_id not in {p["doc_id"] for p in results}
    assert list((home / UPLOAD_DIR).iterdir()) == []
    assert client.delete(f"/v1/documents/{doc_id}").status_code == 404


def test_reupload_updates_or_leaves_unchanged(client: TestClient) -> None:
    first = upload(client, ("a.txt", UPLOAD_TEXT.encode()))
    same = upload(client, ("a.txt", UPLOAD_TEXT.encode()))
    assert same["unchanged"] == first["added"] and not same["added"] and not same["updated"]
    assert same["generation"] == first["generation"]
    edited = upload(client, ("a.txt", (UPLOAD_TEXT + "再补充一句话。\n").encode()))
    assert edited["updated"] == first["added"]
    assert edited["total_documents"] == first["total_documents"]


def test_upload_reports_skipped_files_with_reasons(client: TestClient) -> None:
    result = upload(
        client,
        ("ok.md", UPLOAD_TEXT.encode()),
        ("empty.txt", b"   \n"),
        ("tool.exe", b"MZ\x90\x00"),
    )
    assert [a["filename"] for a in result["added"]] == ["ok.md"]
    reasons = {s["filename"]: s["reason"] for s in result["skipped"]}
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert "empty" in reasons["empty.txt"]


def test_upload_of_only_unsupported_types_is_415(client: TestClient) -> None:
    r = client.post(
        "/v1/documents", files=[("files", ("x.exe", b"MZ", "application/x-msdownload"))]
    )
    assert r.status_code == 415
    assert ".exe" in r.json()["error"]["message"]


def test_upload_without_files_is_422(client: TestClient) -> None:
    r = client.post("/v1/documents", data={"note": "no files"})
    assert r.status_code == 422
    assert r.json()["error"]["param"] == "files"


def test_upload_file_over_the_cap_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_max_upload_bytes=100)
    r = client.post("/v1/documents", files=[("files", ("big.txt", "长" * 200, "text/plain"))])
    assert r.status_code == 413
    assert "big.txt" in r.json()["error"]["message"]


def test_upload_request_over_the_total_cap_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_max_upload_total_bytes=20_000)
    files = [("files", (f"{i}.txt", "长" * 5_000, "text/plain")) for i in range(3)]  # 45 kB
    r = client.post("/v1/documents", files=files)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"


def test_too_many_files_in_one_upload_is_422(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_max_upload_files=2)
    files = [("files", (f"{i}.txt", UPLOAD_TEXT, "text/plain")) for i in range(3)]
    r = client.post("/v1/documents", files=files)
    assert r.status_code == 422
    assert "limit is 2" in r.json()["error"]["message"]


def test_delete_unknown_document_is_404(client: TestClient) -> None:
    r = client.delete("/v1/documents/no-such-doc")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "document_not_found"


def test_a_generation_written_by_another_process_is_served(
    make_client: Callable[..., TestClient], home: Path, tmp_path: Path
) -> None:
    client = make_client(api_reload_interval=0.1)
    before = client.get("/readyz").json()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "extra.txt").write_text(UPLOAD_TEXT, encoding="utf-8")
    Pipeline(api_settings(home)).ingest([tmp_path / "new"])  # as `rag ingest` would
    deadline = time.monotonic() + 10
    while client.get("/readyz").json()["generation"] == before["generation"]:
        assert time.monotonic() < deadline, "the new generation was not picked up"
        time.sleep(0.05)
    r = client.post("/v1/search", json={"query": UNIQUE, "top_k": 1})
    assert r.json()["results"][0]["doc_id"] == "extra"
    assert client.get("/readyz").json()["documents"] == before["documents"] + 1


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/v1/ask", {"question": ""}, "empty"),
        ("/v1/ask", {"question": "   "}, "empty"),
        ("/v1/ask", {"question": "问" * (MAX_QUERY_CHARS + 1)}, f"limit is {MAX_QUERY_CHARS}"),
        ("/v1/ask", {"question": QUESTION, "backend": "gpt-9"}, "unknown answer backend"),
        ("/v1/ask", {"question": QUESTION, "top_k": 0}, "top_k"),
        ("/v1/ask", {"question": QUESTION, "top_k": "five"}, "top_k"),
        ("/v1/ask", {"question": 42}, "question"),
        (
            "/v1/ask",
            {"question": QUESTION, "history": [{"role": "system", "content": "x"}]},
            "history",
        ),
        ("/v1/ask", {"question": QUESTION, "surprise": 1}, "surprise"),
        ("/v1/ask", {}, "question"),
        ("/v1/ask", [QUESTION], "JSON object"),
        ("/v1/search", {"query": QUESTION, "filters": {"date_from": "last year"}}, "date_from"),
        ("/v1/search", {"query": QUESTION, "retriever": "magic"}, "unknown retriever"),
    ],
)
def test_bad_input_is_422_with_a_clear_message(
    client: TestClient, path: str, body: object, needle: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert needle in error["message"]


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post(
        "/v1/search", content=b'{"query": "x",', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert "not valid JSON" in r.json()["error"]["message"]


def test_unknown_route_and_method_are_json_errors(client: TestClient) -> None:
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = client.get("/v1/search")
    assert r.status_code == 405 and "error" in r.json()


def test_without_an_index_queries_are_503_with_a_hint(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(home_dir=tmp_path / "empty")
    assert client.get("/healthz").status_code == 200
    for r in (
        client.get("/readyz"),
        client.post("/v1/search", json={"query": "工会"}),
        client.post("/v1/ask", json={"question": "工会"}),
        client.get("/v1/documents"),
    ):
        assert r.status_code == 503
        assert "rag ingest" in r.json()["error"]["message"]
        assert r.headers["Retry-After"]
    # The first upload creates the index and the server becomes ready.
    result = upload(client, ("first.txt", UPLOAD_TEXT.encode()))
    assert result["total_documents"] == 1
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/search", json={"query": UNIQUE}).json()["results"]


def test_missing_model_makes_the_server_unready_not_dead(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(embed_model=str(tmp_path / "no-model-here"))
    assert client.get("/healthz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 503
    assert "rag model install" in r.json()["error"]["message"]


# --------------------------------------------------------------------------- models, probes
def test_models_lists_one_id_per_backend(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert {m["id"] for m in body["data"]} == {
        "qunti-rag",
        "qunti-rag-extractive",
        "qunti-rag-openai",
        "qunti-rag-local",
    }


def test_metrics_count_requests_timings_and_index_size(client: TestClient) -> None:
    client.post("/v1/search", json={"query": "工会"})
    client.post("/v1/ask", json={"question": QUESTION})
    text = client.get("/metrics").text
    assert 'rag_http_requests_total{method="POST",route="/v1/search",status="200"} 1.0' in text
    assert 'rag_http_request_duration_seconds_count{method="POST",route="/v1/ask"} 1.0' in text
    assert 'rag_retrieval_seconds_count{endpoint="search"} 1.0' in text
    assert 'rag_answer_seconds_count{backend="extractive"} 1.0' in text
    ready = client.get("/readyz").json()
    assert f"rag_index_chunks {float(ready['chunks'])}" in text
    assert f"rag_index_documents {float(ready['documents'])}" in text


def test_request_ids_are_echoed_or_generated(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert r.headers["X-Request-ID"] == "trace-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert generated.headers["X-Request-ID"] != "bad id\nwith newline"
    assert len(generated.headers["X-Request-ID"]) == 32
    r = client.post("/v1/ask", json={"question": ""})
    assert r.headers["X-Request-ID"]


def test_openapi_documents_the_contracts(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v1/search",
        "/v1/ask",
        "/v1/chat/completions",
        "/v1/models",
        "/v1/documents",
        "/v1/documents/{doc_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
    ask = paths["/v1/ask"]["post"]["responses"]
    assert "text/event-stream" in ask["200"]["content"]
    assert ask["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
