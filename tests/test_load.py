"""Tests for ``rag.load``: encodings, formats, and expanding input paths.

The fixtures under ``tests/data/encodings`` and ``tests/data/formats`` are
written by the builders in this module; regenerate them with
``python tests/test_load.py``. Tests check both the committed files and that
the builders still produce what is committed.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest

from rag.decode import decode_bytes
from rag.load import (
    SUPPORTED_SUFFIXES,
    LoadError,
    RawFile,
    html_to_text,
    iter_input_files,
    read_file,
)

DATA = Path(__file__).parent / "data"
ENCODINGS = DATA / "encodings"
FORMATS = DATA / "formats"

SIMPLIFIED = (
    "魏小东同志在市委党的群团工作会议上的讲话\n"
    "(2015年12月17日)\n"
    "政治性是群团组织的灵魂,是第一位的。只有牢牢把握政治性,自觉做党的政治意志、政治主张的贯彻落实者,"
    "积极引领群众听党话、跟党走。\n"
    "同志们,做好新形势下党的群团工作,责任重大,使命光荣。\n"
)
TRADITIONAL = (
    "山東省直機關召開黨的群團工作座談會\n"
    "李玉清強調,省直機關各級群團組織要堅定信心,振奮精神,最廣泛地把職工群眾組織起來。\n"
    "要創新活動載體,打造服務品牌。\n"
)
RARE = SIMPLIFIED + "䶮字只有GB18030能编码。\n"  # U+4DAE: outside GBK

# name -> (text, codec, prefix bytes, newline written)
ENCODED: dict[str, tuple[str, str, bytes, str]] = {
    "utf-8.txt": (SIMPLIFIED, "utf-8", b"", "\n"),
    "utf-8-sig.txt": (SIMPLIFIED, "utf-8", b"\xef\xbb\xbf", "\n"),
    "utf-16-le-bom.txt": (SIMPLIFIED, "utf-16-le", b"\xff\xfe", "\r\n"),
    "utf-16-be-bom.txt": (TRADITIONAL, "utf-16-be", b"\xfe\xff", "\n"),
    "utf-16-le-nobom.txt": (SIMPLIFIED, "utf-16-le", b"", "\n"),
    "gb18030.txt": (RARE, "gb18030", b"", "\n"),
    "gbk.txt": (SIMPLIFIED, "gbk", b"", "\r\n"),
    "big5.txt": (TRADITIONAL, "big5", b"", "\n"),
}

HTML_PAGE = """<!DOCTYPE html>
<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>群团工作会议讲话</title>
<style>p { color: red; }</style>
<script>var tracker = "不应出现的脚本文字";</script></head>
<body><nav><a href="/">首页</a> &gt; <a href="/news">新闻</a></nav>
<div class="article">
<h1>魏小东同志在市委党的群团工作会议上的讲话</h1>
<p>(2015年12月17日)</p>
<p>&nbsp;&nbsp;政治性是群团组织的<b>灵魂</b>,是第一位的。只有牢牢把握政治性,
自觉做党的政治意志、政治主张的贯彻落实者。</p>
<p>第一行<br>第二行</p>
<!-- 注释不应出现 -->
</div></body></html>
"""
HTML_EXPECTED_LINES = [
    "群团工作会议讲话",
    "魏小东同志在市委党的群团工作会议上的讲话",
    "(2015年12月17日)",
    "\xa0\xa0政治性是群团组织的灵魂,是第一位的。只有牢牢把握政治性, "
    "自觉做党的政治意志、政治主张的贯彻落实者。",
    "第一行",
    "第二行",
]
DOC_LINES = SIMPLIFIED.rstrip("\n").split("\n")


# -- fixture builders --------------------------------------------------------


def encoded_bytes(name: str) -> bytes:
    text, codec, prefix, newline = ENCODED[name]
    return prefix + text.replace("\n", newline).encode(codec)


def binary_bytes() -> bytes:
    rng = random.Random(20240601)
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(400))


def build_encodings(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ENCODED:
        (folder / name).write_bytes(encoded_bytes(name))
    (folder / "binary.txt").write_bytes(binary_bytes())
    (folder / "empty.txt").write_bytes(b"")


def make_docx(lines: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for line in lines:
        document.add_paragraph(line)
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "表格左"
    table.cell(0, 1).text = "表格右"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text is Chinese: a Type0 font with a ToUnicode map.

    The font itself is not embedded (text extraction needs only the map), which
    keeps the fixture a few hundred bytes and free of any font file.
    """
    chars = sorted({c for line in lines for c in line})
    cid = {c: i + 1 for i, c in enumerate(chars)}
    shows = [
        f"BT /F1 12 Tf 40 {780 - 20 * i} Td <{''.join(f'{cid[c]:04X}' for c in line)}> Tj ET"
        for i, line in enumerate(lines)
    ]
    content = "\n".join(shows).encode()
    mapping = "\n".join(f"<{cid[c]:04X}> <{ord(c):04X}>" for c in chars)
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CMapName /Fixture def /CMapType 2 def\n"
        "1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
        f"{len(chars)} beginbfchar\n{mapping}\nendbfchar\nendcmap\n"
        "CMapName currentdict /CMap defineresource pop end end"
    ).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /Identity-H "
        b"/DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /STSong-Light /CIDSystemInfo "
        b"<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 1000 >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def build_formats(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sample.html").write_bytes(HTML_PAGE.encode("gb18030"))
    (folder / "sample.md").write_text("# 标题\n\n" + SIMPLIFIED, encoding="utf-8")
    (folder / "sample.docx").write_bytes(make_docx(DOC_LINES))
    (folder / "sample.pdf").write_bytes(make_pdf(DOC_LINES))


