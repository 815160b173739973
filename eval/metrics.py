"""Evaluation metrics: the gold set, evidence matching, per-question verdicts, aggregation.

Each metric is a tiny frozen dataclass with one ``evaluate(case)`` method that returns a
float in [0, 1], or ``None`` when the metric does not apply to the question (retrieval
metrics on an unanswerable question, answer metrics in a retrieval-only run). Aggregates
average only the questions where a metric applies, so "not applicable" never shows up as
a misleading 0.

Matching rule, used by every metric: both sides go through
:func:`zh.script.normalize_for_match` (traditional → simplified, no whitespace,
lowercase). A passage holds an evidence string if the two share a substring of at least
``min(len(evidence), 10)`` characters, which tolerates evidence that straddles a chunk
boundary without letting a two-character overlap count as a hit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, ClassVar, Protocol

from zh.script import normalize_for_match

__all__ = [
    "KINDS",
    "STAGES",
    "METRIC_KEYS",
    "SUMMARY_KEYS",
    "GoldItem",
    "GoldFormatError",
    "load_gold",
    "holds_evidence",
    "answer_correct",
    "Case",
    "Metric",
    "HitAtK",
    "EvidenceRecallAtK",
    "MRRAtK",
    "NDCGAtK",
    "AnswerAccuracy",
    "RefusalAccuracy",
    "FalseRefusal",
    "CitationPrecision",
    "Verbatim",
    "Degraded",
    "DEFAULT_METRICS",
    "QuestionResult",
    "evaluate_question",
    "percentile",
    "latency_summary",
    "aggregate",
]

KINDS = (
    "factoid",
    "list",
    "metadata",
    "cross_doc",
    "paraphrase",
    "traditional",
    "crosslingual",
    "unanswerable",
    "boilerplate",
    "conversation",
)
# latency stages, in milliseconds; first_token: until the first answer text reached the
# caller (streaming backends), else until the whole answer did
STAGES = ("retrieve", "first_token", "answer", "total")
MIN_SHARED_CHARS = 10  # evidence longer than this matches on any 10-char overlap
RETRIEVAL_KEYS = ("hit@1", "hit@3", "hit@5", "hit@10", "recall@5", "mrr@10", "ndcg@10")
ANSWER_KEYS = (
    "answer_accuracy",
    "refusal_accuracy",
    "false_refusal_rate",
    "citation_precision",
    "verbatim_rate",
    "degraded_rate",
)
METRIC_KEYS = RETRIEVAL_KEYS + ANSWER_KEYS
SUMMARY_KEYS = (*METRIC_KEYS, "latency_ms", "n", "n_answerable")
DECIMALS = 4  # rounding of aggregated metrics
LATENCY_DECIMALS = 1


# --------------------------------------------------------------------------- gold set


@dataclass(frozen=True)
class GoldItem:
    """One gold question. For a conversation, ``question`` is the last turn (the one
    scored) and ``history`` holds the earlier turns in order."""

    id: str
    kind: str
    question: str
    evidence: tuple[str, ...] = ()
    answer: tuple[tuple[str, ...], ...] = ()  # keyword groups; each group lists alternatives
    answerable: bool = True
    history: tuple[str, ...] = ()


class GoldFormatError(ValueError):
    """A gold file line that does not follow the documented format."""


def _str_list(value: Any, name: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{name!r} must be a list of non-empty strings")
    if not value and not allow_empty:
        raise ValueError(f"{name!r} must not be empty")
    return tuple(value)


def _turn_text(turn: Any) -> str:
    """A turn is a string, or an object carrying the user's words under one known key."""
    if isinstance(turn, dict):
        turn = next((turn[k] for k in ("question", "content", "text") if k in turn), None)
    if not isinstance(turn, str) or not turn.strip():
        raise ValueError("each turn must be a non-empty string (or an object with 'question')")
    return turn


