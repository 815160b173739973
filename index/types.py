"""The records the index stores: a document, its metadata and its chunks.

Offsets (``start``/``end``) always index into ``Document.text``, the cleaned
text in its original script, so ``doc.text[chunk.start:chunk.end] == chunk.text``.
They live here, on the ground floor, because the store reads and writes them;
``rag.types`` hands them on to the rest of the pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DocMeta", "Document", "Chunk"]


@dataclass
class DocMeta:
    title: str = ""
    speaker: str = ""
    date: str = (
        ""  # ISO "YYYY-MM-DD" (or "YYYY-MM" / "YYYY") when the year is known, else as written
    )
    occasion: str = ""  # the meeting or event the speech was given at
    site: str = ""  # source website / publisher, if the page names one
    script: str = "simplified"  # "simplified" | "traditional"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocMeta:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class Document:
    doc_id: str  # stable id derived from the file name (stem)
    source: str  # path or name the document was loaded from
    text: str  # cleaned speech text; every offset refers to this string
    meta: DocMeta = field(default_factory=DocMeta)
    sha256: str = ""  # hash of the raw input bytes (change detection)


@dataclass
class Chunk:
    chunk_id: str  # f"{doc_id}#{ordinal}"
    doc_id: str
    start: int
    end: int
    text: str  # display text == document.text[start:end]
    section: str = ""  # readable section path, levels joined with " › "
    section_path: list[str] = field(default_factory=list)
    index_text: str = ""  # header + text: what is embedded and keyword-indexed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
