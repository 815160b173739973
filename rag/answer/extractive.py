"""The offline, deterministic answer backend: quote the sentences that answer.

No model is involved. Candidate sentences come from the retrieved passages; each is
scored by how much of the question's weighted content (character bigrams, weighted
by rarity in the indexed corpus) it covers, plus boosts for sentences that match the
question's intent (a date for “when”, a meeting for “which meeting”), and a small
prior for higher-ranked passages. The answer quotes the best sentences verbatim with
``[n]`` markers; for list questions it quotes the items of the enumeration the best
sentence belongs to, in order. When the best coverage is too low the backend refuses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.answer.base import AnswerBackend, AnswerRequest, Draft, TokenCallback
from rag.answer.expect import Expectation, expectation, names_person
from rag.bilingual import is_english
from rag.intent import asks_across, asks_date, asks_list, asks_meeting, asks_person
from rag.sentences import enum_item, is_lead_in
from rag.types import Passage
from zh.script import to_simplified
from zh.text import CONTENT, REFUSALS, has_han, insert_markers, sentence_spans
from zh.text import jieba as load_jieba

__all__ = ["ExtractiveBackend", "REFUSAL", "question_terms", "Candidate"]

REFUSAL = REFUSALS  # the one refusal text per language (zh.text)
LEAD_IN_EN = "The speeches say (quoted in Chinese):"

# Interrogatives and words about the speeches themselves: they say what is asked,
# not what the answer is about, so they carry no weight when matching sentences.
QUESTION_NOISE = (
    "哪些 哪个 哪位 哪几 哪一 哪三 哪两 哪四 哪五 什么 怎么 怎样 如何 为什么 为何 是否 多少 几个 "
    "请问 讲话 中提 提到 提出 谈到 指出 强调 要求 认为 表示 说明 主要 分别 包括 哪 吗 呢 么 谁 "
    "他们 她们 我们 这个 那个 这些 那些 其中 里面 方面 问题 内容 有关 关于 的 了 是 在 和 与 及 "
    "中 对 把 被 让 给 从 向 还 又 也 都 就 要"
).split()

_NOISE = frozenset(QUESTION_NOISE) | frozenset(
    "是 的 了 在 和 与 及 或 而 并 把 被 对 为 以 之 其 这 那 个 哪 吗 呢 么 啊 "
    "一个 什么样 怎么样 哪儿 哪里 几 几个 多 曾 已 所 等 等等 有 没有 会 能 可以 应 应当 应该 需要 "
    "a an the of and or to in on for is are was were be what which who how why when does do did "
    "according say says said speech speeches "
    # words about the speech rather than its content
    "讲话人 担任 职务 发表 召开 说法 提到 介绍 按照 据 分别 具体 指 什么样 哪种 属于 例子 说明 "
    "一篇 这篇 篇 文中 文章 领导 同志".split()
)
# “哪两条”, “三点”, “四个方面”: counts say how many items are wanted, not which
_COUNT = re.compile(r"^[一二三四五六七八九十两几\d]+[个项点条句种类方面件篇]*$")
_QUOTED = re.compile(r"[“「『\"]([^”」』\"]{2,20})[”」』\"]")
_INTERROGATIVE = re.compile(r"哪|什么|几时|何时|多少")
_ASK_PHRASE = re.compile(r"哪一?[天年月日座个位些种次篇条项点家所]|什么时候|几月几日|几时|何时")
_DATE = re.compile(r"(\d{4}\s*年\s*)?\d{1,2}\s*月\s*\d{1,2}\s*日|\d{4}-\d{1,2}-\d{1,2}")
_MEETING = re.compile(r"会议|座谈会|大会|全会|视频会")

# benchmarks/answer_sweep.py, speeches set (answer accuracy / citation precision), for
# the constants below that carry no figure of their own:
# INTENT_BOOST 0 → 0.786/0.764, 0.15 → 0.802/0.777, 0.35 → 0.809/0.782, 1 → 0.794/0.766;
# RANK_PRIOR 0 → 0.818/0.777, 0.06 → 0.809/0.782, 0.12 → 0.809/0.791, 0.25 → 0.802/0.787
#   (refusals 0.84); LOOKAHEAD 1 → 0.825/0.791 but dev 1.000 → 0.941, 2–5 → 0.809/0.782;
# ANSWERABILITY_DEPTH 1–5 and SCOPE_MATCH 0.4–0.8 change nothing (1.01: 0.802/0.778).
# MAX_SPEECHES, MAX_SENTENCES and MAX_LIST_ITEMS bound an answer's length; not tuned.
ANSWERABILITY_DEPTH = 3  # passages checked for the question's terms
# Thresholds chosen on eval/gold/speeches.jsonl with benchmarks/answer_sweep.py.
# Refusal: refuse when ≥ 30% of the question's terms occur nowhere in the speeches, or
# when the best passage (all top passages, for questions across speeches) holds < 20%
# of its weighted terms.
REFUSE_BELOW = 0.20
ABSENT_REFUSE = 0.30
KEEP_MARGIN = 0.02  # further sentences must come this close to the best: near-ties only
CROSS_DOC_KEEP = 0.6  # a speech's best sentence must reach this share of the best overall
MAX_SPEECHES = 5
MAX_SENTENCES = 3
MAX_LIST_ITEMS = 8
LOOKAHEAD = 3  # sentences after a lead-in in which a list may start
# the numbering of section headings (“三、…”, “（二）…”): a heading alone opens its section
HEADING_FAMILIES = frozenset({"dun", "paren"})
# List questions: when the best sentence opens no list, the first of the next LIST_DEPTH
# candidates that does and covers LIST_KEEP of the best's coverage answers.
LIST_DEPTH = 4
LIST_KEEP = 0.8
RANK_PRIOR = 0.06
# A question asking for a day, a number, a post, a name or a group's members: when the
# best sentence holds no such answer, a candidate among the first EXPECT_DEPTH that
# does and covers EXPECT_KEEP of the best's coverage answers instead; else refuse.
EXPECT_DEPTH = 4
EXPECT_KEEP = 0.7
# English questions: a sentence's cosine to the question plus this share of the weight
# of the question's translated terms it holds (benchmarks/answer_sweep.py)
ENGLISH_LEXICAL = 0.3
INTENT_BOOST = 0.35

TermWeight = Callable[[str], float]
EmbedPair = Callable[[str, Sequence[str]], "np.ndarray"]


def _clean_question(question: str) -> str:
    q = to_simplified(question).lower()
    for w in sorted(QUESTION_NOISE, key=len, reverse=True):
        if len(w) > 1:
            q = q.replace(w, " ")
    return q


def question_terms(question: str) -> list[str]:
    """Content terms of a question: jieba words (simplified) minus interrogatives and
    function words; words longer than two characters are split into their bigrams, so
    a term matches however the speech segments it."""
    jb = load_jieba()
    terms: list[str] = []
    text = _ASK_PHRASE.sub(" ", to_simplified(question).lower())
    # a quoted phrase (“十三五”, “走出办公室”) is a term as a whole, whatever its shape
    terms += [q for q in _QUOTED.findall(text) if len(q) >= 2 and CONTENT.search(q)]
    for word in jb.cut(text):
        word = word.strip()
        if not word or not CONTENT.search(word) or word in _NOISE or _COUNT.match(word):
            continue
        if word.isascii() or len(word) <= 2:
            terms.append(word)
        else:
            terms.extend(word[i : i + 2] for i in range(len(word) - 1))
    # interrogatives jieba glues into words (“哪一天”, “哪座”) say what is asked, not about what
    terms = [t for t in terms if not _INTERROGATIVE.search(t) and t not in _NOISE]
    return list(dict.fromkeys(terms))


@dataclass
class Candidate:
    passage_no: int  # 1-based
    start: int  # offsets within the passage's chunk text
    end: int
    text: str
    coverage: float
    score: float
    intent: float = 0.0  # the part of the score earned by holding the date/meeting asked for


class ExtractiveBackend(AnswerBackend):
    name = "extractive"
    streams = False

    def __init__(
        self,
        term_weight: TermWeight | None = None,
        embed_pair: EmbedPair | None = None,
        *,
        in_corpus: Callable[[str], bool] | None = None,
        translate: Callable[[str], list[list[str]]] | None = None,
        refuse_below: float | None = None,
        absent_refuse: float | None = None,
    ) -> None:
        self.term_weight = term_weight or (lambda term: 1.0)
        self.in_corpus = in_corpus
        self.translate = translate
        self.absent_refuse = ABSENT_REFUSE if absent_refuse is None else absent_refuse
        self.embed_pair = embed_pair
        self.refuse_below = REFUSE_BELOW if refuse_below is None else refuse_below

    # -- scoring -----------------------------------------------------------------
    def candidates(self, question: str, passages: Sequence[Passage]) -> list[Candidate]:
        grams = question_terms(question)
        weights = {g: self.term_weight(g) for g in grams}
        total = sum(weights.values())
        want_date = asks_date(question)
        want_who = asks_person(question)
        want_meeting = asks_meeting(question)
        cross = is_english(question) and self.embed_pair is not None
        groups = [[g] for g in grams]
        if cross and self.translate is not None:
            # an English question: each word's Chinese translations (alternatives) stand
            # in for its terms; a group weighs as its rarest member
            groups = self.translate(question)
            weights = {
                str(i): max(self.term_weight(g) for g in grp) for i, grp in enumerate(groups)
            }
            total = sum(weights.values())
        located: list[tuple[int, Passage, int, int]] = []
        for no, p in enumerate(passages, start=1):
            located += [(no, p, s, e) for s, e in sentence_spans(p.chunk.text)]
        # English questions: dense similarity to each sentence (stored sentence vectors)
        sims = np.zeros(len(located))
        if cross and located:
            assert self.embed_pair is not None
            sims = np.asarray(
                self.embed_pair(question, [p.chunk.text[s:e] for _, p, s, e in located]),
                dtype=np.float64,
            )
        out: list[Candidate] = []
        for i, (no, p, s, e) in enumerate(located):
            sent = p.chunk.text[s:e]
            # the speech's title, speaker and section frame every sentence of the passage
            context = to_simplified(f"{p.meta.title} {p.meta.speaker} {p.chunk.section}").lower()
            simp = to_simplified(sent).lower() + " " + context
            lexical = (
                sum(w for grp, w in zip(groups, weights.values(), strict=True)
                    if any(g in simp for g in grp)) / total
                if total
                else 0.0
            )  # fmt: skip
            coverage = float(sims[i]) + ENGLISH_LEXICAL * lexical if cross else lexical
            # a date or a meeting is visible in the sentence itself; a person asked for
            # may be anyone, so naming the speaker earns a boost but sets no bar
            when_where = 0.0
            if want_date and _DATE.search(sent):
                when_where += INTENT_BOOST
            if want_meeting and _MEETING.search(sent):
                when_where += INTENT_BOOST / 2
            boost = when_where
            if want_who and ((p.meta.speaker and p.meta.speaker in sent) or names_person(sent)):
                boost += INTENT_BOOST
            score = coverage + boost + RANK_PRIOR / no
            out.append(Candidate(no, s, e, sent, coverage + boost, score, when_where))
        out.sort(key=lambda c: (-c.score, c.passage_no, c.start))
        return out

    def answerability(self, question: str, passages: Sequence[Passage]) -> float:
        """Share of the question's weighted terms found in the best passage (with its
        speech's title, speaker and section): low when the question asks about
        something the retrieved speeches never mention."""
        terms = question_terms(question)
        weights = {t: self.term_weight(t) for t in terms}
        total = sum(weights.values())
        if not total or not passages:
            return 0.0
        hays = [
            to_simplified(
                f"{p.meta.title} {p.meta.speaker} {p.meta.occasion} {p.chunk.section} {p.chunk.text}"
            ).lower()
            for p in passages[:ANSWERABILITY_DEPTH]
        ]
        if asks_across(question, (p.meta.speaker for p in passages)):
            hays = [" ".join(hays)]  # the answer is spread over several speeches
        return max(sum(w for t, w in weights.items() if t in hay) / total for hay in hays)

    def absent_share(self, question: str) -> float:
        """Share of the question's Chinese terms that occur nowhere in the indexed speeches
        (“2023年”, “乡村振兴”): a question built on them is about something else."""
        if self.in_corpus is None:
            return 0.0
        terms = [t for t in question_terms(question) if len(t) >= 2 and has_han(t)]
        if not terms:
            return 0.0
        return sum(1 for t in terms if not self.in_corpus(t)) / len(terms)

    def should_refuse(self, question: str, passages: Sequence[Passage]) -> bool:
        if is_english(question):
            return False  # English questions: no lexical evidence either way; cite or refuse later
        return (
            self.absent_share(question) >= self.absent_refuse
            or self.answerability(question, passages) < self.refuse_below
        )

    # -- composing ---------------------------------------------------------------
    def _enumeration(
        self, best: Candidate, passages: Sequence[Passage]
    ) -> list[tuple[int, int, int]]:
        """The items (passage_no, start, end) of the enumeration ``best`` opens, belongs
        to, or announces.

        Items are followed by their numbering, not by their distance: from item one of
        the run (“一是”, “一要”, “（一）”, “第一”…) on through two, three… of the same
        kind, over any follow-on sentences between them, until the numbering breaks
        (another list of the same kind starts) or the text ends. Items of another
        kind in between are sub-items and are passed over. ``best`` announces a list
        when the list starts right after it (“…提供保障。一是…”), when it is a lead-in
        (“提出三点要求：”, “…有以下几个方面”), or when only lead-ins stand between; a
        section heading alone announces the list its section opens with. The text read
        is ``best``'s passage joined with the retrieved passages that continue it in
        the speech, so a list that runs over a chunk boundary is read whole."""
        seq, gap = _reading_order(best.passage_no, passages)
        try:
            idx = seq.index((best.passage_no, best.start, best.end))
        except ValueError:
            return []
        texts = [passages[no - 1].chunk.text[s:e] for no, s, e in seq]
        marks = [enum_item(t) for t in texts]
        mark = marks[idx]
        if mark is not None:
            family, number = mark
            first = idx
            for j in range(idx - 1, -1, -1):  # back to item one of this run
                if number <= 1:
                    break
                if marks[j] == (family, number - 1):
                    first, number = j, number - 1
                elif marks[j] is not None and marks[j][0] == family:  # type: ignore[index]
                    break
            items = _numbered_run(marks, first)
            if family not in HEADING_FAMILIES:
                return [seq[i] for i in items] if len(items) >= 2 else []
            if len(items) >= 2 and number == 1:
                return [seq[i] for i in items]
            # a section heading without its siblings from item one (“三、加强领导,…”)
            # announces the list its section opens with: one whose item one follows
            # within LOOKAHEAD sentences
        own = mark[0] if mark is not None else None  # a heading's list is of another kind
        ones = [j for j in range(idx + 1, gap)
                if (m := marks[j]) is not None and m[1] == 1 and m[0] != own]  # fmt: skip
        if not ones:
            return []
        first = ones[0]
        if mark is not None:
            near = first - idx <= LOOKAHEAD
        else:
            near = first - idx <= LOOKAHEAD and _leads_into(texts, idx, first)
        if not near and not is_lead_in(texts[idx]):
            return []
        items = _numbered_run(marks, first)
        return [seq[i] for i in items] if len(items) >= 2 else []

    @staticmethod
    def _holds(
        expect: Expectation,
        chosen: Sequence[tuple[int, int, int] | Candidate],
        passages: Sequence[Passage],
    ) -> bool:
        for item in chosen:
            no, start, end = (
                (item.passage_no, item.start, item.end) if isinstance(item, Candidate) else item
            )
            text = passages[no - 1].chunk.text
            if expect.held_by(text[start:end], text[end : end + 60]):
                return True
        return False

    def _per_speech(
        self, cands: Sequence[Candidate], passages: Sequence[Passage]
    ) -> list[tuple[int, int, int]]:
        """For a question across speeches: the best sentence of each speech that comes
        close enough to the best one overall."""
        best = cands[0]
        seen: set[str] = set()
        chosen: list[tuple[int, int, int]] = []
        for c in cands:
            doc = passages[c.passage_no - 1].chunk.doc_id
            if doc in seen or c.score < CROSS_DOC_KEEP * best.score:
                continue
            seen.add(doc)
            chosen.append((c.passage_no, c.start, c.end))
            if len(chosen) >= MAX_SPEECHES:
                break
        return chosen if len(chosen) >= 2 else []

    def compose(self, request: AnswerRequest) -> Draft:
        question = request.search_query or request.question
        lang = request.language if request.language in REFUSAL else "zh-hans"
        cands = self.candidates(question, request.passages)
        if not cands or self.should_refuse(question, request.passages):
            return Draft(text=REFUSAL[lang], refused=True, model=self.name)
        heads = _headings(question, cands)
        if heads and len(heads) < len(cands):  # what the named part says, before its heading
            cands = [c for c in cands if id(c) not in heads] + [c for c in cands if id(c) in heads]
        best = cands[0]
        chosen: list[tuple[int, int, int]] = []  # (passage_no, start, end)
        if asks_across(question, (p.meta.speaker for p in request.passages)):
            chosen = self._per_speech(cands, request.passages)
        if not chosen and asks_list(question):
            # the best sentence's list; else the list of a close candidate (the best
            # sentence is often the general statement that precedes the items)
            close = [c for c in cands[1:LIST_DEPTH] if c.coverage >= LIST_KEEP * best.coverage]
            for c in [best, *(c for c in close if id(c) not in heads)]:
                items = self._enumeration(c, request.passages) or _series(c, request.passages)
                if items:
                    best, chosen = c, items
                    break
        expect = expectation(question)
        listed = expect is not None and expect.kind == "members" and len(chosen) >= 2
        if (
            expect is not None
            and not listed
            and not self._holds(expect, chosen or [best], request.passages)
        ):
            # the best sentence only mentions what is asked: take a close candidate that
            # holds the kind of answer asked for (a day, a number, the group's members…)
            alt = next(
                (c for c in cands[1:EXPECT_DEPTH]
                 if c.coverage >= EXPECT_KEEP * best.coverage
                 and self._holds(expect, [c], request.passages)),
                None,
            )  # fmt: skip
            if alt is None:
                return Draft(text=REFUSAL[lang], refused=True, model=self.name)
            best, chosen = alt, []
            if asks_list(question):
                chosen = self._enumeration(best, request.passages)
        if not chosen:
            chosen = [(best.passage_no, best.start, best.end)]
            for c in cands[1:]:
                if len(chosen) >= MAX_SENTENCES or c.score < best.score - KEEP_MARGIN:
                    break
                if c.intent < best.intent or id(c) in heads:
                    continue  # the best holds the date (meeting) asked for / a heading of the part
                if not _overlaps(chosen, c):
                    chosen.append((c.passage_no, c.start, c.end))
        chosen.sort(key=lambda t: (t[0] != best.passage_no, t[0], t[1]))
        lines: list[str] = []
        if lang == "en":
            lines.append(LEAD_IN_EN)
        current_doc = None
        for no, s, e in chosen:
            passage = request.passages[no - 1]
            if passage.chunk.doc_id != current_doc:  # say whose words follow
                current_doc = passage.chunk.doc_id
                lines.append(_attribution(passage, lang))
            lines.append(insert_markers(passage.chunk.text[s:e], f"[{no}]"))
        body = "\n".join(lines)
        return Draft(text=body, model=self.name)

    def generate(self, request: AnswerRequest, on_token: TokenCallback | None = None) -> Draft:
        draft = self.compose(request)
        if on_token is not None:
            on_token(draft.text)
        return draft


def _attribution(passage: Passage, lang: str) -> str:
    m = passage.meta
    title = m.title or passage.chunk.doc_id
    who = "，".join(x for x in (m.speaker, m.date) if x)
    if lang == "en":
        return f"From «{title}»" + (f" ({who})" if who else "") + ":"
    return f"《{title}》" + (f"（{who}）" if who else "") + "："


_CLAUSE_END = ("；", ";")
_OPENS = re.compile(r"[：:]")


def _series(best: Candidate, passages: Sequence[Passage]) -> list[tuple[int, int, int]]:
    """The clauses of the unnumbered list ``best`` belongs to: a colon that opens it,
    then items each closed by a semicolon, up to the sentence that ends the list
    (“具体表现在：思想认识还有待提高…；推进工作不够平衡…；工作推动还缺乏有效抓手…。”),
    all in one paragraph; [] when ``best`` is not in such a list."""
    text = passages[best.passage_no - 1].chunk.text
    spans = sentence_spans(text)
    try:
        idx = spans.index((best.start, best.end))
    except ValueError:
        return []

    def joined(i: int) -> bool:  # sentence i ends with a semicolon, i + 1 goes on the line
        s, e = spans[i]
        return text[s:e].endswith(_CLAUSE_END) and "\n" not in text[e : spans[i + 1][0]]

    first = idx
    while first > 0 and joined(first - 1):
        first -= 1
    last = idx
    while last + 1 < len(spans) and joined(last):
        last += 1
    if last == first or not _OPENS.search(text[spans[first][0] : spans[first][1]]):
        return []
    return [(best.passage_no, s, e) for s, e in spans[first : last + 1]][:MAX_LIST_ITEMS]


def _numbered_run(marks: Sequence[tuple[str, int] | None], first: int) -> list[int]:
    """Item ``first`` and the next numbers of its kind after it (sentence indexes),
    over sentences of other kinds (sub-items, follow-on sentences), until the numbering
    starts again (another list) or MAX_LIST_ITEMS are in."""
    family, number = marks[first]  # type: ignore[misc]
    items = [first]
    for j in range(first + 1, len(marks)):
        if len(items) >= MAX_LIST_ITEMS:
            break
        m = marks[j]
        if m == (family, number + 1):
            items.append(j)
            number += 1
        elif m is not None and m[0] == family:
            break  # the numbering starts again: another list
    return items


def _leads_into(texts: Sequence[str], idx: int, first: int) -> bool:
    """Whether sentence ``idx`` announces the list starting at sentence ``first``: the
    list starts right after it with its first item (“…提供保障。一是…”), or it is a
    lead-in itself (“提出三点要求：”), or only lead-ins stand between (“…。他要求，”)."""
    between = [is_lead_in(t) for t in texts[idx + 1 : first]]
    if between:
        return all(between)
    item = enum_item(texts[first])
    return (item is not None and item[1] == 1) or is_lead_in(texts[idx])


def _reading_order(no: int, passages: Sequence[Passage]) -> tuple[list[tuple[int, int, int]], int]:
    """The sentences (passage_no, start, end) of passage ``no`` in speech order, joined
    with those of the retrieved passages that continue it before and after (same speech,
    adjacent or overlapping, same top section), a sentence two passages share read once;
    then those of the retrieved passages further on in the same top section, after a
    gap of text not retrieved. Also where that gap is (an index into the sentences): a
    list may run on over the gap by its numbering (“五是…” … “六是…”), but nothing
    after it is near enough to be announced."""
    base = passages[no - 1].chunk
    seq = [(no, s, e) for s, e in sentence_spans(base.text)]
    used = {no}
    lo, hi = base.start, base.end

    def joining(after: bool) -> int | None:
        for j, p in enumerate(passages, start=1):
            c = p.chunk
            if j in used or c.doc_id != base.doc_id or c.section_path[:1] != base.section_path[:1]:
                continue
            if after and c.start <= hi < c.end:
                return j
            if not after and c.start < lo <= c.end:
                return j
        return None

    while (j := joining(after=True)) is not None:
        c = passages[j - 1].chunk
        seq += [(j, s, e) for s, e in sentence_spans(c.text) if c.start + s >= hi]
        used.add(j)
        hi = c.end
    while (j := joining(after=False)) is not None:
        c = passages[j - 1].chunk
        seq = [(j, s, e) for s, e in sentence_spans(c.text) if c.start + e <= lo] + seq
        used.add(j)
        lo = c.start
    gap = len(seq)
    later = sorted(
        (p.chunk.start, j)
        for j, p in enumerate(passages, start=1)
        if j not in used
        and p.chunk.doc_id == base.doc_id
        and p.chunk.section_path[:1] == base.section_path[:1]
        and p.chunk.start >= hi
    )
    for _, j in later:
        c = passages[j - 1].chunk
        seq += [(j, s, e) for s, e in sentence_spans(c.text) if c.start + s >= hi]
        hi = max(hi, c.end)
    return seq, gap


# “在加强党对群团工作领导的部分，…”, “讲到同步建设党群阵地时，…”: the question names the
# part of the speech it asks about
_SCOPE = re.compile(
    r"(?:在|讲到|谈到|说到|论及|关于)[“\"「]?([^，,。？?“”「」]{2,24}?)[”\"」]?"
    r"(?:这一部分|这部分|部分|一节|时|的时候)[，,]?"
)
SCOPE_MATCH = 0.6  # share of the named part's bigrams a sentence must hold to be its heading


def _headings(question: str, cands: list[Candidate]) -> set[int]:
    """A question that names a part of the speech asks about what that part says, not
    for the part's own heading: the ids of the candidates that merely restate the named
    part (its heading, or the list item that opens it)."""
    m = _SCOPE.search(to_simplified(question))
    if not m:
        return set()
    scope = m.group(1)
    grams = {scope[i : i + 2] for i in range(len(scope) - 1)}
    if len(grams) < 2:
        return set()

    def heading(c: Candidate) -> bool:
        text = to_simplified(c.text)
        return (
            sum(g in text for g in grams) / len(grams) >= SCOPE_MATCH
            and len(text) < 3 * len(scope) + 12
        )

    return {id(c) for c in cands if heading(c)}


def _overlaps(chosen: list[tuple[int, int, int]], c: Candidate) -> bool:
    return any(no == c.passage_no and s < c.end and c.start < e for no, s, e in chosen)


def idf_weights(doc_freq: Callable[[str], int], n_docs: Callable[[], int]) -> TermWeight:
    """Turn a document-frequency lookup into a BM25-style idf weight (absent terms weigh
    most); ``n_docs`` is asked each time, so the weights follow a growing index."""

    def weight(term: str) -> float:
        df = doc_freq(term)
        n = n_docs()
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    return weight
