"""Section-aware chunking: a cleaned speech → chunks with a section path and exact offsets.

Speeches on 群团工作 are built from a small set of conventions: numbered headings
(``一、`` ``（一）`` ``1.``), rhetorical sections (``第一句话，…`` ``第一，`` ``首先…其次``),
enumerations that open sub-sections (``一是/二是`` ``一要`` ``一方面/另一方面``), an
opening before the first heading and a closing (``同志们，…``). A reader asking "what
did the speaker say under the third point" needs that structure, so every chunk
carries its section path, and the path is also put in front of the indexed text.

Detection runs on a simplified-script copy of the text (the conversion keeps lengths),
so traditional documents are recognised with the same patterns, while labels and chunk
text are cut from the original. Chunks never cross a top-level section; long sections
are split at sentence ends with a little overlap; small neighbouring sub-sections of
one top-level section are packed together.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.types import Chunk, Document
from zh.script import to_simplified
from zh.text import CLOSERS, SENTENCE_END, count_tokens, max_token_chars, ordinal_value
from zh.text import sentence_starts as text_sentence_starts

__all__ = [
    "CHUNKER_VERSION",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_OVERLAP_TOKENS",
    "SECTION_SEPARATOR",
    "count_tokens",
    "chunk_document",
    "common_path",
]

CHUNKER_VERSION = "3"  # 3: sentences also end before an enumeration item ("，一是")
# 320 beat 200 tokens on the speeches set (benchmarks/retrieval_sweep.py --chunk-sizes);
# the other sizes and limits below are set by reading the speeches' layout, not swept
DEFAULT_MAX_TOKENS = 320
DEFAULT_OVERLAP_TOKENS = 40
MIN_CHUNK_TOKENS = 40  # below this a chunk is a fragment: merge it when a neighbour has room
MIN_BUDGET_TOKENS = 16
LABEL_MAX_CHARS = 30
LABEL_MIN_CHARS = 10  # never trim a label shorter than this at punctuation
LABEL_SCAN_CHARS = 2000  # how far a label looks for the end of its sentence
CLOSING_MAX_SHARE = 0.25  # a closing is at most this share of the speech
SECTION_SEPARATOR = " › "
OPENING_LABEL = "开头"
CLOSING_LABEL = "结尾"
BODY_LABEL = "全文"  # the root of a document without top-level sections

_NUM = "(?:[二三四五六七八九]?十[一二三四五六七八九]?|[一二三四五六七八九])"  # 1…99
_HEADINGS: list[tuple[str, int, re.Pattern[str]]] = [
    ("part", 0, re.compile(rf"第{_NUM}部分")),
    ("cn", 1, re.compile(rf"{_NUM}、(?![一二三四五六七八九十])")),
    ("paren_cn", 2, re.compile(rf"[（(]{_NUM}[）)]")),
    ("arabic", 3, re.compile(r"\d{1,2}(?:[、．]|\.(?!\d))")),
    ("paren_arabic", 4, re.compile(r"[（(]\d{1,2}[）)]")),
]
_BODY_RANK = 10
_BODY: list[tuple[str, re.Pattern[str]]] = [
    ("juhua", re.compile(rf"第({_NUM})句话")),
    (
        "ordinal",
        re.compile(
            rf"(?:第({_NUM})(?:点|条)?(?=[，,：:])|第({_NUM})(?:点|条)(?=是)"
            r"|(首先|其次|再次|最后)(?=[，,：:是要]))"
        ),
    ),
    ("enum", re.compile(rf"({_NUM})([是要])(?!否)")),
    ("fangmian", re.compile(r"(另)?一方面")),
]
_TOP_BODY_FAMILIES = ("juhua", "ordinal")  # rhetorical sections lead when there are no headings

_SENT_END = SENTENCE_END
_SOFT_PUNCT = "，,、；;：:"
_LABEL_END = re.compile(r"[。！？；!?;\n]")
_CLOSING_CUE = re.compile(
    r"同志们[，,！!：:]|总之[，,]|总而言之|总的(?:来说|说来)"
    r"|(?:今天[，,]?)?我(?:就|先)?讲(?:这么一些|这些|到这里)|就讲到这里|让我们"
)
_FORWARD_CUE = re.compile(r"新的(?:更大)?(?:成效|贡献|胜利|成绩|辉煌|突破)|新局面|新篇章|新征程")


@dataclass(frozen=True)
class _Marker:
    pos: int
    family: str
    rank: int  # heading rank (0 = most major) or _BODY_RANK
    ordinal: int
    verb: str  # 是/要 for enumerations: a new 一要 series under 二是 nests instead of replacing
    para_start: bool
    label: str


@dataclass(frozen=True)
class _Segment:
    start: int
    end: int
    path: tuple[str, ...]
    top: int  # index of the top-level section


def _trim_label(label: str, max_chars: int = LABEL_MAX_CHARS) -> str:
    """Shorten a heading/sentence to ``max_chars``, preferring a cut at a comma or
    after a closing quote (outside quotes), marking the cut with ``…``."""
    label = " ".join(label.split()).strip(_SOFT_PUNCT + _SENT_END + " ")
    if len(label) <= max_chars:
        return label
    best, depth = 0, 0
    for i, ch in enumerate(label[: max_chars + 1]):
        if ch in "“‘「『《":
            depth += 1
        elif ch in "”’」』》":
            depth = max(0, depth - 1)
            if depth == 0 and LABEL_MIN_CHARS <= i + 1 <= max_chars:
                best = i + 1
        elif ch in _SOFT_PUNCT and depth == 0 and LABEL_MIN_CHARS <= i <= max_chars:
            best = i
    cut = label[: best or max_chars].rstrip(_SOFT_PUNCT + " ")
    return cut + "…"


def _label_at(text: str, pos: int) -> str:
    """The marker's own sentence (or heading line), trimmed to a readable length.

    Only the first ``LABEL_SCAN_CHARS`` are looked at (the label keeps far fewer), so
    many markers inside one endless sentence do not each read it to its end."""
    limit = min(len(text), pos + LABEL_SCAN_CHARS)
    m = _LABEL_END.search(text, pos, limit)
    end = m.start() if m else limit
    sentence = text[pos:end]
    colon = re.search(r"[：:]", sentence)
    if colon and colon.start() >= 6:
        sentence = sentence[: colon.start()]
    return _trim_label(sentence)


def _paragraph_starts(s: str) -> list[int]:
    starts: list[int] = []
    for m in re.finditer(r"(?:^|\n)\s*", s):
        pos = m.end()
        if pos < len(s) and (not starts or starts[-1] != pos):
            starts.append(pos)
    return starts


def _sentence_starts(s: str) -> list[int]:
    starts = []
    for m in re.finditer(rf"[{_SENT_END}：:][{CLOSERS}]*[ \t\u3000\xa0]*", s):
        pos = m.end()
        if pos < len(s) and s[pos] != "\n":
            starts.append(pos)
    return starts


def _match_marker(s: str, text: str, pos: int, para_start: bool) -> _Marker | None:
    if para_start:
        for family, rank, pattern in _HEADINGS:
            if pattern.match(s, pos):
                return _Marker(pos, family, rank, 0, "", True, _label_at(text, pos))
    for family, pattern in _BODY:
        m = pattern.match(s, pos)
        if not m:
            continue
        groups = [g for g in m.groups() if g]
        word = groups[0] if groups else "一"
        ordinal = ordinal_value(word)
        if family == "fangmian":
            ordinal = 2 if m.group(1) else 1
        verb = m.group(2) if family == "enum" else ""
        return _Marker(pos, family, _BODY_RANK, ordinal, verb, para_start, _label_at(text, pos))
    return None


def _title_boundaries(s: str, title: str, para_starts: list[int]) -> list[int]:
    """A title glued to the first sentence (``…的讲话第一句话，…``) still ends a unit."""
    title = to_simplified(title.strip())
    out = []
    if len(title) >= 4:
        for p in para_starts:
            end = p + len(title)
            if s.startswith(title, p) and end < len(s) and not s[end].isspace():
                out.append(end)
    return out


def _find_markers(s: str, text: str, title: str) -> tuple[list[_Marker], list[int]]:
    para_starts = _paragraph_starts(s)
    para_like = set(para_starts) | set(_title_boundaries(s, title, para_starts))
    candidates = sorted(para_like | set(_sentence_starts(s)))
    markers = [m for p in candidates if (m := _match_marker(s, text, p, p in para_like))]
    # 他要求，一是…。二是…: a first item after a comma counts when its second item follows
    seconds = sorted(o.pos for o in markers if o.family == "enum" and o.ordinal == 2)
    newlines = [m.start() for m in re.finditer("\n", s)]
    for c in re.finditer(r"[，,]\s*", s):
        m = _match_marker(s, text, c.end(), False)
        if m and m.family == "enum" and m.ordinal == 1:
            k = bisect.bisect_left(newlines, c.end())
            para_end = newlines[k] if k < len(newlines) else len(s)
            i = bisect.bisect_right(seconds, m.pos)
            if i < len(seconds) and seconds[i] < para_end:
                markers.append(m)
    counts: dict[str, int] = {}
    for m in markers:
        counts[m.family] = counts.get(m.family, 0) + 1
    # a lone marker is not a structure: one "第一，" or one "一是" is just prose
    markers = sorted((m for m in markers if counts[m.family] >= 2), key=lambda m: m.pos)
    return markers, para_starts


def _top_family(markers: list[_Marker]) -> tuple[str, int] | None:
    heading_ranks = [m.rank for m in markers if m.rank < _BODY_RANK]
    if heading_ranks:
        rank = min(heading_ranks)
        return next(m.family for m in markers if m.rank == rank), rank
    for family in _TOP_BODY_FAMILIES:
        if any(m.family == family for m in markers):
            return family, _BODY_RANK
    return None


def _closing_start(
    s: str, markers: list[_Marker], tops: list[_Marker], para_starts: list[int]
) -> int | None:
    """Where the closing begins: a ``同志们，…``/``总之`` paragraph or sentence after all
    structure, or a forward-looking final paragraph after a section whose points
    were whole paragraphs (the speech's last item ended, this paragraph sums up)."""
    body_len = len(s.strip()) or 1
    last_marker = markers[-1].pos if markers else -1
    starts = sorted(set(para_starts) | set(_sentence_starts(s)))
    last_para = para_starts[-1] if para_starts else 0
    first_char = len(s) - len(s.lstrip())  # a closing needs some text before it
    for pos in starts:
        short = pos == last_para or (len(s) - pos) <= CLOSING_MAX_SHARE * body_len
        if pos > last_marker and short and pos > first_char and _CLOSING_CUE.match(s, pos):
            return pos
    if not tops or not para_starts:
        return None
    section_paras = [m for m in markers if m.pos > tops[-1].pos and m.para_start]
    if (
        last_para > last_marker
        and section_paras
        and (len(s) - last_para) <= CLOSING_MAX_SHARE * body_len
        and _FORWARD_CUE.search(s, last_para)
    ):
        return last_para
    return None


def _push_body(stack: list[_Marker], m: _Marker) -> None:
    """Same family on the stack → sibling (pop to it); a new family nests under the top.

    Enumerations with 是 and 要 form one family (speakers mix them: 三是… 四要…), but a
    new series with the other verb (一要 right under 二是) is a nested list."""
    body = [i for i in range(len(stack)) if stack[i].rank == _BODY_RANK]
    same = [i for i in body if stack[i].family == m.family]
    exact = [i for i in same if stack[i].verb == m.verb]
    if exact:
        del stack[exact[-1] :]
    elif same and not (m.ordinal == 1 and same[-1] == len(stack) - 1):
        del stack[same[-1] :]
    stack.append(m)


def _segments(text: str, s: str, title: str) -> list[_Segment]:
    markers, para_starts = _find_markers(s, text, title)
    top = _top_family(markers)
    tops = [m for m in markers if top and m.family == top[0]]
    close = _closing_start(s, markers, tops, para_starts)
    if close is not None:
        markers = [m for m in markers if m.pos < close]
    events: list[tuple[int, int, _Marker | None]] = [(p, 0, None) for p in para_starts]
    if close is not None:
        events.append((close, 1, None))
    events += [(m.pos, 2, m) for m in markers]
    events.sort(key=lambda e: (e[0], e[1]))

    out: list[_Segment] = []
    top_label = OPENING_LABEL if tops else BODY_LABEL
    top_idx, cur = 0, 0
    stack: list[_Marker] = []

    def cut(pos: int) -> None:
        nonlocal cur
        if pos > cur:
            path = (top_label, *(e.label for e in stack))
            if out and out[-1].path == path and out[-1].top == top_idx:
                out[-1] = _Segment(out[-1].start, pos, path, top_idx)
            else:
                out.append(_Segment(cur, pos, path, top_idx))
            cur = pos

    for pos, kind, m in events:
        if kind == 0:
            if any(not e.para_start for e in stack):
                cut(pos)
                stack = [e for e in stack if e.para_start]
            continue
        cut(pos)
        if m is None or (top is not None and m.family == top[0]):  # i.e. m in tops
            top_idx += 1
            top_label = CLOSING_LABEL if m is None else m.label
            stack = []
        elif m.rank < _BODY_RANK:
            stack = [e for e in stack if e.rank < m.rank]
            stack.append(m)
        else:
            _push_body(stack, m)
    cut(len(s))
    return out


def _strip(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _spans(text: str, a: int, b: int, pattern: str) -> list[tuple[int, int]]:
    """Cut [a, b) after every match of ``pattern``; pieces cover [a, b) exactly."""
    out, cur = [], a
    for m in re.compile(pattern).finditer(text, a, b):
        if m.end() > cur:
            out.append((cur, m.end()))
            cur = m.end()
    if cur < b:
        out.append((cur, b))
    return out


def _sentences(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """[a, b) cut into whole sentences (``zh.text``'s rule, the one citations use);
    each piece keeps the whitespace after it, so the pieces cover [a, b) exactly."""
    cuts = [a, *(a + c for c in text_sentence_starts(text[a:b])), b]
    return [(x, y) for x, y in zip(cuts, cuts[1:], strict=False) if y > x]


_CLAUSE_PATTERN = r"[，,、：:]\s*"

_Tok = Callable[[int, int], int]


def _over(text: str, a: int, b: int, limit: int, tok: _Tok) -> bool:
    """``tok(a, b) > limit``, answered without counting when the span is so long that it
    cannot fit: counting the rest of a long section at every step is what made
    chunking quadratic in the section's length."""
    a, b = _strip(text, a, b)
    return b - a > limit * max_token_chars() or tok(a, b) > limit


def _units(text: str, a: int, b: int, budget: int, tok: _Tok) -> list[tuple[int, int]]:
    """Sentences; a sentence over budget becomes clauses; a clause over budget is hard-cut."""
    out: list[tuple[int, int]] = []
    for sa, sb in _sentences(text, a, b):
        if not _over(text, sa, sb, budget, tok):
            out.append((sa, sb))
            continue
        for ca, cb in _spans(text, sa, sb, _CLAUSE_PATTERN):
            while _over(text, ca, cb, budget, tok):
                lo, hi = ca + 1, min(cb - 1, ca + budget * 16)  # a token spans few chars
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if tok(ca, mid) <= budget else (lo, mid - 1)
                out.append((ca, lo))
                ca = lo
            out.append((ca, cb))
    return out


def _split(
    text: str, units: list[tuple[int, int]], budget: int, overlap: int, tok: _Tok
) -> list[tuple[int, int]]:
    """Pack units into pieces of about equal size; each later piece repeats whole
    trailing sentences of the previous one (about ``overlap`` tokens) for context."""
    total = tok(units[0][0], units[-1][1])
    if total <= budget:
        return [(units[0][0], units[-1][1])]
    pieces_needed = math.ceil(total / max(1, budget - overlap))
    target = math.ceil(total / pieces_needed)
    pieces: list[tuple[int, int]] = []
    i, prev_i, n = 0, 0, len(units)
    while i < n:
        first = i
        if pieces and overlap > 0:
            while first - 1 > prev_i and tok(units[first - 1][0], units[i - 1][1]) <= overlap:
                first -= 1
            if first == i and i - 1 > prev_i and tok(*units[i - 1]) <= overlap * 3 // 2:
                first = i - 1
        while first < i and tok(units[first][0], units[i][1]) > budget:
            first += 1
        j = i + 1
        while j < n and tok(units[first][0], units[j][1]) <= budget:
            now, nxt = tok(units[i][0], units[j - 1][1]), tok(units[i][0], units[j][1])
            if abs(nxt - target) > abs(now - target):
                break
            j += 1
        if (
            j < n
            and not _over(text, units[j][0], units[-1][1], MIN_CHUNK_TOKENS - 1, tok)
            and tok(units[first][0], units[-1][1]) <= budget
        ):
            j = n
        pieces.append((units[first][0], units[j - 1][1]))
        prev_i, i = i, j
    return pieces


@dataclass
class _Block:
    start: int
    end: int
    paths: list[tuple[str, ...]]
    top: int


def common_path(paths: Sequence[Sequence[str]]) -> list[str]:
    """The levels all ``paths`` share, from the root."""
    out: list[str] = []
    for level in zip(*paths, strict=False):
        if any(p != level[0] for p in level):
            break
        out.append(level[0])
    return out


def _only_title(segment: str, title: str) -> bool:
    squeeze = "".join(segment.split())
    return bool(squeeze) and squeeze in "".join(title.split())


def chunk_document(
    doc: Document,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> list[Chunk]:
    """Split ``doc.text`` into chunks of at most ``max_tokens`` tokens that follow the
    speech's own sections. Deterministic; offsets index ``doc.text`` exactly.

    A section over budget is split at sentence ends into near-equal pieces, each
    repeating about ``overlap_tokens`` of whole sentences from the piece before.
    Neighbouring blocks of one top-level section are packed together when one of
    them is under half the budget; the packed chunk is labelled with the common
    parent of its sub-sections, because a label must hold for the whole chunk (the
    sub-sections' own opening sentences stay in the text, where search finds them).
    """
    if max_tokens < MIN_BUDGET_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_BUDGET_TOKENS}, got {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(f"overlap_tokens must be in [0, max_tokens), got {overlap_tokens}")
    text = doc.text
    s = to_simplified(text)
    memo: dict[tuple[int, int], int] = {}

    def tok(a: int, b: int) -> int:
        if (a, b) not in memo:
            memo[(a, b)] = count_tokens(text[a:b].strip())
        return memo[(a, b)]

    blocks: list[_Block] = []
    for seg in _segments(text, s, doc.meta.title):
        a, b = _strip(text, seg.start, seg.end)
        if a == b:
            continue
        units = _units(text, a, b, max_tokens, tok)
        pieces = _split(text, units, max_tokens, overlap_tokens, tok)
        blocks += [_Block(pa, pb, [seg.path], seg.top) for pa, pb in pieces]

    packed: list[_Block] = []
    half = max_tokens // 2
    for blk in blocks:
        prev = packed[-1] if packed else None
        if (
            prev
            and prev.top == blk.top
            and prev.end <= blk.start
            and tok(prev.start, blk.end) <= max_tokens
            and (tok(prev.start, prev.end) < half or tok(blk.start, blk.end) < half)
        ):
            prev.end, prev.paths = blk.end, prev.paths + blk.paths
        else:
            packed.append(blk)

    title = " ".join(doc.meta.title.split())
    # An opening that is nothing but the title line (a page whose title is glued to the
    # body) is no section of its own: as a chunk it would match every question naming the
    # speech. It joins the first real chunk instead — the one place a chunk spans two
    # top-level sections, and only for the title.
    if (len(packed) > 1 and title and packed[0].end <= packed[1].start
            and _only_title(text[packed[0].start : packed[0].end], title)
            and tok(packed[0].start, packed[1].end) <= max_tokens):  # fmt: skip
        packed[1].start = packed[0].start
        packed = packed[1:]
    chunks = []
    for i, blk in enumerate(packed):
        a, b = _strip(text, blk.start, blk.end)
        path = common_path(blk.paths)
        section = SECTION_SEPARATOR.join(path)
        header = SECTION_SEPARATOR.join([title, *path] if title else path)
        chunks.append(
            Chunk(
                chunk_id=f"{doc.doc_id}#{i}",
                doc_id=doc.doc_id,
                start=a,
                end=b,
                text=text[a:b],
                section=section,
                section_path=path,
                index_text=f"{header}\n{text[a:b]}",
            )
        )
    return chunks
