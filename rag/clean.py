"""Boilerplate removal and speech metadata: decoded text → ``Document``.

The speeches arrive wrapped in whatever page they were scraped from: banners,
breadcrumbs, counters, share links, related-article lists, copyright and
contact lines. Removing them must never cost a character of the speech, so
the rules work on whole lines and lean on three kinds of evidence:

* line shape — a short line built from labels and colons, separators, URLs,
  phone numbers, dates or bullets (``_shape_flag``);
* position — the speech body is the run of long prose paragraphs; short lines
  far before or after it are page furniture, while the speech header (title,
  speaker line, dated line, editor's note) sits just before it;
* repetition — a page title repeated at the top keeps one copy, and a line
  outside the body that other documents also contain is site furniture.

Lines keep their characters (script and punctuation untouched; only leading
and trailing whitespace goes) because chunk offsets and verbatim citations
refer to this text. Matching runs on a simplified copy of each line, which has
the same length, so a match's span slices the original directly.

An editor's note (``按:12月15日下午,…``) is kept: it introduces the speech,
is often the only place that gives its date, occasion and the speaker's posts,
and questions about those should be answerable from the text.

Metadata (title, speaker, date, occasion, site) is read by rules from the
same lines, including the boilerplate ones (the page's publication date and
site name live there); a sidecar ``<file>.meta.json`` overrides any field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag.load import RawFile
from rag.types import DocMeta, Document
from zh.script import detect_script, to_simplified
from zh.text import HAN, SENTENCE_END, cn_number

__all__ = ["clean_document"]

# Set by reading the scraped pages' furniture, not swept; tests/test_clean.py checks that
# each bundled speech keeps its body verbatim from first to last sentence and loses its furniture.
MAX_BOILERPLATE_LEN = 250  # no shape rule ever touches a longer line: those are paragraphs
PROSE_MIN_HAN = 20  # a prose paragraph has at least this many Han characters ...
MAX_GAP = 3  # ... and body paragraphs are at most this many short lines apart
MIN_CLUSTER_SHARE = 0.1  # prose runs lighter than this share of the main one are not body
LABEL_MAX_HAN = 6  # a short label outside the body ("系统传真", "资源描述")

_CLAUSE_PUNCT = re.compile(r"[，,。；;！!？?]")
_SENTENCE_ENDS = tuple(SENTENCE_END + "：:")  # a line ending so is a sentence or a lead-in
_END_PUNCT = re.compile(r"[。！!？?…”」』)）]$")
_POSTS = (
    r"(?:副?书记|副?主席|副?部长|副?市长|副?省长|副?县长|副?区长|副?主任|局长|厅长|会长|秘书长|"
    r"委员|常委|组长|巡视员|总经理|董事长|校长|院长|理事长|团长)"
)
_NUM = r"[\d〇零一二三四五六七八九十]"
_DATE_LINE = re.compile(
    rf"^[(（]?\s*(?P<y>{_NUM}{{4}})\s*年\s*(?P<m>{_NUM}{{1,3}})\s*月\s*(?P<d>{_NUM}{{1,3}})\s*日\s*[)）]?$"
)
_SPEAKER_LINE = re.compile(rf"^\S.{{0,40}}?{_POSTS}\s+(?P<name>[\u4e00-\u9fff]{{2,4}})$")
_NAME_ONLY = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
_EDITOR_NOTE = re.compile(r"^[【\[]?\s*(?:编者)?按\s*[】\]:：]")
_SPEECH_WORDS = re.compile(r"讲话|致辞|发言|报告|演讲|座谈会|会议|大会|召开")
_PAGE_COUNTER = r"第\s*\d+\s*页\s*(?:[/／,，]\s*)?共\s*\d+\s*页"
_GLUED_COUNTER = re.compile(rf"\s*{_PAGE_COUNTER}\s*$")
_FILE_NAME = re.compile(r"^(?P<stem>[^\s/\\]{1,80})\.(?:docx?|pdf|pptx?|xlsx?|txt|wps|rtf)$", re.I)
_META_LABEL = (
    r"(?:(?:文章|信息|新闻)?来源|出处|作者|点击数?|点击量|浏览(?:次数|量)?|阅读(?:数|次数|量)|"
    r"(?:发布|发表|更新|加入|上传)(?:时间|日期)|稿源(?:时间)?|时间|日期|(?:责任)?编辑|"
    r"上传人|上传者|文档编号|格式|页数|大小|字号)"
)
_META_START = re.compile(rf"^[\[【(（]?\s*{_META_LABEL}\s*(?:[:：]|\d)")
_META_ANY = re.compile(rf"{_META_LABEL}\s*(?:[:：]|\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|cn|net|org)\b", re.I)
_PHONE = re.compile(r"(?<!\d)(?:\d{3,4}[-－]\d{7,8}|1[3-9]\d{9}|400[-\s]?\d{3}[-\s]?\d{4})(?!\d)")
_CONTACT_LABEL = re.compile(
    r"电话|热线|邮箱|信箱|e-?mail|传真|地址|邮编|qq|微信|微博|投稿|联系|客服", re.I
)
_BREADCRUMB_SEP = re.compile(r"\s*(?:>|›|»|＞|→|\||｜)\s*")
_BULLET = re.compile(r"^[·•●◆◇■□▪▫◦‧・►▶]")

# (reason, pattern) pairs matched against the simplified, stripped line.
_SHAPE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.I))
    for reason, pattern in (
        ("HTTP status", r"^(?:http/\d(?:\.\d)?\s+)?[1-5]\d\d\s+[a-z][a-z ]{2,40}$"),
        ("server banner", r"^[a-z][\w.-]*/\d+(?:\.\d+)+(?:\s*\(.*\))?$"),
        ("breadcrumb", r"^(?:您)?(?:当前|现在|所在)?(?:的)?位置\s*[:：]"),
        (
            "site banner",
            r"^欢迎(?:光临|访问|来到|进入|登录)[^，,。；;]{0,30}(?:网|站|在线|平台|主页|首页|门户)[!！。]?$",
        ),
        (
            "date stamp",
            r"^[\[(（【]?\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?[\])）】]?$",
        ),
        ("share links", r"^(?:分享|转发|转载)(?:到|至)?\s*[:：]|^(?:分享到|转发到)"),
        (
            "comment prompt",
            r"发表评论|网友评论|我要评论|我要注册|查看评论|评论须知|"
            r"复制本文|复制链接|打印本页|打印本文|关闭窗口|返回顶部|加入收藏|设为首页",
        ),
        (
            "link menu",
            r"^(?:\[[^\]]{1,16}\]\s*){2,}$|^[\u4e00-\u9fff]{1,4}(?:\s+[\u4e00-\u9fff]{1,4}){2,}$",
        ),
        (
            "related links",
            r"^(?:相关|最新|热门|推荐|延伸|精彩|热点)(?:稿件|文章|新闻|阅读|链接|资源|搜索|"
            r"推荐|专题|文档|更新|排行|报道)\W*$|^(?:展开阅读全文|阅读全文|点击查看更多|"
            r"查看更多|猜你喜欢|资源描述|正为您匹配|上一篇|下一篇)",
        ),
        ("more link", r"^.{0,16}更多\s*(?:\.{2,}|…+|>>|»|＞＞|>)?\s*$"),
        ("page counter", rf"^{_PAGE_COUNTER}$|^共\s*\d+\s*页|_第\s*\d+\s*页$"),
        ("file name", _FILE_NAME.pattern),
        ("copyright", r"copyright|版权所有|all rights reserved|©"),
        ("registration", r"icp\s*[备证]?\s*\d|备案号|公网安备|增值电信业务"),
        (
            "site notice",
            r"^(?:本站|本网站|本平台|本网(?!格)|免责声明|声明\s*[:：])|仅代表作者|不代表本(?:站|网)|"
            r"转载请注明|未经(?:授权|许可)\S{0,6}(?:转载|复制)|提供新闻线索|欢迎投稿|积极投稿",
        ),
        ("summary", r"^[【\[]\s*(?:摘要|导读|提要|核心提示|内容提要)\s*[】\]]"),
        ("truncated headline", r"^[·•●◆◇■□▪▫◦‧・►▶].*(?:\.{3}|…)$"),
    )
)


@dataclass
class _Line:
    text: str  # original characters, stripped
    simple: str  # simplified copy, same length
    flag: str = ""  # why the line is boilerplate by shape ("" = not)
    keep: bool = False


def _strip(line: str) -> str:
    return line.strip().strip("\u200b\ufeff").strip()


def line_set(text: str) -> set[str]:
    """A text's distinct non-empty stripped lines: what a batch counts to find the
    lines several documents share."""
    return {_strip(ln) for ln in text.split("\n")} - {""}


def _han(text: str) -> int:
    return len(HAN.findall(text))


def _is_prose(line: _Line) -> bool:
    return _han(line.simple) >= PROSE_MIN_HAN and bool(_CLAUSE_PUNCT.search(line.simple))


def _shape_flag(s: str) -> str:
    """Why a line (simplified, stripped) is boilerplate by its shape alone, or ""."""
    if not HAN.search(s) and not re.search(r"[A-Za-z]", s):
        return "no text"
    if len(s) > MAX_BOILERPLATE_LEN:
        return ""
    for reason, pattern in _SHAPE_RULES:
        if pattern.search(s):
            return reason
    if (_META_START.search(s) and len(s) <= 100) or len(_META_ANY.findall(s)) >= 2:
        return "metadata field"
    parts = _BREADCRUMB_SEP.split(s)
    if len(parts) >= 3 and len(s) <= 80 and all(len(p) <= 12 for p in parts):
        return "breadcrumb"
    has_contact = bool(_EMAIL.search(s) or _URL.search(s) or _PHONE.search(s))
    if has_contact and (_CONTACT_LABEL.search(s) or len(s) <= 40):
        return "contact"
    return ""


def _weak_flag(line: _Line) -> bool:
    """Shapes that are furniture outside the body but may be speech inside it."""
    s = line.simple
    if _BULLET.match(s) or not HAN.search(s):
        return True
    return _han(s) <= LABEL_MAX_HAN and not _CLAUSE_PUNCT.search(s) and not _DATE_LINE.match(s)


def _is_header(line: _Line) -> bool:
    """Lines that belong to a speech's header: title, speaker, date, note, salutation."""
    s = line.simple
    return bool(
        _DATE_LINE.match(s)
        or _SPEAKER_LINE.match(s)
        or _EDITOR_NOTE.match(s)
        or s.endswith((":", "："))
        or _END_PUNCT.search(s)
        or _SPEECH_WORDS.search(s)
        or (_han(s) >= LABEL_MAX_HAN and not _weak_flag(line))
    )