def _parse_item(obj: Any) -> GoldItem:
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    item_id, kind, answerable = obj.get("id"), obj.get("kind"), obj.get("answerable")
    if not isinstance(item_id, str) or not item_id.strip():
        raise ValueError("'id' must be a non-empty string")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if not isinstance(answerable, bool):
        raise ValueError("'answerable' must be true or false")
    evidence = _str_list(obj.get("evidence"), "evidence")
    groups = obj.get("answer")
    if not isinstance(groups, list):
        raise ValueError("'answer' must be a list of keyword groups")
    answer = tuple(_str_list(g, "answer group", allow_empty=False) for g in groups)
    if answerable and not (evidence and answer):
        raise ValueError("an answerable item needs at least one evidence string and answer group")
    if not answerable and (evidence or answer):
        raise ValueError("an unanswerable item must have empty 'evidence' and 'answer'")
    if kind == "conversation":
        turns = obj.get("turns")
        if not isinstance(turns, list) or not turns:
            raise ValueError("a conversation item needs a non-empty 'turns' list")
        texts = [_turn_text(t) for t in turns]
        question, history = texts[-1], tuple(texts[:-1])
    else:
        raw = obj.get("question")
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError("'question' must be a non-empty string")
        question, history = raw, ()
    return GoldItem(item_id, kind, question, evidence, answer, answerable, history)


def load_gold(path: str | Path) -> list[GoldItem]:
    """Read a JSON Lines gold file; blank lines are skipped. Any malformed line raises
    :class:`GoldFormatError` naming ``file:line`` so the author can fix it at once."""
    path = Path(path)
    items: list[GoldItem] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = _parse_item(json.loads(line))
                if item.id in seen:
                    raise ValueError(f"duplicate id {item.id!r}")
            except ValueError as exc:  # json.JSONDecodeError is a ValueError too
                raise GoldFormatError(f"{path}:{lineno}: {exc}") from exc
            seen.add(item.id)
            items.append(item)
    return items


# --------------------------------------------------------------------------- matching


@lru_cache(maxsize=8192)
def _norm(text: str) -> str:
    """Cached: the same passages are matched against many evidence strings and metrics."""
    return normalize_for_match(text)


def _holds_normalized(passage: str, evidence: str) -> bool:
    """Some length-L window of the evidence occurs in the passage, L = min(len, 10);
    that is the same as a common substring of length >= L."""
    if not evidence:
        return False
    width = min(len(evidence), MIN_SHARED_CHARS)
    return any(evidence[i : i + width] in passage for i in range(len(evidence) - width + 1))


def holds_evidence(passage_text: str, evidence: str) -> bool:
    """Whether a passage contains (enough of) one gold evidence string."""
    return _holds_normalized(_norm(passage_text), _norm(evidence))


def answer_correct(answer_text: str, groups: Sequence[Sequence[str]]) -> bool:
    """Every keyword group has at least one alternative present in the answer.

    With no groups there is nothing to check and this returns False, so a gold item
    without keywords can never be counted as answered correctly by accident."""
    if not groups:
        return False
    text = _norm(answer_text)
    return all(any(_norm(alt) and _norm(alt) in text for alt in group) for group in groups)


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Case:
    """Everything a metric may look at for one question: the gold item, the ranked texts
    of the retrieved passages, the answer record (None in a retrieval-only run) and the
    cleaned text of each document by doc_id (to check citation offsets)."""

    item: GoldItem
    passages: Sequence[str] = ()
    answer: Mapping[str, Any] | None = None
    documents: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def held(self) -> list[frozenset[int]]:
        """For each ranked passage, the indices of the evidence strings it holds."""
        evidence = [_norm(e) for e in self.item.evidence]
        return [
            frozenset(i for i, ev in enumerate(evidence) if _holds_normalized(_norm(text), ev))
            for text in self.passages
        ]

    @property
    def scores_retrieval(self) -> bool:
        return self.item.answerable and bool(self.item.evidence)

    @property
    def citations(self) -> list[Mapping[str, Any]]:
        return list((self.answer or {}).get("citations") or [])

    @property
    def refused(self) -> bool:
        return bool((self.answer or {}).get("refused", False))


class Metric(Protocol):
    @property
    def name(self) -> str: ...

    def evaluate(self, case: Case) -> float | None: ...


@dataclass(frozen=True)
class HitAtK:
    """1 if any of the top k passages holds some evidence string."""

    k: int

    @property
    def name(self) -> str:
        return f"hit@{self.k}"

    def evaluate(self, case: Case) -> float | None:
        if not case.scores_retrieval:
            return None
        return float(any(case.held[: self.k]))


@dataclass(frozen=True)
class EvidenceRecallAtK:
    """Share of the evidence strings held by at least one of the top k passages."""

    k: int

    @property
    def name(self) -> str:
        return f"recall@{self.k}"

    def evaluate(self, case: Case) -> float | None:
        if not case.scores_retrieval:
            return None
        covered = frozenset().union(*case.held[: self.k])
        return len(covered) / len(case.item.evidence)


