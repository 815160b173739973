"""Chunker tests: properties on generated speeches, structure on the bundled speeches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunk import (
    CHUNKER_VERSION,
    SECTION_SEPARATOR,
    chunk_document,
    count_tokens,
)
from rag.types import Chunk, DocMeta, Document
from zh.script import to_simplified, to_traditional

CORPUS = Path(__file__).resolve().parent.parent / "rag" / "corpus"

# --------------------------------------------------------------------------------------
# Rough cleaning of the bundled speeches: keep the lines from the first speech line to
# the last one, drop blank lines and the page footer. (The real cleaner is tested on its
# own; the chunker only relies on "paragraphs separated by newlines".)
# --------------------------------------------------------------------------------------
_SPEECHES = {
    "000": (
        "魏小东同志在市委党的群团工作会议上的讲话",
        "这次会议的主要任务是",
        "同志们,做好新形势下",
    ),
    "001": (
        "在全省工青妇组织开展“下基层、接地气、办实事”活动视频会议上的讲话",
        "经省委、省政府主要领导同意",
        "同志们,工青妇是",
    ),
    "002": (
        "市级群团部门工作会的讲话",
        "市级群团部门工作会的讲话第一句话",
        "市级群团部门工作会的讲话第一句话",
    ),
    "003": ("山東省直機關召開黨的群團工作座談會", "齊魯網9月2日訊", "省直機關部分單位"),
    "004": (
        "翁鲁敏同志在全市党群共建创先争优座谈会上的讲话",
        "为深入贯彻落实全国党群共建",
        "党群共建创先争优给工会",
    ),
}


def rough_clean(prefix: str) -> Document:
    title, first, last = _SPEECHES[prefix]
    path = next(CORPUS.glob(f"{prefix}_*.txt"))
    lines = path.read_text(encoding="utf-8").splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith(first))
    j = next(k for k, line in enumerate(lines) if line.strip().startswith(last))
    text = "\n".join(line for line in lines[i : j + 1] if line.strip())
    text = text.replace("第 6 页 共 6 页", "")
    return Document(doc_id=path.stem, source=str(path), text=text, meta=DocMeta(title=title))


@pytest.fixture(scope="module")
def speeches() -> dict[str, Document]:
    return {prefix: rough_clean(prefix) for prefix in _SPEECHES}


def top_sections(doc: Document) -> list[str]:
    """With an unlimited budget every top-level section is exactly one chunk."""
    chunks = chunk_document(doc, max_tokens=1_000_000, overlap_tokens=0)
    assert all(len(c.section_path) == 1 for c in chunks)
    return [c.section for c in chunks]


def section_of(chunks: list[Chunk], phrase: str) -> str:
    return next(c.section for c in chunks if c.text.startswith(phrase))


def assert_well_formed(doc: Document, chunks: list[Chunk], max_tokens: int) -> None:
    covered = [False] * len(doc.text)
    for i, c in enumerate(chunks):
        assert c.chunk_id == f"{doc.doc_id}#{i}"
        assert c.doc_id == doc.doc_id
        assert doc.text[c.start : c.end] == c.text
        assert c.text and c.text == c.text.strip()
        assert count_tokens(c.text) <= max_tokens
        assert c.section_path and all(c.section_path)
        assert c.section == SECTION_SEPARATOR.join(c.section_path)
        assert c.index_text.endswith("\n" + c.text)
        for k in range(c.start, c.end):
            covered[k] = True
    missed = [k for k, ch in enumerate(doc.text) if not ch.isspace() and not covered[k]]
    assert not missed, f"uncovered characters at {missed[:5]}"
    for prev, cur in zip(chunks, chunks[1:], strict=False):
        assert prev.start < cur.start and prev.end <= cur.end


# --------------------------------------------------------------------------------------
# The bundled speeches
# --------------------------------------------------------------------------------------
def test_top_level_sections_000(speeches: dict[str, Document]) -> None:
    assert top_sections(speeches["000"]) == [
        "开头",
        "一、始终增强政治意识,切实把握正确方向",
        "二、始终坚持群众观点,切实改进工作作风",
        "三、始终保持先进特性,切实发挥群团作用",
        "四、始终加强自身建设,切实提升能力水平",
        "结尾",
    ]


def test_top_level_sections_001_trims_long_headings(speeches: dict[str, Document]) -> None:
    assert top_sections(speeches["001"]) == [
        "开头",
        "一、统一思想,充分认识开展“下基层、接地气、办实事”…",
        "二、明确目标,全面把握开展“下基层、接地气、办实事”…",
        "三、加强领导,切实保证开展“下基层、接地气、办实事”…",
        "结尾",
    ]


def test_top_level_sections_002_rhetorical_sentences(speeches: dict[str, Document]) -> None:
    # one long paragraph; the title is glued to the first sentence
    assert speeches["002"].text.count("\n") == 0
    # the glued title is not a section of its own: it opens the first chunk
    assert top_sections(speeches["002"]) == [
        "第一句话,工作思路要创新",
        "第二句话,工作方法要改进",
        "第三句话,自身建设要加强",
        "结尾",
    ]


def test_top_level_sections_003_news_report_without_headings(
    speeches: dict[str, Document],
) -> None:
    assert top_sections(speeches["003"]) == ["全文"]


def test_top_level_sections_004(speeches: dict[str, Document]) -> None:
    assert top_sections(speeches["004"]) == [
        "开头",
        "一、进一步提高思想认识…",
        "二、进一步突出服务主题…",
        "三、进一步加强基层组织…",
        "四、进一步加强组织领导,推动形成齐抓共建、齐争共创的工作格局",
        "结尾",
    ]


def test_section_paths_on_speeches(speeches: dict[str, Document]) -> None:
    c000 = chunk_document(speeches["000"])
    assert section_of(c000, "一是在服务大局上") == "开头 › 一是在服务大局上主动作为,适应了党政所需"
    assert section_of(c000, "第一,要自觉坚持") == (
        "一、始终增强政治意识,切实把握正确方向 › 第一,要自觉坚持党的领导,始终与党同心"
    )
    assert section_of(c000, "一要引领风气之先") == (
        "三、始终保持先进特性,切实发挥群团作用 › 一要引领风气之先"
    )
    assert section_of(c000, "同志们") == "结尾"

    c002 = chunk_document(speeches["002"])
    assert section_of(c002, "一方面是力量上的整合") == SECTION_SEPARATOR.join(
        ["第二句话,工作方法要改进", "五是社会对接与整合资源的关系", "一方面是力量上的整合"]
    )
    assert section_of(c002, "三是作风建设的问题") == "第三句话,自身建设要加强 › 三是作风建设的问题"
    assert section_of(c002, "今天,我就讲这么一些") == "结尾"

    c003 = chunk_document(speeches["003"])  # labels keep the document's traditional script
    assert (
        section_of(c003, "一是切實擔負起")
        == "全文 › 一是切實擔負起把職工群眾凝聚到黨的周圍的政治責任"
    )
    assert section_of(c003, "一是抓好傳達學習") == "全文 › 一是抓好傳達學習"  # "他要求,一是…"

    c004 = chunk_document(speeches["004"])
    assert section_of(c004, "四要加强宣传") == (
        "四、进一步加强组织领导,推动形成齐抓共建、齐争共创的工作格局 › 四要加强宣传,营造氛围"
    )
    assert section_of(c004, "党群共建创先争优给工会") == "结尾"


@pytest.mark.parametrize("prefix", sorted(_SPEECHES))
@pytest.mark.parametrize(("max_tokens", "overlap"), [(320, 40), (120, 20), (60, 0)])
def test_speech_chunks_well_formed(
    speeches: dict[str, Document], prefix: str, max_tokens: int, overlap: int
) -> None:
    doc = speeches[prefix]
    chunks = chunk_document(doc, max_tokens=max_tokens, overlap_tokens=overlap)
    assert_well_formed(doc, chunks, max_tokens)
    tops = top_sections(doc)
    # chunks never cross a top-level section, and they visit them in order
    seen = [c.section_path[0] for c in chunks]
    assert sorted(set(seen), key=seen.index) == tops
    title = doc.meta.title
    assert all(c.index_text.startswith(f"{title} › {c.section}\n") for c in chunks)


def test_default_chunks_are_not_fragments(speeches: dict[str, Document]) -> None:
    for doc in speeches.values():
        chunks = chunk_document(doc)
        small = [c for c in chunks if count_tokens(c.text) < 40]
        # a fragment survives only when it is a whole top-level section of its own
        for c in small:
            assert sum(o.section_path[0] == c.section_path[0] for o in chunks) == 1, c


@pytest.mark.parametrize(
    ("max_tokens", "unit_ends"), [(320, "。！？；!?;"), (120, "。！？；!?;，,、：:")]
)
def test_long_sections_overlap_with_whole_units(
    speeches: dict[str, Document], max_tokens: int, unit_ends: str
) -> None:
    """Overlap is whole sentences (whole clauses only where one sentence alone is over
    budget) repeated from the previous chunk of the same section."""
    doc = speeches["000"]
    chunks = chunk_document(doc, max_tokens=max_tokens, overlap_tokens=40)
    overlaps = [(a, b) for a, b in zip(chunks, chunks[1:], strict=False) if b.start < a.end]
    assert overlaps
    for a, b in overlaps:
        assert a.section_path[0] == b.section_path[0]
        shared = doc.text[b.start : a.end].rstrip("”’")
        assert shared[-1] in unit_ends
        assert doc.text[b.start - 1] in unit_ends + "\n”’"
        assert count_tokens(shared) <= 60


def test_traditional_text_gets_the_same_structure(speeches: dict[str, Document]) -> None:
    doc = speeches["000"]
    trad = Document(doc.doc_id, doc.source, to_traditional(doc.text), doc.meta)
    simp_tops = top_sections(doc)
    trad_tops = top_sections(trad)
    assert [to_simplified(t) for t in trad_tops] == [to_simplified(t) for t in simp_tops]
    assert trad_tops[1] != simp_tops[1]  # labels are cut from the traditional text


def test_chunking_is_fast_and_deterministic(speeches: dict[str, Document]) -> None:
    docs = list(speeches.values())
    first = [chunk_document(d) for d in docs]
    t0 = time.perf_counter()
    again = [chunk_document(d) for d in docs]
    assert time.perf_counter() - t0 < 1.0
    assert first == again


# --------------------------------------------------------------------------------------
# Small hand-written documents
# --------------------------------------------------------------------------------------
def _doc(text: str, title: str = "") -> Document:
    return Document(doc_id="t", source="t", text=text, meta=DocMeta(title=title))


def test_enumeration_only_at_sentence_start() -> None:
    text = (
        "我们要统一是非标准，做到唯一是从。大家要记住一是一、二是二的道理。\n"
        "一、总体要求\n工作要扎实。做了大量工作。一是在服务大局上主动作为。二是联系群众。\n"
        "二、具体措施\n要抓好落实。"
    )
    chunks = chunk_document(_doc(text), max_tokens=16, overlap_tokens=0)
    opening = [c for c in chunks if c.section_path[0] == "开头"]
    assert opening and all(c.section_path == ["开头"] for c in opening)
    sections = {c.section for c in chunks}
    assert "一、总体要求 › 一是在服务大局上主动作为" in sections
    assert "一、总体要求 › 二是联系群众" in sections
    big = chunk_document(_doc(text), max_tokens=1000)
    assert [c.section for c in big] == ["开头", "一、总体要求", "二、具体措施"]


def test_sentence_level_items_end_with_their_paragraph() -> None:
    body = "要求严格落实责任，确保各项工作取得实效。" * 12
    text = (
        f"一、第一部分工作\n总的要求是：一是抓学习。{body}二是抓落实。{body}\n"
        f"这一段回到上一级。{body}\n二、第二部分工作\n{body}"
    )
    chunks = chunk_document(_doc(text), max_tokens=200, overlap_tokens=0)
    tail = next(c for c in chunks if c.text.startswith("这一段回到上一级"))
    assert tail.section_path == ["一、第一部分工作"]
    assert any(c.section_path == ["一、第一部分工作", "二是抓落实"] for c in chunks)


def test_heading_inline_with_body_and_nested_headings() -> None:
    text = (
        "同志们，今天开会。\n"
        "一、提高认识。这是第一段正文，内容较长。\n（一）加强学习\n学习内容。\n（二）加强实践\n实践内容。\n"
        "二、狠抓落实。这是第二段正文。\n1.明确责任\n责任内容。\n2.强化考核\n考核内容。"
    )
    chunks = chunk_document(_doc(text), max_tokens=16, overlap_tokens=0)
    paths = {tuple(c.section_path) for c in chunks}
    assert ("开头",) in paths  # "同志们" at the start is a salutation, not the closing
    assert ("一、提高认识", "（二）加强实践") in paths
    assert ("二、狠抓落实", "2.强化考核") in paths
    big = chunk_document(_doc(text), max_tokens=1000)
    assert [c.section for c in big] == ["开头", "一、提高认识", "二、狠抓落实"]


def test_nested_enumeration_families() -> None:
    pad = "要求各级组织认真抓好落实。" * 2  # items longer than half the budget stay apart
    text = (
        f"一、工作任务\n一是抓好组织建设。{pad}一要建支部。{pad}二要配队伍。{pad}"
        f"二是抓好制度建设。{pad}\n"
        f"二、工作要求\n首先，要加强领导。{pad}其次，要强化督查。{pad}最后，要注重宣传。{pad}"
    )
    chunks = chunk_document(_doc(text), max_tokens=60, overlap_tokens=0)
    assert all(count_tokens(c.text) > 30 for c in chunks[1:])
    paths = [tuple(c.section_path) for c in chunks]
    assert ("一、工作任务", "一是抓好组织建设", "二要配队伍") in paths
    assert ("一、工作任务", "二是抓好制度建设") in paths
    assert ("二、工作要求", "最后，要注重宣传") in paths


def test_title_glued_to_first_sentence_and_closing_sentence() -> None:
    sections = "".join(
        f"第{n}句话，要做好第{n}件事。" + "具体工作要抓紧抓实抓好。" * 8 for n in "一二三"
    )
    text = f"会议讲话{sections}今天，我就讲这些。谢谢大家。"
    top = [c.section for c in chunk_document(_doc(text, title="会议讲话"), max_tokens=5000)]
    # the title-only opening joins the first section's chunk
    assert chunk_document(_doc(text, title="会议讲话"), max_tokens=5000)[0].text.startswith(
        "会议讲话"
    )
    assert top == [
        "第一句话，要做好第一件事",
        "第二句话，要做好第二件事",
        "第三句话，要做好第三件事",
        "结尾",
    ]


def test_header_line_and_no_title() -> None:
    text = "一、甲项工作\n内容一。\n二、乙项工作\n内容二。"
    with_title = chunk_document(_doc(text, title="某某讲话"), max_tokens=1000)
    assert with_title[1].index_text == "某某讲话 › 二、乙项工作\n二、乙项工作\n内容二。"
    without = chunk_document(_doc(text), max_tokens=1000)
    assert without[1].index_text == "二、乙项工作\n二、乙项工作\n内容二。"


def test_empty_and_invalid() -> None:
    assert chunk_document(_doc("")) == []
    assert chunk_document(_doc(" \n\u3000\n")) == []
    with pytest.raises(ValueError):
        chunk_document(_doc("内容。"), max_tokens=8)
    with pytest.raises(ValueError):
        chunk_document(_doc("内容。"), max_tokens=100, overlap_tokens=100)
    assert CHUNKER_VERSION


def test_count_tokens_offline_encoding() -> None:
    assert count_tokens("") == 0
    assert count_tokens("群团工作") > 0
    assert count_tokens("<|endoftext|>") > 1  # special tokens are plain text here


# --------------------------------------------------------------------------------------
# Property tests on generated speech-like documents
# --------------------------------------------------------------------------------------
_PHRASES = [
    "群团组织要密切联系群众",
    "切实加强自身建设",
    "不断提高服务水平",
    "积极探索工作方法",
    "把党的温暖送到职工中去",
    "坚持围绕中心服务大局",
    "推动工作落到实处",
    "深入基层了解情况",
    "增强组织的吸引力和凝聚力",
    "为经济社会发展作出贡献",
    "各级干部要发挥带头作用",
    "工会",
]
_NUMS = "一二三四五六七八九"


@dataclass
class _Builder:
    text: str = ""
    tops: list[int] = field(default_factory=list)  # where each top-level section starts

    def add(self, piece: str, top: bool = False) -> None:
        if top:
            self.tops.append(len(self.text))
        self.text += piece


@st.composite
def sentences(draw: st.DrawFn, max_count: int = 4) -> str:
    out = []
    for _ in range(draw(st.integers(1, max_count))):
        kind = draw(st.sampled_from(["short", "short", "long", "unpunctuated"]))
        n = {"short": draw(st.integers(1, 4)), "long": draw(st.integers(8, 30))}.get(kind, 1)
        words = draw(st.lists(st.sampled_from(_PHRASES), min_size=n, max_size=n))
        comma = draw(st.sampled_from(["，", ","]))
        body = comma.join(words) if kind != "unpunctuated" else "".join(words) * 12
        out.append(body + draw(st.sampled_from(["。", "。", "！", "；", "?", "!"])))
    return "".join(out)


@st.composite
def paragraph(draw: st.DrawFn) -> str:
    """A body paragraph, possibly opened by a sub-heading or an enumeration, possibly
    with enumeration items starting sentences inside it."""
    lead = draw(st.sampled_from(["", "", "（{n}）", "{n}是", "{n}要", "第{n}，", "{d}."]))
    n = draw(st.integers(1, 3))
    head = lead.format(n=_NUMS[n - 1], d=n)
    if head and lead[-1] != "，":
        head += draw(st.sampled_from(_PHRASES)) + "。"
    inline = ""
    if draw(st.booleans()):
        for k in range(draw(st.integers(2, 3))):
            inline += f"{_NUMS[k]}是" + draw(sentences(max_count=2))
    return head + draw(sentences()) + inline


@st.composite
def speeches_with_headings(draw: st.DrawFn) -> tuple[Document, list[int]]:
    b = _Builder()
    indent = draw(st.sampled_from(["", "  ", "\u3000\u3000"]))
    sep = draw(st.sampled_from(["\n", "\n\n"]))
    style = draw(st.sampled_from(["{n}、", "第{n}部分 "]))
    for _ in range(draw(st.integers(0, 2))):
        b.add(indent + draw(paragraph()) + sep)
    for k in range(draw(st.integers(2, 4))):
        heading = style.format(n=_NUMS[k]) + draw(st.sampled_from(_PHRASES))
        if draw(st.booleans()):
            b.add(indent + heading + sep, top=True)  # heading is its own paragraph
        else:
            b.add(indent + heading + "。" + draw(sentences()) + sep, top=True)
        for _ in range(draw(st.integers(0, 3))):
            b.add(indent + draw(paragraph()) + sep)
    if draw(st.booleans()):
        b.add(indent + "同志们，" + draw(sentences(max_count=2)), top=True)
    return _doc(b.text), b.tops


@st.composite
def speeches_in_rhetorical_sentences(draw: st.DrawFn) -> tuple[Document, list[int]]:
    b = _Builder()
    title = "市级群团工作会的讲话" if draw(st.booleans()) else ""
    b.add(title)
    one_paragraph = draw(st.booleans())
    for k in range(draw(st.integers(2, 4))):
        if k and not one_paragraph:
            b.add("\n")
        b.add(f"第{_NUMS[k]}句话，" + draw(sentences(max_count=2)), top=True)
        for _ in range(draw(st.integers(0, 3))):
            b.add(draw(paragraph()))
    if draw(st.booleans()):
        b.add("\n同志们，" + draw(sentences(max_count=2)), top=True)
    return _doc(b.text, title=title), b.tops


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    generated=st.one_of(speeches_with_headings(), speeches_in_rhetorical_sentences()),
    max_tokens=st.integers(16, 400),
    overlap_share=st.floats(0, 0.3),
)
def test_properties_on_generated_speeches(
    generated: tuple[Document, list[int]], max_tokens: int, overlap_share: float
) -> None:
    doc, tops = generated
    overlap = int(max_tokens * overlap_share)
    chunks = chunk_document(doc, max_tokens=max_tokens, overlap_tokens=overlap)
    assert_well_formed(doc, chunks, max_tokens)
    title = "".join(doc.meta.title.split())
    for c in chunks:
        # the one allowed exception: an opening that is only the title joins the next chunk
        crossed = [t for t in tops if c.start < t < c.end
                   and not ("".join(doc.text[:t].split()) in title and c.start == 0)]  # fmt: skip
        assert not crossed, (c.section, c.text[:40])


def test_odd_numerals_are_prose() -> None:
    text = "十十是好的。十十是坏的。\n一二三、不是标题。\n一二三、也不是。\n另一方面是一句话。"
    chunks = chunk_document(_doc(text), max_tokens=1000)
    assert [(c.section, c.text) for c in chunks] == [("全文", text)]


# --------------------------------------------------------------------------------------
# Work grows linearly with the document (counted, not timed)
# --------------------------------------------------------------------------------------
class _CountingStr(str):
    """The simplified text, counting the characters every slice of it copies."""

    copied = 0

    def __getitem__(self, key: int | slice) -> str:  # type: ignore[override]
        out = str.__getitem__(self, key)
        _CountingStr.copied += len(out)
        return out


def _run_on_text(n_chars: int) -> str:
    """Common characters in 15–40-character sentences, ~1,000-character lines, no
    structure: one long section, the shape that made chunking quadratic."""
    import random

    from rag.decode import _COMMON_HAN

    rng = random.Random(7)
    lines: list[str] = []
    line, size = "", 0
    while size < n_chars:
        line += "".join(rng.choices(_COMMON_HAN, k=rng.randint(15, 40))) + "。"
        if len(line) >= 1000:
            lines.append(line)
            size += len(line)
            line = ""
    return "\n".join(lines)


def _chunking_work(monkeypatch: pytest.MonkeyPatch, text: str) -> int:
    import rag.chunk as chunk_module

    tokenized = 0

    def counting_tokens(piece: str) -> int:
        nonlocal tokenized
        tokenized += len(piece)
        return count_tokens(piece)

    monkeypatch.setattr(chunk_module, "count_tokens", counting_tokens)
    monkeypatch.setattr(chunk_module, "to_simplified", lambda t: _CountingStr(to_simplified(t)))
    _CountingStr.copied = 0
    chunks = chunk_document(_doc(text))
    assert chunks and chunks[-1].end == len(text.rstrip())
    return tokenized + _CountingStr.copied


def test_chunking_work_is_linear_in_document_length(monkeypatch: pytest.MonkeyPatch) -> None:
    small = _run_on_text(8_000)
    large = _run_on_text(32_000)
    work_small = _chunking_work(monkeypatch, small)
    work_large = _chunking_work(monkeypatch, large)
    # linear: 4× the text is about 4× the characters tokenized and copied (quadratic: ~16×)
    assert work_large / len(large) < 1.5 * work_small / len(small)
    assert work_large < 60 * len(large)