def _speech_header(s: str) -> bool:
    """Header lines that a duplicate of the same speech elsewhere would share."""
    return bool(
        _SPEECH_WORDS.search(s)
        or _DATE_LINE.match(s)
        or _SPEAKER_LINE.match(s)
        or _EDITOR_NOTE.match(s)
    )


def _body_span(lines: list[_Line]) -> tuple[int, int] | None:
    """First and last index of the speech body: the heaviest runs of prose paragraphs."""
    clusters: list[list[int]] = []
    gap = MAX_GAP + 1
    for i, line in enumerate(lines):
        if line.flag:
            continue
        if _is_prose(line):
            if gap > MAX_GAP or not clusters:
                clusters.append([])
            clusters[-1].append(i)
            gap = 0
        else:
            gap += 1
    if not clusters:
        return None
    weights = [sum(_han(lines[i].simple) for i in c) for c in clusters]
    heavy = [
        c for c, w in zip(clusters, weights, strict=True) if w >= MIN_CLUSTER_SHARE * max(weights)
    ]
    return heavy[0][0], heavy[-1][-1]


def _select(lines: list[_Line], others: set[str]) -> None:
    """Decide ``keep`` for every line from its flag, its position and repetition."""
    span = _body_span(lines)
    if span is None:  # no prose at all: only the shape rules apply
        for line in lines:
            line.keep = not line.flag
        return
    start, end = span
    first_seen: dict[str, int] = {}
    contiguous = True  # footer lines still touching the body
    for i, line in enumerate(lines):
        first = first_seen.setdefault(line.text, i)
        if line.flag:
            contiguous = contiguous and i < end
            continue
        # a page title repeated anywhere goes; a repeated sentence inside the body stays
        repeated = first < i and (
            i < start or i > end or (first < start and not line.simple.endswith(_SENTENCE_ENDS))
        )
        foreign = line.text in others and not _speech_header(line.simple)
        if repeated:
            line.keep = False
        elif start <= i <= end:
            line.keep = True
        elif i < start:
            line.keep = not foreign and (_is_header(line) or _names_header(lines, i))
        else:
            closing = contiguous and _is_header(line)  # "谢谢大家！", "注：…", a dateline
            line.keep = not foreign and (_is_prose(line) or closing)
            contiguous = contiguous and line.keep