# -- encodings ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENCODED))
def test_committed_fixture_matches_builder(name: str) -> None:
    assert (ENCODINGS / name).read_bytes() == encoded_bytes(name)


@pytest.mark.parametrize("name", sorted(ENCODED))
def test_each_encoding_decodes_exactly(name: str) -> None:
    raw = read_file(ENCODINGS / name)
    assert raw.text == ENCODED[name][0]
    assert "\r" not in raw.text and "\ufeff" not in raw.text


@pytest.mark.parametrize(
    ("name", "codecs"),
    [
        ("utf-8.txt", {"utf-8"}),
        ("utf-16-le-nobom.txt", {"utf-16-le"}),
        ("gbk.txt", {"gb18030"}),  # GB18030 is the GBK superset we decode with
        ("big5.txt", {"big5", "cp950"}),
    ],
)
def test_reports_the_codec_used(name: str, codecs: set[str]) -> None:
    assert read_file(ENCODINGS / name).encoding in codecs


def test_sha256_is_of_the_raw_bytes() -> None:
    import hashlib

    raw = read_file(ENCODINGS / "gbk.txt")
    assert raw.sha256 == hashlib.sha256(encoded_bytes("gbk.txt")).hexdigest()
    assert isinstance(raw, RawFile) and raw.path == ENCODINGS / "gbk.txt"


@pytest.mark.parametrize(
    ("name", "words"),
    [("binary.txt", ("binary.txt", "binary")), ("empty.txt", ("empty.txt", "empty"))],
)
def test_bad_files_raise_with_file_and_reason(name: str, words: tuple[str, str]) -> None:
    with pytest.raises(LoadError) as info:
        read_file(ENCODINGS / name)
    assert all(word in str(info.value) for word in words)
    assert info.value.path.endswith(name)


def test_whitespace_only_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_bytes("  \n\u3000\r\n".encode())
    with pytest.raises(LoadError, match="blank.txt.*empty"):
        read_file(path)


def test_undecodable_without_nul_bytes() -> None:
    with pytest.raises(ValueError, match="undecodable"):
        decode_bytes(b"\x80\xff" * 50)


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("群团工作", "gbk"),
        ("党的领导", "gbk"),
        ("聯繫群眾", "big5"),
        ("座談會", "big5"),
        ("要堅持黨的領導,突出加強思想建設。", "big5"),
        ("工会、共青团、妇联", "gb18030"),
    ],
)
def test_short_chinese_texts_decode(text: str, codec: str) -> None:
    assert decode_bytes(text.encode(codec))[0] == text


def test_declared_charset_is_tried_first() -> None:
    text = "维护职工合法权益"
    assert decode_bytes(text.encode("gbk"), declared="GB2312") == (text, "gb18030")


def test_utf16_big_endian_without_bom() -> None:
    assert decode_bytes(SIMPLIFIED.encode("utf-16-be")) == (SIMPLIFIED, "utf-16-be")


BUNDLED = sorted((Path(__file__).parent.parent / "rag" / "corpus").glob("*.txt"))


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("speech", BUNDLED, ids=lambda p: p.name[:3])
def test_bundled_speeches_in_utf16_without_bom(tmp_path: Path, speech: Path, codec: str) -> None:
    # common characters such as 一 (U+4E00) put their NUL byte on the other side from ASCII
    text = speech.read_text(encoding="utf-8")
    assert decode_bytes(text.encode(codec)) == (text, codec)
    path = tmp_path / speech.name
    path.write_bytes(text.encode(codec))
    assert read_file(path).text == text.replace("\r\n", "\n")


@pytest.mark.parametrize(
    "data",
    [
        binary_bytes(),
        random.Random(3).randbytes(4000),
        bytes(range(256)) * 8,
        make_docx(DOC_LINES),
        b"\x00" * 64,
        SIMPLIFIED.encode("utf-16-le") + binary_bytes(),
    ],
    ids=["png", "random", "all-bytes", "docx", "nuls", "text-then-binary"],
)
def test_binary_with_nul_bytes_is_not_text(data: bytes) -> None:
    assert b"\x00" in data
    with pytest.raises(ValueError, match="binary data"):
        decode_bytes(data)


def test_bom_that_does_not_decode_is_an_error() -> None:
    with pytest.raises(ValueError, match="byte-order mark"):
        decode_bytes(b"\xef\xbb\xbf\xff\xfe\xfa")


# -- formats -----------------------------------------------------------------


