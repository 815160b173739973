"""Resolve follow-up questions against the conversation so far.

“那妇联呢？” after “工会开展了哪些品牌活动？” becomes “妇联开展了哪些品牌活动？”: when
the follow-up names an organisation and the previous question named another, the
organisation is swapped; other elliptical follow-ups (pronouns, “还有呢”, “what
about …”) are searched together with the previous question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.base import Turn
from zh.script import to_simplified

__all__ = ["ORGANISATIONS", "is_elliptical", "resolve_followup"]

# Mass organisations and the bodies the speeches name them by (longest first matters).
ORGANISATIONS = sorted(
    """总工会 工会 共青团 团委 团市委 团省委 团中央 妇联 妇女联合会 侨联 残联 科协 工商联 文联
    红十字会 青联 学联 工青妇 群团组织""".split(),
    key=len,
    reverse=True,
)
_ORG_RE = re.compile("|".join(map(re.escape, ORGANISATIONS)))
_ELLIPTIC = re.compile(
    r"^\s*(那么?|还有|另外|此外|and\b|what about|how about|and what)|呢\s*[？?]?\s*$|"
    r"[他她它其该此]|这些|那些|上述|\b(he|she|they|it|them|his|her|their)\b",
    re.I,
)
MAX_FOLLOWUP_CHARS = 16


def is_elliptical(question: str) -> bool:
    q = question.strip()
    return bool(_ELLIPTIC.search(q)) or len(q) <= 6


def resolve_followup(question: str, history: Sequence[Turn]) -> str:
    """The standalone question to search for, given earlier turns (oldest first)."""
    previous = [t.content for t in history if t.role == "user" and t.content.strip()]
    if not previous or not is_elliptical(question):
        return question
    prev = previous[-1]
    simp_q, simp_prev = to_simplified(question), to_simplified(prev)
    new_orgs = _ORG_RE.findall(simp_q)
    old_orgs = _ORG_RE.findall(simp_prev)
    if new_orgs and old_orgs and len(question.strip()) <= MAX_FOLLOWUP_CHARS:
        return simp_prev.replace(old_orgs[0], new_orgs[0])
    stripped = re.sub(r"^\s*(那么?|还有|另外)|呢?\s*[？?]\s*$", "", question).strip()
    return f"{prev} {stripped}".strip()