def _names_header(lines: list[_Line], i: int) -> bool:
    """A bare 2–4 character name right after a title or right before a dated line."""
    if not _NAME_ONLY.match(lines[i].simple):
        return False
    prev = next((ln for ln in reversed(lines[:i]) if not ln.flag), None)
    nxt = next((ln for ln in lines[i + 1 :] if not ln.flag), None)
    return bool(
        (prev and prev.keep and _han(prev.simple) > LABEL_MAX_HAN)
        or (nxt and _DATE_LINE.match(nxt.simple))
    )


def _split_lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _strip(raw)
        if not line:
            continue
        simple = to_simplified(line)
        glued = _GLUED_COUNTER.search(simple)
        if glued and glued.start() > 0:  # "…给大家服好务。第 6 页 共 6 页"
            line, simple = _strip(line[: glued.start()]), _strip(simple[: glued.start()])
        out.append(_Line(line, simple, _shape_flag(simple)))
    return out


# -- metadata ----------------------------------------------------------------

_TITLE_OCCASION = re.compile(r"在(?P<occ>.+?)上的(?:重要|总结|主旨)?(?:讲话|发言|致辞|报告|演讲)")
# a meeting word; a bare 会 only where it does not end 社会, 机会, 工会, 协会 …
_MEETING = r"(?:会议|座谈会|大会|全会|(?<![社机学协工体理都宴])会(?![长员]))"
_TITLE_OCCASION_BARE = re.compile(rf"^(?P<occ>.+?{_MEETING})上?的(?:讲话|发言|致辞|报告)")
_OCC_CHARS = r"[^\s，。,;；：:！!？?、]"
_HELD_AT = re.compile(rf"(?P<occ>{_OCC_CHARS}{{2,30}}?{_MEETING})在[^，。,]{{1,12}}召开")
_CONVENED = re.compile(
    rf"召开(?:了)?(?P<occ>{_OCC_CHARS}{{2,30}}?{_MEETING})(?!{_OCC_CHARS}*{_MEETING})"
)
_REPORTED = re.compile(
    r"^(?P<name>[\u4e00-\u9fff]{2,3}?)(?:同志)?(?:在[^，。,]{1,15}上)?(?:说|説|强调|指出|要求|表示)"
)
_POST_NAME = re.compile(
    rf"{_POSTS}(?P<name>[\u4e00-\u9fff]{{2,3}}?)同志[^，。,]{{0,12}}讲话"
    rf"|{_POSTS}(?P<name2>[\u4e00-\u9fff]{{2,3}})(?:作|发表)?(?:重要)?讲话"
)
_NOT_NAMES = re.compile(
    rf"^[一二三四五六七八九十第各全本该这那我他她你要在对同大会]|们|{_POSTS}|总理|领导|中央|省委|市委|讲话"
)
# The page's publication date. An upload date ("上传时间" on document-sharing sites)
# is when someone re-posted a file of unknown age, so it is not taken as the date.
_PAGE_DATE = re.compile(
    r"(?<!上传)(?:发布|发表|稿源|加入|更新)?(?:时间|日期)\s*[:：]?\s*(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})"
)
_STAMP_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_MONTH_DAY = re.compile(r"(\d{1,2})月(\d{1,2})日")
_DATELINE = re.compile(r"(\d{1,2})月(\d{1,2})日(?=电|讯)")  # news dateline "9月2日讯"
_SITE_RULES: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?:文章|信息|新闻)?来源\s*[:：]\s*(?P<v>[^\s:：|]{2,20})"),
    re.compile(r"^欢迎(?:光临|访问|来到|进入)\s*(?P<v>[^\s!！。,，]{2,20}?)[!！。]?$"),
    re.compile(r"(?P<v>[^\s\d@.:：,，]{2,20}?)版权所有"),
    re.compile(r"位置\s*[:：]\s*(?!首页|主页|网站首页)(?P<v>[^>›»\s]{2,20})"),
    re.compile(r"为(?P<v>[^\s，,。]{2,20}?)提供新闻线索"),
)
_TITLE_SEP = re.compile(r"\s*[_|｜]\s*|\s+[-–—]\s+")


