"""Files of each supported format → decoded text.

This is the first step of ingest: it only turns bytes into text (and says why
when it cannot). Cleaning boilerplate and reading metadata is ``rag.clean``.

Text files come from scraped web pages and old Windows machines, so their
encoding is anything from UTF-8 to GBK or Big5, often without a declaration.
Detectors guess badly on short Chinese texts (GB18030 happily "decodes" Big5
bytes into rare characters), so the order here is: byte-order marks, UTF-16
recognised by its NUL bytes, strict UTF-8, then the Chinese legacy codecs each
decoded strictly and scored on how much the result looks like real Chinese.
charset-normalizer only breaks near-ties or is the last resort.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from charset_normalizer import from_bytes

from rag.types import SkippedFile
from zh.script import to_traditional

__all__ = [
    "SUPPORTED_SUFFIXES",
    "TEXT_SUFFIXES",
    "SIDECAR_SUFFIX",
    "RawFile",
    "LoadError",
    "iter_input_files",
    "is_sidecar",
    "read_file",
    "decode_bytes",
    "html_to_text",
]

TEXT_SUFFIXES: frozenset[str] = frozenset({".txt", ".md"})
HTML_SUFFIXES: frozenset[str] = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES: frozenset[str] = TEXT_SUFFIXES | HTML_SUFFIXES | {".docx", ".pdf"}
SIDECAR_SUFFIX = ".meta.json"

# Legacy codecs tried after UTF-8, in order of preference on a tie.
# GB18030 is a superset of GBK and GB2312; CP950 is Big5 with Microsoft's additions.
LEGACY_CANDIDATES: tuple[str, ...] = ("gb18030", "big5", "cp950")
# Share of characters that must be "ordinary" for a decoding to be believed.
MIN_PLAUSIBILITY = 0.9
# Control or private-use characters tolerated before a decoding is rejected.
MAX_BAD_SHARE = 0.005
# Decodings closer than this in score are a tie, broken by charset-normalizer.
TIE_MARGIN = 0.05
# Bounds on the work one document may cause (the settings pass their own values).
# Chunking is linear in the text, but a 10 MB "speech" is a book or an attack, and a
# small container can unpack to gigabytes (zip bombs), so every format is bounded.
DEFAULT_MAX_TEXT_MB = 10.0  # text of one document once decoded/extracted (UTF-8 MB)
DEFAULT_MAX_FILE_MB = 50.0  # a file on disk, and everything a .docx unpacks to
# A .docx member over this many bytes unpacked may inflate at most MAX_ZIP_RATIO times
# (Office XML compresses about 5–20×, a zip bomb a thousand times or more).
ZIP_RATIO_MIN_BYTES = 1 << 20
MAX_ZIP_RATIO = 100
MAX_PDF_PAGES = 5000
PDF_MAX_STREAM_BYTES = 16 << 20  # one decompressed PDF stream (a page's content)
_MB = 1 << 20

# Elements whose text is never document text.
HTML_DROP_TAGS: tuple[str, ...] = (
    "script",
    "style",
    "nav",
    "noscript",
    "template",
    "svg",
    "iframe",
    "object",
    "head",
)
# Elements that start a new line when rendered.
HTML_BLOCK_TAGS: frozenset[str] = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "ul",
    }
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x85]")

# The most frequent Chinese characters (simplified); their traditional forms are
# added at first use. Real Chinese text is made mostly of these, text decoded
# with the wrong legacy codec almost never is.
_COMMON_HAN = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
    "产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点"
    "从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原"
    "又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革"
    "位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强"
    "放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交"
    "受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八"
    "离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布"
    "复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往历市克何除消构府称太准精值"
    "号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参"
    "红细引听该铁价严龙飞服务作风群众干部职青妇联织建设坚持推进落实加强领导会议讲话同志们工作组织"
)

_HAN_RANGES: tuple[tuple[int, int], ...] = (
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0x3400, 0x4DBF),  # extension A
    (0xF900, 0xFAFF),  # compatibility ideographs
)
_GOOD_RANGES: tuple[tuple[int, int], ...] = _HAN_RANGES + (
    (0x20, 0x7E),  # printable ASCII
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF00, 0xFFEF),  # full-width forms
    (0x2000, 0x206F),  # general punctuation (quotes, dashes, ellipsis)
    (0x00A0, 0x00B7),  # nbsp, ·, ©, °
    (0x2460, 0x24FF),  # circled numbers
    (0x25A0, 0x25FF),  # geometric shapes used as bullets
)


class LoadError(Exception):
    """A file could not be turned into text; the message names the file and why."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class RawFile:
    path: Path
    text: str  # decoded text, newlines normalised to "\n", no BOM
    sha256: str  # hash of the raw bytes, for change detection
    encoding: str  # codec used for text formats; "docx" / "pdf" for containers


