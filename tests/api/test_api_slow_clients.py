"""Slow clients against a real ``rag serve``: connections trickling their headers or a
body are closed (or answered 408) after the configured timeouts, and never lock other
clients out."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.api.server import ServerProcess, start_server

SLOW = 12  # more than the server's concurrency limit below
LIMIT = 8
TIMEOUT_S = 2.0
WAIT_S = TIMEOUT_S + 8.0  # generous: how long a slow connection may live at most


def _connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
    return sock


def _closed_or_answered(sock: socket.socket) -> bytes:
    """What the server sends before closing (b"" when it just closes); raises on a
    connection still open after ``WAIT_S``."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _server(home: Path, tmp_path: Path) -> ServerProcess:
    return start_server(
        home,
        tmp_path,
        ready=False,
        RAG_API_MAX_CONCURRENCY=str(LIMIT),
        RAG_API_HEADER_TIMEOUT=str(TIMEOUT_S),
        RAG_API_BODY_TIMEOUT=str(TIMEOUT_S),
    )


def test_clients_trickling_headers_hold_no_slot_and_are_closed(home: Path, tmp_path: Path) -> None:
    server = _server(home, tmp_path)
    socks: list[socket.socket] = []
    try:
        for _ in range(SLOW):
            sock = _connect(server.base_url)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(sock)
        time.sleep(0.5)
        r = httpx.get(server.base_url + "/healthz", timeout=5)  # while they are all open
        assert r.status_code == 200
        started = time.monotonic()
        for sock in socks:
            sock.sendall(b"a")  # a byte now and then does not extend the timeout
            assert _closed_or_answered(sock) == b""
        assert time.monotonic() - started < WAIT_S
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def test_clients_trickling_a_body_get_408_and_others_are_served(home: Path, tmp_path: Path) -> None:
    server = _server(home, tmp_path)
    socks: list[socket.socket] = []
    try:
        for _ in range(LIMIT - 2):  # some slots left for the probes below
            sock = _connect(server.base_url)
            sock.sendall(
                b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            socks.append(sock)
        time.sleep(0.5)
        assert httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200
        for sock in socks:
            sock.sendall(b" ")
            reply = _closed_or_answered(sock)
            assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
            assert b"did not arrive within" in reply
        r = httpx.post(server.base_url + "/v1/search", json={"query": "工会"}, timeout=10)
        assert r.status_code == 200
    finally:
        for sock in socks:
            sock.close()
        server.stop()