def _iso(y: int, m: int, d: int) -> str:
    return f"{y:04d}-{m:02d}-{d:02d}" if 1 <= m <= 12 and 1 <= d <= 31 else ""


def _extract_meta(lines: list[_Line]) -> DocMeta:
    kept = [ln for ln in lines if ln.keep]
    body_start = next((i for i, ln in enumerate(kept) if _is_prose(ln)), len(kept))
    header = kept[:body_start]
    intro = kept[body_start : body_start + 3]
    title, title_site = _title(lines, header)
    return DocMeta(
        title=title,
        speaker=_speaker(to_simplified(title), title, header, kept),
        date=_date(lines, header, kept, intro),
        occasion=_occasion(title, intro),
        site=_site(lines) or title_site,
        script=detect_script("\n".join(ln.text for ln in kept)),
    )


def _title(lines: list[_Line], header: list[_Line]) -> tuple[str, str]:
    """The best title line, and the site name when it ends "标题_站名" (an HTML title)."""
    counts = Counter(ln.text for ln in lines)
    best, best_score = "", -1
    candidates = [
        (ln.text, ln.simple)
        for ln in header
        if not (
            _DATE_LINE.match(ln.simple)
            or _SPEAKER_LINE.match(ln.simple)
            or _EDITOR_NOTE.match(ln.simple)
            or _weak_flag(ln)
            or ln.simple.endswith(_SENTENCE_ENDS)
        )
    ]  # sentences, salutations
    for ln in lines:
        m = _FILE_NAME.match(ln.simple) if ln.flag == "file name" else None
        if m:
            candidates.insert(0, (ln.text[: m.end("stem")], m.group("stem")))
    for text, simple in candidates:
        score = (
            2 * bool(_SPEECH_WORDS.search(simple))
            + bool(_TITLE_OCCASION.search(simple))
            + (counts[text] > 1)
        )
        if score > best_score:
            best, best_score = text, score
    parts = _TITLE_SEP.split(best)
    return (max(parts, key=len), parts[-1]) if len(parts) > 1 else (best, "")