# -- finding files -----------------------------------------------------------


def iter_input_files(paths: Sequence[Path]) -> tuple[list[Path], list[SkippedFile]]:
    """Expand files and folders into the documents to load.

    Folders are walked recursively and only supported suffixes are taken
    (sidecars and hidden entries are passed over silently); a file named
    explicitly with another suffix, or a path that does not exist, comes back
    as a ``SkippedFile`` because the user asked for it by name. Inside a folder,
    symbolic links are followed only while they stay inside it: a link out of
    the folder is skipped with a reason (a file named explicitly is read
    wherever it points), and a folder reached again through a link is not
    walked twice, so link cycles end.
    """
    found: list[Path] = []
    skipped: list[SkippedFile] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in _walk(path, skipped):
                add(file)
        elif path.is_file():
            if is_sidecar(path):
                skipped.append(SkippedFile(str(path), "a metadata sidecar, not a document"))
            elif path.suffix.lower() in SUPPORTED_SUFFIXES:
                add(path)
            else:
                suffixes = ", ".join(sorted(SUPPORTED_SUFFIXES))
                reason = f"unsupported file type {path.suffix or '(none)'!r}; supported: {suffixes}"
                skipped.append(SkippedFile(str(path), reason))
        elif path.exists():
            skipped.append(SkippedFile(str(path), "not a regular file or folder"))
        else:
            skipped.append(SkippedFile(str(path), "no such file or folder"))
    return found, skipped


def is_sidecar(path: Path) -> bool:
    return path.name.lower().endswith(SIDECAR_SUFFIX)


def _walk(folder: Path, skipped: list[SkippedFile]) -> Iterator[Path]:
    top = folder.resolve()
    visited: set[Path] = set()

    def outside(path: Path) -> bool:
        target = path.resolve()
        if target.is_relative_to(top):
            return False
        skipped.append(SkippedFile(str(path), f"a link to {target}, outside {folder}"))
        return True

    for root, dirs, files in os.walk(folder, followlinks=True):
        here = Path(root).resolve()
        if here in visited:  # reached again through a link (a cycle, or a second route)
            dirs[:] = []
            continue
        visited.add(here)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not outside(Path(root) / d))
        for name in sorted(files):
            path = Path(root) / name
            if (
                not name.startswith(".")
                and not is_sidecar(path)
                and path.suffix.lower() in SUPPORTED_SUFFIXES
                and not outside(path)
            ):
                yield path


# -- reading one file --------------------------------------------------------


