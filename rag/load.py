"""Files of each supported format → decoded text.

This is the first step of ingest: it only turns bytes into text (and says why
when it cannot). Cleaning boilerplate and reading metadata is ``rag.clean``.
Which encoding a text file is in is decided by ``rag.decode``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.decode import declared_charset, decode_bytes
from rag.types import SkippedFile

__all__ = [
    "SUPPORTED_SUFFIXES",
    "TEXT_SUFFIXES",
    "SIDECAR_SUFFIX",
    "RawFile",
    "LoadError",
    "iter_input_files",
    "is_sidecar",
    "find_sidecar",
    "read_sidecar",
    "read_file",
    "html_to_text",
]

TEXT_SUFFIXES: frozenset[str] = frozenset({".txt", ".md"})
HTML_SUFFIXES: frozenset[str] = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES: frozenset[str] = TEXT_SUFFIXES | HTML_SUFFIXES | {".docx", ".pdf"}
SIDECAR_SUFFIX = ".meta.json"

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

_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x85]")


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


# -- metadata sidecars -------------------------------------------------------


def find_sidecar(path: Path) -> Path | None:
    """``<file>.meta.json`` or ``<stem>.meta.json`` next to ``path``, if present."""
    for candidate in (
        path.with_name(path.name + SIDECAR_SUFFIX),
        path.with_name(path.stem + SIDECAR_SUFFIX),
    ):
        if candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> dict[str, Any] | None:
    sidecar = find_sidecar(path)
    if sidecar is None:
        return None
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(path, f"unreadable sidecar {sidecar.name} ({exc})") from exc
    if not isinstance(data, dict):
        raise LoadError(path, f"sidecar {sidecar.name} is not a JSON object")
    return data


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
        declared = declared_charset(data) if suffix in HTML_SUFFIXES else None
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
