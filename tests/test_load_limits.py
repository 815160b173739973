"""Size limits of ``rag.load``: oversized documents and decompression bombs are skipped
with a reason, before they can cost unbounded memory or time.

The bomb builders stream their content through zlib, so building one takes a few
hundred KB of memory however large it claims to unpack; ``python
tests/test_load_limits.py DIR`` writes them to DIR for measuring by hand.
"""

from __future__ import annotations

import io
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from test_load import DOC_LINES, make_docx, make_pdf

from rag.documents import load_documents
from rag.load import LoadError, html_to_text, read_file

MB = 1 << 20


class _Opened(BaseException):
    """Raised by a stand-in for the container parser: the file got past the checks.
    A BaseException, so the loader's own ``except Exception`` does not swallow it."""


def docx_bomb(unpacked_mb: int = 200, filler: bytes = b" ") -> bytes:
    """A .docx whose word/document.xml inflates to ``unpacked_mb`` MB of ``filler``
    repeated (blank space packs about a thousand times); the other parts are a real
    document's."""
    source = zipfile.ZipFile(io.BytesIO(make_docx(DOC_LINES)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info, source.read(info))
                continue
            xml = source.read(info)
            head, tail = xml[: xml.rindex(b"</w:body>")], xml[xml.rindex(b"</w:body>") :]
            with bomb.open(info.filename, "w", force_zip64=True) as member:
                member.write(head)
                block = filler * (MB // len(filler))
                for _ in range(unpacked_mb):
                    member.write(block)
                member.write(tail)
    return out.getvalue()


def pdf_bomb(unpacked_mb: int = 40) -> bytes:
    """A one-page PDF whose content stream is FlateDecode'd and inflates to
    ``unpacked_mb`` MB (a text show followed by blank space)."""
    page = make_pdf(DOC_LINES)
    start = page.index(b"4 0 obj")
    end = page.index(b"endobj", start) + len(b"endobj")
    original = page[start:end]
    content = original[original.index(b"stream\n") + 7 : original.rindex(b"\nendstream")]
    packer = zlib.compressobj(9)
    packed = packer.compress(content + b"\n")
    block = b" " * MB
    for _ in range(unpacked_mb):
        packed += packer.compress(block)
    packed += packer.flush()
    stream = b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream\nendobj" % (
        len(packed),
        packed,
    )
    # pypdf repairs the cross-reference table when offsets are off, which they now are
    return page[:start] + stream + page[end:]


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    paths = {"docx": folder / "bomb.docx", "pdf": folder / "bomb.pdf"}
    paths["docx"].write_bytes(docx_bomb())
    paths["pdf"].write_bytes(pdf_bomb())
    return paths


def test_docx_bomb_is_refused_before_it_is_unpacked(
    bombs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import docx

    def must_not_open(*args: object, **kwargs: object) -> None:
        raise _Opened

    monkeypatch.setattr(docx, "Document", must_not_open)
    assert bombs["docx"].stat().st_size < 1 * MB
    with pytest.raises(LoadError, match="zip bomb") as info:
        read_file(bombs["docx"])
    assert "word/document.xml" in info.value.reason


def test_docx_unpacking_past_the_file_limit_is_too_large(tmp_path: Path) -> None:
    path = tmp_path / "speech.docx"
    path.write_bytes(make_docx(DOC_LINES))
    assert read_file(path).text  # fine with the default limits
    with pytest.raises(
        LoadError, match=r"too large \(0.8 MB of unpacked .docx content > 0.5 MB limit\)"
    ):
        read_file(path, max_file_mb=0.5)


def test_pdf_stream_bomb_is_refused(bombs: dict[str, Path]) -> None:
    assert bombs["pdf"].stat().st_size < 1 * MB
    with pytest.raises(LoadError, match="too large"):
        read_file(bombs["pdf"])


def test_pdf_text_over_the_limit_is_too_large(tmp_path: Path) -> None:
    path = tmp_path / "speech.pdf"
    path.write_bytes(make_pdf(DOC_LINES * 40))
    assert read_file(path).text
    with pytest.raises(LoadError, match=r"too large \(.* MB of text > 0.001 MB limit\)"):
        read_file(path, max_text_mb=0.001)


def test_text_over_the_limit_is_skipped_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    path.write_text("群团工作要坚持正确政治方向。\n" * 5000, encoding="utf-8")  # 0.2 MB
    docs, skipped = load_documents([path], max_text_mb=0.1)
    assert not docs
    assert [(s.path, s.reason) for s in skipped] == [
        (str(path), "too large (0.2 MB of text > 0.1 MB limit)")
    ]
    assert load_documents([path], max_text_mb=1)[0]


def test_file_over_the_limit_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"<p>" + "文字".encode() * 200_000 + b"</p>")  # 1.1 MB

    def must_not_read(self: Path) -> bytes:
        raise _Opened

    monkeypatch.setattr(Path, "read_bytes", must_not_read)
    with pytest.raises(LoadError, match=r"too large \(1.1 MB of file > 1 MB limit\)"):
        read_file(path, max_file_mb=1)


def test_deeply_nested_html_is_read() -> None:
    depth = 5000
    markup = "<div><span>" * depth + "讲话正文" + "</span></div>" * depth
    assert html_to_text(f"<html><body>{markup}<pre>  保留  空格 </pre></body></html>") == (
        "讲话正文\n保留  空格"
    )


if __name__ == "__main__":  # write the bombs for measuring by hand
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "bomb.docx").write_bytes(docx_bomb())
    paragraph = "<w:p><w:r><w:t>群团</w:t></w:r></w:p>".encode()
    (out / "bomb-paragraphs.docx").write_bytes(docx_bomb(100, paragraph))
    (out / "bomb.pdf").write_bytes(pdf_bomb())
    print("written to", out, file=sys.stderr)
