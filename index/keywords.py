"""Keyword side of retrieval: Chinese tokenisation and a BM25 index (bm25s).

Text is normalised to simplified script and lowercased before tokenising, so a
traditional-script query matches a simplified speech and vice versa. Two
tokenisers are available and chosen by measurement (see README): ``jieba``
(search-mode word segmentation) and ``bigram`` (overlapping Han character
bigrams plus ASCII words).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from rag.script import to_simplified

__all__ = ["TOKENIZERS", "tokenize", "BM25Index"]

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:\.[0-9]+)?")
_WORDISH = re.compile(r"[\u3400-\u9fff\uf900-\ufaffa-z0-9]")

# Function words that carry no topical signal in either tokeniser.
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 等 也 就 都 而 又 并 把 被 对 为 以 之 其 这 那 着 个 们 上 中 下 "
    "我 你 他 她 它 有 要 将 从 到 向 于 或 但 则 所 如 即 a an the of and or to in on for is are "
    "what which who how why when does do did".split()
)


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def _normalise(text: str) -> str:
    return to_simplified(text).lower()


def tokenize_jieba(text: str) -> list[str]:
    jb = _jieba()
    tokens = []
    for tok in jb.cut_for_search(_normalise(text)):
        tok = tok.strip()
        if tok and _WORDISH.search(tok) and tok not in STOPWORDS:
            tokens.append(tok)
    return tokens


def tokenize_bigram(text: str) -> list[str]:
    tokens: list[str] = []
    for run in _HAN_RUN.findall(_normalise(text)):
        if run.isascii():
            if run not in STOPWORDS:
                tokens.append(run)
        elif len(run) == 1:
            if run not in STOPWORDS:
                tokens.append(run)
        else:
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "jieba": tokenize_jieba,
    "bigram": tokenize_bigram,
}


def tokenize(text: str, tokenizer: str) -> list[str]:
    try:
        fn = TOKENIZERS[tokenizer]
    except KeyError:
        raise ValueError(
            f"unknown tokenizer {tokenizer!r}; choose one of: {', '.join(TOKENIZERS)}"
        ) from None
    return fn(text)


class BM25Index:
    """BM25 over token lists; rows align with the docstore's chunk rows."""

    META_FILE = "bm25.json"
    K1 = 1.2
    B = 0.75

    def __init__(self, tokenizer: str = "jieba") -> None:
        if tokenizer not in TOKENIZERS:
            tokenize("", tokenizer)  # raises the helpful error
        self.tokenizer = tokenizer
        self._bm25: bm25s.BM25 | None = None
        self.size = 0

    def build(self, texts: Sequence[str]) -> None:
        self.build_tokens([tokenize(t, self.tokenizer) for t in texts])

    def build_tokens(self, corpus: Sequence[Sequence[str]]) -> None:
        """Index rows already tokenised (with this index's tokenizer), e.g. as stored."""
        self.size = len(corpus)
        if not corpus:
            self._bm25 = None
            return
        bm = bm25s.BM25(k1=self.K1, b=self.B)
        bm.index([list(toks) or ["\u0000"] for toks in corpus], show_progress=False)
        self._bm25 = bm

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (zeros where nothing matches)."""
        return self.scores_tokens(tokenize(query, self.tokenizer))

    def scores_tokens(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every row for query ``tokens`` (zeros where nothing matches)."""
        if self._bm25 is None:
            return np.zeros(self.size, dtype=np.float32)
        tokens = list(tokens)
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def save(self, directory: Path) -> None:
        sub = directory / "bm25"
        if self._bm25 is not None:
            self._bm25.save(str(sub))
        (directory / self.META_FILE).write_text(
            json.dumps({"tokenizer": self.tokenizer, "size": self.size}), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        meta = json.loads((directory / cls.META_FILE).read_text(encoding="utf-8"))
        index = cls(meta["tokenizer"])
        index.size = int(meta["size"])
        if index.size:
            index._bm25 = bm25s.BM25.load(str(directory / "bm25"), allow_pickle=False)
        return index