@dataclass(frozen=True)
class MRRAtK:
    """Reciprocal rank of the first passage holding evidence; 0 if none in the top k."""

    k: int

    @property
    def name(self) -> str:
        return f"mrr@{self.k}"

    def evaluate(self, case: Case) -> float | None:
        if not case.scores_retrieval:
            return None
        return next((1.0 / r for r, h in enumerate(case.held[: self.k], 1) if h), 0.0)


@dataclass(frozen=True)
class NDCGAtK:
    """Binary-relevance nDCG in which a passage is relevant only if it brings evidence
    not already held by a higher-ranked passage.

    Counting novelty stops duplicates (the same evidence in two overlapping chunks)
    from scoring twice. The ideal ranking puts all relevant passages first; its size is
    one passage per *uncovered* evidence string plus the relevant passages actually
    retrieved (so when one chunk holds three evidence strings, ranking it first is
    already perfect), capped at k. Hence 0 <= nDCG <= 1, and 1 exactly when the
    relevant passages fill the top ranks and cover all the evidence.
    """

    k: int

    @property
    def name(self) -> str:
        return f"ndcg@{self.k}"

    def evaluate(self, case: Case) -> float | None:
        if not case.scores_retrieval:
            return None
        covered: set[int] = set()
        dcg, relevant = 0.0, 0
        for rank, held in enumerate(case.held[: self.k], 1):
            if held - covered:
                covered |= held
                relevant += 1
                dcg += 1.0 / math.log2(rank + 1)
        n_ideal = min(self.k, relevant + len(case.item.evidence) - len(covered))
        idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, n_ideal + 1))
        return dcg / idcg


@dataclass(frozen=True)
class AnswerAccuracy:
    """Answerable items: 1 if not refused and every keyword group is in the answer."""

    name: ClassVar[str] = "answer_accuracy"

    def evaluate(self, case: Case) -> float | None:
        if case.answer is None or not case.item.answerable:
            return None
        if case.refused:
            return 0.0
        return float(answer_correct(str(case.answer.get("answer", "")), case.item.answer))


@dataclass(frozen=True)
class RefusalAccuracy:
    """Unanswerable items: 1 if the system refused."""

    name: ClassVar[str] = "refusal_accuracy"

    def evaluate(self, case: Case) -> float | None:
        if case.answer is None or case.item.answerable:
            return None
        return float(case.refused)


@dataclass(frozen=True)
class FalseRefusal:
    """Answerable items: 1 if the system refused anyway (lower is better)."""

    name: ClassVar[str] = "false_refusal_rate"

    def evaluate(self, case: Case) -> float | None:
        if case.answer is None or not case.item.answerable:
            return None
        return float(case.refused)


@dataclass(frozen=True)
class CitationPrecision:
    """Share of citations whose quote holds some evidence or contains an answer keyword.

    None without citations, and None on unanswerable items: with no gold evidence there
    is nothing to judge a quote against (answering at all is already a refusal miss)."""

    name: ClassVar[str] = "citation_precision"

    def evaluate(self, case: Case) -> float | None:
        citations = case.citations
        if case.answer is None or not case.item.answerable or not citations:
            return None
        keywords = [_norm(alt) for group in case.item.answer for alt in group]
        evidence = [_norm(e) for e in case.item.evidence]

        def supported(citation: Mapping[str, Any]) -> bool:
            quote = _norm(str(citation.get("quote", "")))
            return any(_holds_normalized(quote, ev) for ev in evidence) or any(
                kw and kw in quote for kw in keywords
            )

        return sum(supported(c) for c in citations) / len(citations)


@dataclass(frozen=True)
class Verbatim:
    """Share of citations whose quote is exactly ``cleaned_text[start:end]`` of its
    document: the offsets a reader follows must land on the quoted words."""

    name: ClassVar[str] = "verbatim_rate"

    def evaluate(self, case: Case) -> float | None:
        citations = case.citations
        if case.answer is None or not citations:
            return None

        def exact(citation: Mapping[str, Any]) -> bool:
            text = case.documents.get(str(citation.get("doc_id", "")))
            start, end = citation.get("start"), citation.get("end")
            if text is None or not isinstance(start, int) or not isinstance(end, int):
                return False
            return 0 <= start < end <= len(text) and text[start:end] == citation.get("quote")

        return sum(exact(c) for c in citations) / len(citations)


