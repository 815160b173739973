"""The naive baseline the system must beat: fixed 300-character windows of the raw
files (no cleaning, no sections), BM25 over plain jieba tokens (no script normalisation)."""

from __future__ import annotations

from pathlib import Path

import bm25s

from zh.text import jieba

__all__ = ["NaiveBaseline", "WINDOW"]

WINDOW = 300


def _tokens(text: str) -> list[str]:
    return [t for t in jieba().lcut(text) if t.strip()]


class NaiveBaseline:
    def __init__(self, files: list[Path]) -> None:
        self.windows: list[tuple[str, str]] = []  # (file stem, text)
        for f in files:
            raw = f.read_text(encoding="utf-8", errors="replace")
            for i in range(0, len(raw), WINDOW):
                self.windows.append((f.stem, raw[i : i + WINDOW]))
        self.bm25 = bm25s.BM25()
        self.bm25.index([_tokens(t) or ["\u0000"] for _, t in self.windows], show_progress=False)

    def search(self, query: str, k: int = 10) -> list[dict[str, object]]:
        scores = self.bm25.get_scores(_tokens(query))
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
        return [
            {"text": self.windows[i][1], "doc_id": self.windows[i][0], "section": "",
             "start": 0, "end": 0, "score": float(scores[i])}
            for i in order
        ]  # fmt: skip
