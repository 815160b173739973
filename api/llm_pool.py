"""LLM-drafted answers run on their own bounded set of worker threads.

Routes that do blocking work run on anyio's shared worker threads (40 by default).
An answer drafted by an LLM holds its thread for as long as the upstream takes, up
to the backend's deadline; a few dozen of them used to take every shared thread, and
then ``/v1/search``, ``/v1/documents`` and every other blocking route queued behind
them until the upstream let go. So answers from a backend other than the extractive
one get a separate limiter of ``api_llm_concurrency`` threads, and a request that
finds them all busy is answered 503 at once instead of queueing (a queued request
would only wait for a thread, then for the LLM: better to let the client retry).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from api.errors import ApiError

__all__ = ["LLM_BUSY_RETRY_S", "LlmPool", "Slot", "uses_llm"]

T = TypeVar("T")
LLM_BUSY_RETRY_S = 5
EXTRACTIVE = "extractive"


def uses_llm(backend: str) -> bool:
    """Whether answering with ``backend`` waits on an outside model."""
    return backend != EXTRACTIVE


class Slot:
    """One reserved LLM thread; ``release`` (idempotent) gives it back."""

    def __init__(self, pool: LlmPool) -> None:
        self.pool = pool
        self._held = True

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        return self.pool.limiter

    def release(self) -> None:
        if self._held:
            self._held = False
            self.pool.busy -= 1


class LlmPool:
    """Threads for LLM-backed answers; ``reserve`` fails fast when all are taken.

    Slots are counted on the event loop (one thread: no lock), synchronously, so a
    burst of requests cannot all pass the check before any of them takes a slot; the
    threads themselves run under a limiter of the same size, which therefore never
    makes an answer wait. A slot is given back when its worker thread ends, not when
    the client leaves: the thread runs on until the backend's deadline.
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.busy = 0
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # created on first use: it needs the running event loop
            self._limiter = anyio.CapacityLimiter(self.size)
        return self._limiter

    def reserve(self) -> Slot:
        """A slot for one answer, or a 503 when every LLM thread is busy."""
        if self.busy >= self.size:
            raise ApiError(
                503,
                f"{self.size} answers are already being drafted by the language model; "
                "retry shortly",
                code="llm_busy",
                headers={"Retry-After": str(LLM_BUSY_RETRY_S)},
            )
        self.busy += 1
        return Slot(self)

    def reserve_for(self, backend: str) -> Slot | None:
        """A slot when ``backend`` uses an LLM; ``None`` (the shared threads) otherwise."""
        return self.reserve() if uses_llm(backend) else None

    async def run(self, backend: str, work: Callable[[], T]) -> T:
        """``work()`` on a worker thread: an LLM thread for ``backend``s that use one."""
        slot = self.reserve_for(backend)
        if slot is None:
            return await anyio.to_thread.run_sync(work)
        try:  # not abandoned on cancel: the slot is held until the thread really ends
            return await anyio.to_thread.run_sync(work, limiter=slot.limiter)
        finally:
            slot.release()