@dataclass(frozen=True)
class Degraded:
    """1 if the answer came from a fallback path (e.g. the LLM backend failed)."""

    name: ClassVar[str] = "degraded_rate"

    def evaluate(self, case: Case) -> float | None:
        if case.answer is None:
            return None
        return float(bool(case.answer.get("degraded", False)))


DEFAULT_METRICS: tuple[Metric, ...] = (
    HitAtK(1),
    HitAtK(3),
    HitAtK(5),
    HitAtK(10),
    EvidenceRecallAtK(5),
    MRRAtK(10),
    NDCGAtK(10),
    AnswerAccuracy(),
    RefusalAccuracy(),
    FalseRefusal(),
    CitationPrecision(),
    Verbatim(),
    Degraded(),
)


# --------------------------------------------------------------------------- per question


@dataclass
class QuestionResult:
    """One scored question, as written to ``questions.jsonl``.

    ``retrieved`` holds passage dicts in rank order (at least text, doc_id, section,
    start, end, score); ``answer`` is the answer record (answer, refused, degraded,
    citations) or None for a retrieval-only run; ``latencies`` maps a stage in
    :data:`STAGES` to milliseconds; ``verdicts`` maps each key of :data:`METRIC_KEYS`
    to a float or None (not applicable).
    """

    id: str
    kind: str
    question: str
    answerable: bool
    evidence: list[str] = field(default_factory=list)
    expected: list[list[str]] = field(default_factory=list)  # the gold keyword groups
    history: list[str] = field(default_factory=list)
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    answer: dict[str, Any] | None = None
    latencies: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuestionResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def evaluate_question(
    item: GoldItem,
    retrieved: Sequence[Mapping[str, Any]],
    answer: Mapping[str, Any] | None = None,
    *,
    documents: Mapping[str, str] | None = None,
    latencies: Mapping[str, float] | None = None,
    metrics: Sequence[Metric] = DEFAULT_METRICS,
) -> QuestionResult:
    """Score one question with every metric and package it as a :class:`QuestionResult`."""
    case = Case(
        item,
        [str(p.get("text", "")) for p in retrieved],
        answer,
        documents if documents is not None else {},
    )
    return QuestionResult(
        id=item.id,
        kind=item.kind,
        question=item.question,
        answerable=item.answerable,
        evidence=list(item.evidence),
        expected=[list(g) for g in item.answer],
        history=list(item.history),
        retrieved=[dict(p) for p in retrieved],
        answer=dict(answer) if answer is not None else None,
        latencies={k: float(v) for k, v in (latencies or {}).items()},
        verdicts={m.name: m.evaluate(case) for m in metrics},
    )


# --------------------------------------------------------------------------- aggregation


def percentile(values: Iterable[float], p: float) -> float | None:
    """The p-th percentile (0-100) with linear interpolation between the closest ranks
    (numpy's default); None for no values."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {p}")
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def latency_summary(results: Sequence[QuestionResult]) -> dict[str, dict[str, float | None]]:
    """p50/p95 in milliseconds for each stage; None where no question timed that stage."""
    summary: dict[str, dict[str, float | None]] = {}
    for stage in STAGES:
        values = [r.latencies[stage] for r in results if r.latencies.get(stage) is not None]
        summary[stage] = {
            "p50": _rounded(percentile(values, 50), LATENCY_DECIMALS),
            "p95": _rounded(percentile(values, 95), LATENCY_DECIMALS),
        }
    return summary


def _summarise(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """Mean of each metric over the questions where it applies (macro average: a
    question with five citations weighs as much as one with a single citation)."""
    out: dict[str, Any] = {"n": len(results), "n_answerable": sum(r.answerable for r in results)}
    for key in METRIC_KEYS:
        values = [v for r in results if (v := r.verdicts.get(key)) is not None]
        out[key] = round(sum(values) / len(values), DECIMALS) if values else None
    out["latency_ms"] = latency_summary(results)
    return out


def aggregate(records: Iterable[QuestionResult | Mapping[str, Any]]) -> dict[str, Any]:
    """``{"overall": {...}, "by_kind": {kind: {...}}}``; each summary has exactly the
    keys in :data:`SUMMARY_KEYS`. Kinds appear in :data:`KINDS` order."""
    results = [r if isinstance(r, QuestionResult) else QuestionResult.from_dict(r) for r in records]
    present = {r.kind for r in results}
    order = [k for k in KINDS if k in present] + sorted(present - set(KINDS))
    return {
        "overall": _summarise(results),
        "by_kind": {kind: _summarise([r for r in results if r.kind == kind]) for kind in order},
    }