def read_file(
    path: Path,
    *,
    max_text_mb: float = DEFAULT_MAX_TEXT_MB,
    max_file_mb: float = DEFAULT_MAX_FILE_MB,
) -> RawFile:
    """Read and decode one document; raise ``LoadError`` naming the file and reason.

    A file over ``max_file_mb`` (on disk, or unpacked for a .docx) or whose text is
    over ``max_text_mb`` is refused as too large before it can cost unbounded time
    or memory further down."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(path, f"unsupported file type {suffix or '(none)'!r}")
    try:
        size = path.stat().st_size
        if size > max_file_mb * _MB:
            raise LoadError(path, _too_large(size, max_file_mb, "file"))
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if not data.strip():
        raise LoadError(path, "empty file")

    if suffix == ".docx":
        _check_zip(path, data, max_file_mb)
        text, encoding = _docx_text(path, data), "docx"
    elif suffix == ".pdf":
        text, encoding = _pdf_text(path, data, max_text_mb), "pdf"
    else:
        declared = _declared_charset(data) if suffix in HTML_SUFFIXES else None
        try:
            text, encoding = decode_bytes(data, declared=declared)
        except ValueError as exc:
            raise LoadError(path, str(exc)) from exc
        if suffix in HTML_SUFFIXES:
            text = html_to_text(text)

    text_bytes = len(text.encode("utf-8", "surrogatepass"))
    if text_bytes > max_text_mb * _MB:
        raise LoadError(path, _too_large(text_bytes, max_text_mb, "text"))
    text = _NEWLINES.sub("\n", text)
    if not text.strip():
        raise LoadError(path, "no text in file (empty after stripping whitespace)")
    return RawFile(path=path, text=text, sha256=hashlib.sha256(data).hexdigest(), encoding=encoding)


def _too_large(size: int, limit_mb: float, what: str) -> str:
    return f"too large ({size / _MB:.1f} MB of {what} > {limit_mb:g} MB limit)"


# -- encodings ---------------------------------------------------------------


def decode_bytes(data: bytes, *, declared: str | None = None) -> tuple[str, str]:
    """Decode text bytes; return ``(text, codec name)`` or raise ``ValueError``.

    ``declared`` is an encoding the file itself names (an HTML ``<meta charset>``);
    it is tried first among the legacy codecs but still has to decode strictly
    and look like text.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec), codec
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"starts with a {codec} byte-order mark but does not decode"
                ) from exc

    if b"\x00" in data:
        utf16 = _utf16_without_bom(data)
        if utf16 is not None:
            return utf16
        raise ValueError("binary data (NUL bytes), not text in a known encoding")

    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass

    candidates: list[str] = []
    normalised = _normalise_codec(declared) if declared else None
    if normalised and normalised not in ("utf-8", "utf-16", "utf-32"):
        candidates.append(normalised)
    candidates += [c for c in LEGACY_CANDIDATES if c not in candidates]

    scored: list[tuple[float, str, str]] = []
    for codec in candidates:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        plausible = _plausibility(text)
        if plausible >= MIN_PLAUSIBILITY:
            scored.append((plausible + _commonness(text), codec, text))
    if scored:
        best = max(scored, key=lambda s: s[0])  # max keeps the first of equals: preference order
        close = [s for s in scored if best[0] - s[0] < TIE_MARGIN]
        if len(close) > 1:
            best = _break_tie(data, close) or best
        return best[2], best[1]

    guess = from_bytes(data).best()
    if guess is not None:
        text = str(guess)
        if _plausibility(text) >= MIN_PLAUSIBILITY:
            return text, guess.encoding
    raise ValueError("undecodable: not UTF-8, UTF-16, GB18030/GBK or Big5 text")


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """Decode BOM-less UTF-16 in whichever byte order gives believable text.

    Where the NUL bytes sit says little for Chinese: ASCII has its zero byte on one
    side, while common characters such as 一 (U+4E00) have it on the other. So both
    byte orders are decoded strictly (an unpaired surrogate fails) and each result
    must look like text; the wrong order turns newlines and punctuation into stray
    symbols and common characters into rare ones, so the higher score wins. Binary
    data fails both: control and private-use characters, few from the text ranges.
    """
    if len(data) % 2:
        return None
    best: tuple[float, str, str] | None = None
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        plausible = _plausibility(text)
        if plausible >= MIN_PLAUSIBILITY:
            score = plausible + _commonness(text)
            if best is None or score > best[0]:
                best = (score, codec, text)
    return (best[2], best[1]) if best else None


def _normalise_codec(name: str) -> str | None:
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    # Pages labelled GB2312/GBK routinely use characters outside those sets.
    return "gb18030" if codec in ("gb2312", "gbk") else codec


def _declared_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii", "replace") if match else None


