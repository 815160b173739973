"""Checks on the hand-written gold sets in ``eval/gold/``.

The evaluation is only as good as its gold set, and a gold set rots quietly: a typo
in an evidence string makes a question unwinnable, a keyword that is not in the
speech makes every answer "wrong", a lost refusal question hides hallucination.
These tests keep the files honest: well-formed lines, evidence copied verbatim from
a bundled speech, answer keywords that an extractive answer quoting the speech could
contain, and the coverage minimums the tuning relies on.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from zh.script import detect_script, normalize_for_match

REPO = Path(__file__).resolve().parent.parent
GOLD_DIR = REPO / "eval" / "gold"
CORPUS_DIR = REPO / "rag" / "corpus"

SPEECHES = "speeches.jsonl"
CONVERSATIONS = "conversations.jsonl"
DEV = "dev.jsonl"  # verbatim copy of the shared development examples
TEST = "test.jsonl"  # frozen held-out test split, never tuned on
GOLD_FILES = (SPEECHES, CONVERSATIONS, DEV, TEST)

QUESTION_KINDS = (
    "factoid",
    "list",
    "metadata",
    "cross_doc",
    "paraphrase",
    "traditional",
    "crosslingual",
    "unanswerable",
    "boilerplate",
)
REFUSAL_KINDS = ("unanswerable", "boilerplate")
CONVERSATION_KIND = "conversation"
ID_PATTERNS = {SPEECHES: r"g\d{3}", CONVERSATIONS: r"c\d{2}", DEV: r"d\d{2}", TEST: r"t\d{3}"}

MIN_SPEECH_QUESTIONS = 110
MIN_ANSWERABLE_PER_SPEECH = 15
MIN_REFUSALS = 18
MIN_PER_KIND = {"traditional": 12, "crosslingual": 10}
# The test split's minimums. Not checkable here: that at least 10 of its unanswerable
# questions use words that do occur in the speeches (a name, figure, date, programme).
MIN_TEST_QUESTIONS = 120
MIN_TEST_PER_KIND = {
    "list": 32,
    "paraphrase": 16,
    "crosslingual": 16,
    "metadata": 13,
    "traditional": 11,
    "cross_doc": 7,
    "unanswerable": 19,
    "boilerplate": 5,
    "factoid": 10,
}
MIN_CONVERSATIONS = 12
MIN_UNANSWERABLE_CONVERSATIONS = 2
MIN_EVIDENCE_CHARS = 6
KEYWORD_CHARS = (2, 12)  # short keywords; dates as written ("2015年12月17日") are the longest
HAN = re.compile(r"[\u4e00-\u9fff]")

Record = dict[str, Any]


@cache
def corpus_raw() -> dict[str, str]:
    """Raw speech files by name: evidence must be copied from these, script and all."""
    files = sorted(CORPUS_DIR.glob("*.txt"))
    assert files, f"no bundled speeches in {CORPUS_DIR}"
    return {p.name: p.read_text(encoding="utf-8") for p in files}


@cache
def corpus_normalized() -> dict[str, str]:
    return {name: normalize_for_match(text) for name, text in corpus_raw().items()}


@cache
def load(name: str) -> tuple[Record, ...]:
    records = []
    text = (GOLD_DIR / name).read_text(encoding="utf-8")
    for lineno, line in enumerate(text.splitlines(), 1):
        assert line.strip(), f"{name}:{lineno}: blank line"
        obj = json.loads(line)
        assert isinstance(obj, dict), f"{name}:{lineno}: not a JSON object"
        records.append(obj)
    return tuple(records)


def speeches_of(evidence: str) -> list[str]:
    return [name for name, text in corpus_raw().items() if evidence in text]


def is_english(keyword: str) -> bool:
    return keyword.isascii() and any(c.isalpha() for c in keyword)


def all_records() -> list[tuple[str, Record]]:
    return [(name, rec) for name in GOLD_FILES for rec in load(name)]


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize("name", GOLD_FILES)
def test_file_is_utf8_jsonl_without_ascii_escapes(name: str) -> None:
    raw = (GOLD_DIR / name).read_bytes()
    text = raw.decode("utf-8")
    assert text.endswith("\n")
    assert "\\u" not in text, "write with ensure_ascii=False so the Chinese stays readable"
    assert len(load(name)) == len(text.splitlines())


@pytest.mark.parametrize("name", GOLD_FILES)
def test_required_keys_and_types(name: str) -> None:
    for rec in load(name):
        rid = rec.get("id")
        assert isinstance(rid, str) and re.fullmatch(ID_PATTERNS[name], rid), rec
        if name == CONVERSATIONS:
            assert rec["kind"] == CONVERSATION_KIND, rid
            turns = rec.get("turns")
            assert isinstance(turns, list) and len(turns) >= 2, rid
            assert all(isinstance(t, str) and t.strip() for t in turns), rid
            assert "question" not in rec, rid
        else:
            assert rec["kind"] in QUESTION_KINDS, rid
            assert isinstance(rec.get("question"), str) and rec["question"].strip(), rid
        assert isinstance(rec.get("answerable"), bool), rid
        assert isinstance(rec.get("evidence"), list), rid
        assert all(isinstance(e, str) and e for e in rec["evidence"]), rid
        assert isinstance(rec.get("answer"), list), rid
        for group in rec["answer"]:
            assert isinstance(group, list) and group, rid
            assert all(isinstance(alt, str) and alt.strip() for alt in group), rid


def test_ids_are_unique_across_files() -> None:
    ids = [rec["id"] for _, rec in all_records()]
    assert [i for i, n in Counter(ids).items() if n > 1] == []


def test_questions_are_not_repeated() -> None:
    """A held-out style set: no question asked twice, and none copied from the dev set."""
    seen: Counter[str] = Counter()
    for _, rec in all_records():
        for text in rec.get("turns", [rec.get("question", "")]):
            seen[normalize_for_match(text)] += 1
    assert [q for q, n in seen.items() if n > 1] == []


@pytest.mark.parametrize("name", GOLD_FILES)
def test_answerable_iff_evidence_and_answer(name: str) -> None:
    for rec in load(name):
        assert rec["answerable"] == bool(rec["evidence"]) == bool(rec["answer"]), rec["id"]
        if rec["kind"] in REFUSAL_KINDS:
            assert not rec["answerable"], rec["id"]
        elif rec["kind"] != CONVERSATION_KIND:
            assert rec["answerable"], rec["id"]


# --------------------------------------------------------------------------- evidence


@pytest.mark.parametrize("name", GOLD_FILES)
def test_evidence_is_verbatim_speech_text(name: str) -> None:
    for rec in load(name):
        for ev in rec["evidence"]:
            assert len(ev) >= MIN_EVIDENCE_CHARS, (rec["id"], ev)
            assert speeches_of(ev), f"{rec['id']}: evidence not in any speech file: {ev!r}"
            assert not re.search(r"@|https?:|ICP|备案", ev), (rec["id"], ev)


@pytest.mark.parametrize("name", (SPEECHES, CONVERSATIONS, TEST))
def test_evidence_points_at_exactly_one_speech(name: str) -> None:
    """Each evidence string identifies its speech, so per-speech coverage is countable."""
    for rec in load(name):
        for ev in rec["evidence"]:
            assert len(speeches_of(ev)) == 1, (rec["id"], ev, speeches_of(ev))


@pytest.mark.parametrize("name", (SPEECHES, TEST))
def test_cross_doc_evidence_spans_several_speeches(name: str) -> None:
    for rec in load(name):
        if rec["kind"] == "cross_doc":
            found = {s for ev in rec["evidence"] for s in speeches_of(ev)}
            assert len(found) >= 2, rec["id"]


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize("name", GOLD_FILES)
def test_answer_keywords_are_short_and_simplified(name: str) -> None:
    lo, hi = KEYWORD_CHARS
    for rec in load(name):
        for group in rec["answer"]:
            for alt in group:
                assert lo <= len(alt) <= hi, (rec["id"], alt)
                assert normalize_for_match(alt) == alt.lower(), (rec["id"], alt)


@pytest.mark.parametrize("name", GOLD_FILES)
def test_every_answer_group_occurs_in_the_evidence_speeches(name: str) -> None:
    """Some alternative of every group is in the (normalised) speech the evidence comes
    from, so an answer quoting that speech can satisfy it. English-only groups of
    cross-lingual questions are exempt."""
    norm = corpus_normalized()
    for rec in load(name):
        sources = {s for ev in rec["evidence"] for s in speeches_of(ev)}
        text = "".join(norm[s] for s in sorted(sources))
        for group in rec["answer"]:
            if rec["kind"] == "crosslingual" and all(is_english(a) for a in group):
                continue
            assert any(normalize_for_match(a) in text for a in group), (rec["id"], group)


def test_list_questions_have_several_groups() -> None:
    for _, rec in all_records():
        if rec["kind"] == "list":
            assert len(rec["answer"]) >= 2, rec["id"]


# --------------------------------------------------------------------------- scripts


def test_traditional_questions_are_in_traditional_script() -> None:
    for _, rec in all_records():
        if rec["kind"] == "traditional":
            assert detect_script(rec["question"]) == "traditional", rec["id"]
        elif HAN.search(rec.get("question", "")):
            assert detect_script(rec["question"]) == "simplified", rec["id"]


def test_crosslingual_questions_are_english() -> None:
    for _, rec in all_records():
        if rec["kind"] == "crosslingual":
            assert not HAN.search(rec["question"]), rec["id"]
            assert re.search(r"[A-Za-z]{3,}", rec["question"]), rec["id"]


# --------------------------------------------------------------------------- coverage


def test_speech_set_size_and_kind_minimums() -> None:
    records = load(SPEECHES)
    kinds = Counter(rec["kind"] for rec in records)
    assert len(records) >= MIN_SPEECH_QUESTIONS
    assert set(kinds) == set(QUESTION_KINDS), kinds
    assert sum(kinds[k] for k in REFUSAL_KINDS) >= MIN_REFUSALS
    for kind, minimum in MIN_PER_KIND.items():
        assert kinds[kind] >= minimum, (kind, kinds[kind])


def test_test_split_size_and_kind_minimums() -> None:
    records = load(TEST)
    kinds = Counter(rec["kind"] for rec in records)
    assert len(records) >= MIN_TEST_QUESTIONS
    assert set(kinds) == set(QUESTION_KINDS), kinds
    for kind, minimum in MIN_TEST_PER_KIND.items():
        assert kinds[kind] >= minimum, (kind, kinds[kind])


@pytest.mark.parametrize("name", (SPEECHES, TEST))
def test_every_speech_has_enough_answerable_questions(name: str) -> None:
    """A cross-speech question counts for each speech its evidence comes from."""
    per_speech: Counter[str] = Counter()
    for rec in load(name):
        for speech in {s for ev in rec["evidence"] for s in speeches_of(ev)}:
            per_speech[speech] += 1
    for speech in corpus_raw():
        assert per_speech[speech] >= MIN_ANSWERABLE_PER_SPEECH, (speech, per_speech[speech])


def test_conversation_minimums() -> None:
    records = load(CONVERSATIONS)
    assert len(records) >= MIN_CONVERSATIONS
    unanswerable = [rec for rec in records if not rec["answerable"]]
    assert len(unanswerable) >= MIN_UNANSWERABLE_CONVERSATIONS