def _speaker(simple_title: str, title: str, header: list[_Line], kept: list[_Line]) -> str:
    for ln in header:
        m = _SPEAKER_LINE.match(ln.simple)
        if m:
            return ln.text[m.start("name") : m.end("name")]
    m = _TITLE_OCCASION.search(simple_title)
    if m:
        prefix = simple_title[: m.start()].removesuffix("同志")
        prefix = re.sub(rf"(?:{_POSTS})+$", "", prefix).removesuffix("同志")
        name = re.split(_POSTS, prefix)[-1]
        if _NAME_ONLY.match(name) and not _NOT_NAMES.search(name):
            at = prefix.rfind(name)
            return title[at : at + len(name)]
    votes: Counter[str] = Counter()
    for ln in kept:
        reported = _REPORTED.match(ln.simple)
        if reported:
            votes[ln.text[: len(reported.group("name"))]] += 1
        for hit in _POST_NAME.finditer(ln.simple):
            group = "name" if hit.group("name") else "name2"
            votes[ln.text[hit.start(group) : hit.end(group)]] += 2
    names = [(n, c) for n, c in votes.most_common() if not _NOT_NAMES.search(to_simplified(n))]
    return names[0][0] if names else ""


def _date(lines: list[_Line], header: list[_Line], kept: list[_Line], intro: list[_Line]) -> str:
    for ln in header + kept[-3:]:
        m = _DATE_LINE.match(ln.simple)
        if m:
            iso = _iso(*(cn_number(m.group(k), positional=True) for k in "ymd"))
            if iso:
                return iso
    page = None
    for ln in (ln for ln in lines if ln.flag):  # the page's own fields are boilerplate lines
        m = _PAGE_DATE.search(ln.simple) or (
            _STAMP_DATE.search(ln.simple) if ln.flag == "date stamp" else None
        )
        if m:
            page = tuple(int(g) for g in m.groups())
            break
    for ln in header + intro:
        rule = _MONTH_DAY if _EDITOR_NOTE.match(ln.simple) else _DATELINE
        m = rule.search(ln.simple)
        if m:
            month, day = int(m.group(1)), int(m.group(2))
            if page is None:  # no trustworthy year: keep it as written
                return m.group(0)
            year = page[0] if (month, day) <= (page[1], page[2]) else page[0] - 1
            return _iso(year, month, day) or _iso(*page)
    return _iso(*page) if page else ""