def _in_ranges(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def _plausibility(text: str) -> float:
    """Share of characters that ordinary Chinese/ASCII text is made of.

    Replacement characters, control codes and private-use characters (what a
    wrong codec produces) make the decoding implausible outright."""
    if not text:
        return 0.0
    good = bad = 0
    for ch in text:
        cp = ord(ch)
        if ch in "\t\n\r\f" or _in_ranges(cp, _GOOD_RANGES):
            good += 1
        elif cp == 0xFFFD:
            return 0.0
        elif cp < 0x20 or 0x7F <= cp <= 0x9F or 0xE000 <= cp <= 0xF8FF:
            bad += 1
    if bad > MAX_BAD_SHARE * len(text):
        return 0.0
    return good / len(text)


@lru_cache(maxsize=1)
def _common_han() -> frozenset[str]:
    return frozenset(_COMMON_HAN) | frozenset(to_traditional(_COMMON_HAN))


def _commonness(text: str) -> float:
    """Share of the Han characters that are among the most frequent ones."""
    han = [ch for ch in text if _in_ranges(ord(ch), _HAN_RANGES)]
    if not han:
        return 0.0
    common = _common_han()
    return sum(ch in common for ch in han) / len(han)


def _break_tie(data: bytes, close: list[tuple[float, str, str]]) -> tuple[float, str, str] | None:
    names = [codec for _, codec, _ in close]
    guess = from_bytes(data, cp_isolation=names).best()
    if guess is None:
        return None
    chosen = _normalise_codec(guess.encoding)
    for item in close:
        if _normalise_codec(item[1]) == chosen:
            return item
    return None


# -- container formats -------------------------------------------------------


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page with block elements on their own lines.

    Whitespace inside text runs is collapsed the way a browser does, so the line
    wrapping of the HTML source does not split paragraphs; ``<br>`` and block
    boundaries become newlines. Scripts, styles and navigation are dropped.
    """
    from bs4 import BeautifulSoup, Comment, NavigableString, PageElement, Tag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bs4 warns about XHTML and URL-like input
        soup = BeautifulSoup(markup, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(HTML_DROP_TAGS):
        tag.decompose()

    parts: list[str] = [title, "\n"] if title else []

    # Depth-first with an explicit stack: deeply nested markup neither overflows the
    # recursion limit nor costs a walk up the ancestors for every text node.
    # Each entry: (remaining children, inside <pre>, close with a newline).
    stack: list[tuple[Iterator[PageElement], bool, bool]] = [(iter(soup.children), False, False)]
    while stack:
        children, inside_pre, block = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if block:
                parts.append("\n")
        elif isinstance(child, Comment):
            continue
        elif isinstance(child, NavigableString):
            if type(child) is NavigableString:  # skips doctype, CDATA, declarations
                parts.append(str(child) if inside_pre else re.sub(r"[ \t\r\n\f]+", " ", child))
        elif isinstance(child, Tag):
            if child.name == "br":
                parts.append("\n")
                continue
            opens_block = child.name in HTML_BLOCK_TAGS
            if opens_block:
                parts.append("\n")
            stack.append((iter(child.children), inside_pre or child.name == "pre", opens_block))
    lines = (line.strip(" ") for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line.strip())


def _check_zip(path: Path, data: bytes, max_file_mb: float) -> None:
    """Refuse a .docx whose members would unpack to too much, before anything unpacks.

    The sizes come from the zip's central directory; Python's ``zipfile`` (which
    python-docx reads with) never returns more than a member's declared size, so a
    lying entry fails its CRC check instead of growing without bound."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise LoadError(path, f"not a readable .docx file ({type(exc).__name__}: {exc})") from exc
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > ZIP_RATIO_MIN_BYTES and ratio > MAX_ZIP_RATIO:
            raise LoadError(
                path,
                f"refused as a zip bomb: {info.filename} would unpack "
                f"{info.file_size / _MB:.1f} MB from {info.compress_size / _MB:.2f} MB "
                f"({ratio:.0f}× > {MAX_ZIP_RATIO}×)",
            )
    unpacked = sum(info.file_size for info in members)
    if unpacked > max_file_mb * _MB:
        raise LoadError(path, _too_large(unpacked, max_file_mb, "unpacked .docx content"))


def _docx_text(path: Path, data: bytes) -> str:
    try:
        import docx
        from docx.table import Table

        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    cells: list[str] = []
                    for cell in row.cells:  # merged cells repeat: keep one copy
                        if cell.text not in cells:
                            cells.append(cell.text)
                    lines.extend(cells)
            else:
                lines.append(block.text)
    except Exception as exc:  # python-docx raises many types for a broken package
        raise LoadError(path, f"not a readable .docx file ({type(exc).__name__}: {exc})") from exc
    return "\n".join(lines)


def _pdf_text(path: Path, data: bytes, max_text_mb: float) -> str:
    """Text of every page; a PDF with too many pages, a stream that decompresses past
    ``PDF_MAX_STREAM_BYTES`` or more text than ``max_text_mb`` is refused as too large."""
    try:
        from pypdf import PdfReader, apply_configuration
        from pypdf.errors import LimitReachedError

        cap = PDF_MAX_STREAM_BYTES
        with apply_configuration(
            zlib_maximum_output_length=cap,
            lzw_maximum_output_length=cap,
            run_length_maximum_output_length=cap,
            brotli_maximum_output_length=cap,
            array_based_stream_maximum_output_length=cap,
            maximum_declared_stream_length=cap,
        ):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise LoadError(path, "encrypted PDF")
            if len(reader.pages) > MAX_PDF_PAGES:
                raise LoadError(path, f"too large ({len(reader.pages)} pages > {MAX_PDF_PAGES})")
            pages: list[str] = []
            size = 0
            for page in reader.pages:
                pages.append(page.extract_text() or "")
                size += len(pages[-1].encode("utf-8", "surrogatepass"))
                if size > max_text_mb * _MB:
                    raise LoadError(path, _too_large(size, max_text_mb, "text"))
    except LoadError:
        raise
    except LimitReachedError as exc:
        raise LoadError(path, f"too large: a PDF stream unpacks past a limit ({exc})") from exc
    except Exception as exc:  # pypdf raises many types for a broken file
        raise LoadError(path, f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    return "\n".join(pages)
