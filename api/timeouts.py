"""Read timeouts for slow clients: request headers (a uvicorn protocol) and bodies (ASGI).

uvicorn's h11 protocol has no header-read timeout, and it counts every open connection
against ``limit_concurrency``: a few dozen clients sending their headers a byte at a
time, or never finishing a body, turned every new request into a 503 for as long as
they cared to stay. So:

* ``HeaderTimeoutH11Protocol`` closes a connection whose request headers are not
  complete ``header_timeout`` seconds after it opened (or after its previous response,
  on a kept-alive connection), and leaves such a connection out of the concurrency
  count until its headers are in: a connection that has not asked for anything yet
  holds no slot. It is the h11 protocol (uvicorn's default without ``httptools``) with
  one timer.
* ``BodyTimeoutMiddleware`` gives a request body ``timeout`` seconds in all to arrive
  (a total, so a trickle cannot reset it); past that the answer is 408 and the
  connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time

import h11
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.errors import run_with_body_reader

__all__ = ["BodyTimeout", "BodyTimeoutMiddleware", "HeaderTimeoutH11Protocol", "h11_protocol"]

log = logging.getLogger("api.timeouts")


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-header timeout (see the module docstring)."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.connections.discard(self)  # no slot until it has asked for something
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info(
                "closing a connection whose request headers took too long",
                extra={"client": self.client[0] if self.client else None},
            )
            self.transport.close()

    def handle_events(self) -> None:
        if self.conn.their_state is h11.IDLE:
            self.connections.add(self)  # counted from the moment it may start a request
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()  # the request line and headers are in
        elif self.cycle is None or self.cycle.response_complete:
            self.connections.discard(self)  # still only part of the headers

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def h11_protocol(header_timeout: float) -> type[HeaderTimeoutH11Protocol]:
    """The protocol class for ``uvicorn.run(http=...)`` with this header timeout."""
    return type(
        "H11ProtocolWithHeaderTimeout",
        (HeaderTimeoutH11Protocol,),
        {"header_timeout": header_timeout},
    )


class BodyTimeout(StarletteHTTPException):
    """Raised from ``receive`` when the body is late; becomes a 408 (like ``BodyTooLarge``)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {seconds:g} s",
            headers={"Connection": "close"},  # the rest of the body is not worth waiting for
        )


class BodyTimeoutMiddleware:
    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.timeout <= 0:
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout
        body_done = False

        async def timed() -> Message:
            nonlocal body_done
            if body_done:  # after the body, receive only waits for a disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                raise BodyTimeout(self.timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await run_with_body_reader(self.app, scope, receive, send, timed, BodyTimeout)