def _occasion(title: str, intro: list[_Line]) -> str:
    simple = to_simplified(title)
    for rule in (_TITLE_OCCASION, _TITLE_OCCASION_BARE):
        m = rule.search(simple)
        if m:
            return title[m.start("occ") : m.end("occ")]
    for rule in (_HELD_AT, _CONVENED):
        for ln in intro:
            m = rule.search(ln.simple)
            if m:
                return ln.text[m.start("occ") : m.end("occ")]
    m = _CONVENED.search(simple)
    return title[m.start("occ") : m.end("occ")] if m else ""


def _site(lines: list[_Line]) -> str:
    for rule in _SITE_RULES:
        for ln in (ln for ln in lines if ln.flag):
            m = rule.search(ln.simple)
            if m:
                return ln.text[m.start("v") : m.end("v")]
    return ""


# -- public API --------------------------------------------------------------


def clean_document(
    raw: RawFile | str,
    *,
    doc_id: str,
    source: str,
    sidecar: dict[str, Any] | None = None,
    others: Sequence[str] = (),
) -> Document:
    """Strip page boilerplate from one decoded file and read its metadata.

    ``others`` holds lines (or whole texts) of the other documents in the
    batch: a line outside the speech body that they share is site furniture.
    ``sidecar`` values override the extracted metadata field by field.
    """
    if isinstance(raw, RawFile):
        text, sha = raw.text, raw.sha256
    else:
        text, sha = raw, hashlib.sha256(raw.encode("utf-8")).hexdigest()
    other_lines = {_strip(ln) for chunk in others for ln in chunk.split("\n")} - {""}
    lines = _split_lines(text)
    _select(lines, other_lines)
    meta = _extract_meta(lines)
    if sidecar:
        overrides = {k: str(v) for k, v in sidecar.items() if v is not None}
        meta = DocMeta.from_dict({**meta.to_dict(), **overrides})
        canonical = json.dumps(sidecar, sort_keys=True, ensure_ascii=False)
        sha = hashlib.sha256(f"{sha}\n{canonical}".encode()).hexdigest()
    cleaned = "\n".join(ln.text for ln in lines if ln.keep)
    return Document(doc_id=doc_id, source=source, text=cleaned, meta=meta, sha256=sha)
