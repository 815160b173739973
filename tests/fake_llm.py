"""A tiny OpenAI-compatible upstream on loopback whose behaviour each test chooses.

It answers ``/v1/chat/completions`` with the sentence of passage [1] that shares most
character pairs with the question, cited as ``[1]`` (what a well-behaved model writes,
and what the pipeline's citation check accepts), streamed in pieces of ``piece_chars``
characters with ``delay`` seconds between them, or in one reply when not streaming.

Modes: ``ok``; ``429`` and ``500`` (error statuses; ``down`` is ``500``); ``slow``
(silent for longer than the client's read timeout); ``cut`` (a streamed reply whose
connection drops mid-answer); ``garbage`` (200 with a body that is not JSON);
``keepalive`` (a 200 event stream of nothing but ``: keep-alive`` comments, one every
``tick`` seconds); ``trickle`` (a 200 event stream of one byte every ``tick`` seconds,
never a line end). The last two go on for ``STALL_S`` seconds at most.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "FakeLLM",
    "MODES",
    "PIECE_DELAY_S",
    "STALL_S",
    "TICK_S",
    "closed_port",
    "cited_sentence",
]

MODES = ("ok", "429", "500", "down", "slow", "cut", "garbage", "keepalive", "trickle")
SLOW_S = 3.0  # longer than the read timeout the tests configure
STALL_S = 60.0  # how long keepalive and trickle go on (a client that leaves ends them)
TICK_S = 0.2  # between keep-alives or trickled bytes: shorter than any read timeout used
PIECE_DELAY_S = 0.06  # the browser tests' pace: slow enough to see an answer grow
_FIRST_PASSAGE = re.compile(r"^\[1\] [^\n]*\n(.+?)(?:\n\n|\Z)", re.M | re.S)
_QUESTION = re.compile(r"问题：(.+)$", re.M)
_SENTENCE_END = re.compile(r"(?<=[。！？])")


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def cited_sentence(prompt: str) -> str:
    """The sentence of passage [1] sharing most character pairs with the question, cited."""
    passage, question = _FIRST_PASSAGE.search(prompt), _QUESTION.search(prompt)
    if passage is None or question is None:
        return "资料中未找到相关内容。"
    wanted = _bigrams(question.group(1))
    sentences = [s.strip() for s in _SENTENCE_END.split(passage.group(1)) if s.strip()]
    best = max(sentences, key=lambda s: len(_bigrams(s) & wanted))
    return best.rstrip("。！？") + "[1]。"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(
        self, status: int, obj: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests += 1
        mode = self.server.mode
        if mode == "429":
            self._json(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        elif mode in ("500", "down"):
            self._json(500, {"error": {"message": "upstream is down"}})
        elif mode == "slow":
            time.sleep(SLOW_S)
            self._json(200, {"choices": [{"message": {"content": "too late"}}]})
        elif mode == "garbage":
            self._send(200, b"<html>not json</html>")
        elif mode in ("keepalive", "trickle"):
            self._stall(b": keep-alive\n\n" if mode == "keepalive" else b"x")
        else:
            self._answer(request, cut=mode == "cut")

    def _stall(self, unit: bytes) -> None:
        """A 200 event stream that sends ``unit`` every tick and never an answer."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        ends = time.monotonic() + STALL_S
        try:
            while time.monotonic() < ends:
                self._chunk(unit.decode())
                time.sleep(self.server.tick)
        except OSError:  # the client gave up and closed the connection
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")

    def _answer(self, request: dict[str, Any], *, cut: bool) -> None:
        messages = request.get("messages", [])
        user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        text = cited_sentence(user)
        if not request.get("stream"):
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "finish_reason": "stop", "message": message}
            usage = {"prompt_tokens": 10, "completion_tokens": 5}
            self._json(200, {"choices": [choice], "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        size = self.server.piece_chars
        for n, i in enumerate(range(0, len(text), size)):
            delta = {"choices": [{"index": 0, "delta": {"content": text[i : i + size]}}]}
            self._chunk(f"data: {json.dumps(delta, ensure_ascii=False)}\n\n")
            if cut and n == 1:
                # drop the connection in the middle of the chunked body
                self.wfile.write(b'40\r\ndata: {"choi')
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            time.sleep(self.server.delay)
        stop = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self._chunk(f"data: {json.dumps(stop)}\n\n")
        self._chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mode = "ok"
    requests = 0
    piece_chars = 4
    delay = 0.0
    tick = TICK_S

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients dropping kept-alive connections is normal here


class FakeLLM:
    """The upstream, serving on a free loopback port from a daemon thread."""

    def __init__(self, *, piece_chars: int = 4, delay: float = 0.0, tick: float = TICK_S) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.piece_chars = piece_chars
        self._server.delay = delay
        self._server.tick = tick
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def mode(self) -> str:
        return self._server.mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; choose one of: {', '.join(MODES)}")
        self._server.mode = value

    @property
    def delay(self) -> float:
        """Seconds between streamed pieces."""
        return self._server.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._server.delay = seconds

    @property
    def requests(self) -> int:
        return self._server.requests

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
