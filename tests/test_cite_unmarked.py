"""What the verifier does with a small local model's habits: answers without [n]
markers get citations by support; an answer nothing supports gets none (the pipeline
then refuses)."""

from __future__ import annotations

from test_cite import DOC, _passages

from rag.cite import verify


def test_a_sentence_without_a_marker_is_cited_by_support() -> None:
    v = verify("政治性是群团组织的灵魂。妇联要开展双学双比活动。", _passages())
    assert v.text == "政治性是群团组织的灵魂[1]。妇联要开展双学双比活动[2]。"
    assert [DOC[c.start : c.end] for c in v.citations] == [c.quote for c in v.citations]
    assert v.unsupported == []


def test_an_answer_nothing_supports_has_no_citations() -> None:
    v = verify("全国总工会2023年有三亿会员。会员数量逐年增长很快。", _passages())
    assert v.citations == [] and len(v.unsupported) == 2