def test_html_keeps_paragraphs_and_drops_script_style_nav() -> None:
    raw = read_file(FORMATS / "sample.html")
    assert raw.text.split("\n") == HTML_EXPECTED_LINES
    assert raw.encoding == "gb18030"
    for absent in ("tracker", "color", "首页", "注释"):
        assert absent not in raw.text


def test_html_to_text_on_pre_and_inline() -> None:
    # inline elements stay in their paragraph; <pre> keeps its own line breaks
    text = html_to_text(
        "<p>甲<span>乙</span>丙</p><pre>一\n二</pre><ul><li>项一</li><li>项二</li></ul>"
    )
    assert text.split("\n") == ["甲乙丙", "一", "二", "项一", "项二"]


def test_markdown_is_read_as_text() -> None:
    assert read_file(FORMATS / "sample.md").text == "# 标题\n\n" + SIMPLIFIED


def test_docx_paragraphs_and_table_cells() -> None:
    raw = read_file(FORMATS / "sample.docx")
    assert raw.text.split("\n") == [*DOC_LINES, "表格左", "表格右"]
    assert raw.encoding == "docx"


def test_pdf_page_text() -> None:
    raw = read_file(FORMATS / "sample.pdf")
    assert raw.text.split("\n") == DOC_LINES
    assert raw.encoding == "pdf"


def test_builders_reproduce_committed_formats(tmp_path: Path) -> None:
    build_formats(tmp_path)
    for name in ("sample.html", "sample.md", "sample.docx", "sample.pdf"):
        assert read_file(tmp_path / name).text == read_file(FORMATS / name).text


@pytest.mark.parametrize("name", ["broken.docx", "broken.pdf"])
def test_broken_containers_raise_load_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not a zip or a pdf at all")
    with pytest.raises(LoadError, match=name):
        read_file(path)


def test_unreadable_path_raises_load_error(tmp_path: Path) -> None:
    folder_named_like_a_file = tmp_path / "speech.txt"
    folder_named_like_a_file.mkdir()
    with pytest.raises(LoadError, match="cannot read"):
        read_file(folder_named_like_a_file)


def test_unsupported_suffix_raises(tmp_path: Path) -> None:
    path = tmp_path / "notes.rtf"
    path.write_text("文字", encoding="utf-8")
    with pytest.raises(LoadError, match="unsupported"):
        read_file(path)


# -- expanding inputs --------------------------------------------------------


def test_iter_input_files(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ("b.txt", "a.MD", "sub/c.html", "sub/deeper/d.pdf", "sub/e.docx", "sub/f.htm"):
        (tmp_path / rel).write_bytes(b"x")
    for rel in ("a.meta.json", "image.png", ".hidden/g.txt", "sub/.h.txt"):
        (tmp_path / rel).write_bytes(b"x")
    extra = tmp_path / "extra.csv"
    extra.write_bytes(b"x")

    files, skipped = iter_input_files(
        [tmp_path, tmp_path / "b.txt", extra, tmp_path / "a.meta.json", tmp_path / "missing.txt"]
    )
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "a.MD",
        "b.txt",
        "sub/c.html",
        "sub/e.docx",
        "sub/f.htm",
        "sub/deeper/d.pdf",
    ]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"extra.csv", "a.meta.json", "missing.txt"}
    assert "unsupported" in reasons["extra.csv"] and ".csv" in reasons["extra.csv"]
    assert "sidecar" in reasons["a.meta.json"]
    assert "no such file" in reasons["missing.txt"]


def test_folder_walk_stays_inside_the_folder(tmp_path: Path) -> None:
    docs, elsewhere = tmp_path / "docs", tmp_path / "elsewhere"
    (docs / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    (docs / "a.txt").write_bytes(b"x")
    (docs / "sub" / "b.txt").write_bytes(b"x")
    (elsewhere / "secret.txt").write_bytes(b"x")
    (docs / "passwd.txt").symlink_to(elsewhere / "secret.txt")  # a file out of the folder
    (docs / "away").symlink_to(elsewhere, target_is_directory=True)  # a folder out of it
    (docs / "same.txt").symlink_to(docs / "a.txt")  # inside: fine (and read once)
    (docs / "loop").symlink_to(docs, target_is_directory=True)  # cycles
    (docs / "sub" / "up").symlink_to(docs / "sub", target_is_directory=True)

    files, skipped = iter_input_files([docs])
    assert [p.relative_to(docs).as_posix() for p in files] == ["a.txt", "sub/b.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"passwd.txt", "away"}
    assert all("outside" in r and str(elsewhere) in r for r in reasons.values())

    # a link the user names explicitly is taken as given
    assert iter_input_files([docs / "passwd.txt"]) == ([docs / "passwd.txt"], [])


def test_supported_suffixes() -> None:
    assert SUPPORTED_SUFFIXES == {".txt", ".md", ".html", ".htm", ".docx", ".pdf"}


def test_exported_names_exist() -> None:
    import rag.load as module

    assert all(callable(getattr(module, name)) or name.isupper() for name in module.__all__)


if __name__ == "__main__":  # regenerate the committed fixtures
    build_encodings(ENCODINGS)
    build_formats(FORMATS)
    print("fixtures written under", DATA, file=sys.stderr)
