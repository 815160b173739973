"""The evaluation records time to the first answer text (streaming backends) per question."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eval.metrics import GoldItem
from eval.runner import _ask_record
from rag.answer import Answer


class StreamingPipeline:
    """Stands in for Pipeline.ask: streams two pieces, recording when each was sent."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def ask(self, question: str, *, on_token: Callable[[str], None] | None = None,
            **_: Any) -> Answer:  # fmt: skip
        assert on_token is not None  # the runner must listen for tokens
        on_token("第一")
        self.events.append("first piece")
        on_token("第二")
        return Answer(question=question, answer="第一第二", timings_ms={"answer": 1.0})


def test_first_token_is_recorded_and_not_after_the_total() -> None:
    item = GoldItem(id="q", kind="factoid", question="问题？")
    record, latencies = _ask_record(StreamingPipeline(), item, "local")  # type: ignore[arg-type]
    assert record["answer"] == "第一第二"
    assert set(latencies) >= {"first_token", "answer", "total"}
    assert 0.0 <= latencies["first_token"] <= latencies["total"]
