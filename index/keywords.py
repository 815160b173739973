"""Keyword side of retrieval: Chinese tokenisation and a BM25 index.

Text is normalised to simplified script and lowercased before tokenising, so a
traditional-script query matches a simplified speech and vice versa. Two
tokenisers are available and chosen by measurement (see README): ``jieba``
(search-mode word segmentation) and ``bigram`` (overlapping Han character
bigrams plus ASCII words).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from zh.script import to_simplified
from zh.text import STOPWORDS, jieba

__all__ = ["TOKENIZERS", "tokenize", "BM25Index"]

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:\.[0-9]+)?")
_WORDISH = re.compile(r"[\u3400-\u9fff\uf900-\ufaffa-z0-9]")


def _normalise(text: str) -> str:
    return to_simplified(text).lower()


def tokenize_jieba(text: str) -> list[str]:
    jb = jieba()
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


PLACEHOLDER = "\u0000"  # the one token of a row without any (counts in its length)


class BM25Index:
    """BM25 (Lucene variant, as ``bm25s`` scores it) over token lists; rows align with
    the chunk rows.

    Held as a term → (rows, precomputed scores) inverted list built with a few array
    operations, from token lists (``build_tokens``) or from stored per-row term counts
    (``from_postings``, which is how the store loads it: no re-tokenising, no Python
    loop over tokens).
    """

    K1 = 1.2
    B = 0.75

    def __init__(self, tokenizer: str = "jieba") -> None:
        if tokenizer not in TOKENIZERS:
            tokenize("", tokenizer)  # raises the helpful error
        self.tokenizer = tokenizer
        self.size = 0
        self.vocab: dict[str, int] = {}
        self._indptr = np.zeros(1, dtype=np.int64)
        self._rows = np.zeros(0, dtype=np.int32)
        self._scores = np.zeros(0, dtype=np.float32)

    def build(self, texts: Sequence[str]) -> None:
        self.build_tokens([tokenize(t, self.tokenizer) for t in texts])

    def build_tokens(self, corpus: Sequence[Sequence[str]]) -> None:
        """Index rows already tokenised (with this index's tokenizer)."""
        vocab: dict[str, int] = {}
        terms, counts, lengths = [], [], []
        for tokens in corpus:
            tokens = list(tokens) or [PLACEHOLDER]
            tf = Counter(vocab.setdefault(t, len(vocab)) for t in tokens)
            terms.append(np.fromiter(tf.keys(), np.int64, len(tf)))
            counts.append(np.fromiter(tf.values(), np.int64, len(tf)))
            lengths.append(len(tokens))
        self.set_postings(vocab, terms, counts, lengths)

    def set_postings(
        self,
        vocab: dict[str, int],
        terms: Sequence[np.ndarray],
        counts: Sequence[np.ndarray],
        lengths: Sequence[int],
    ) -> None:
        """Row i holds term ids ``terms[i]`` (distinct) ``counts[i]`` times each, and
        ``lengths[i]`` tokens in all; ``vocab`` maps each token to its term id."""
        self.vocab = vocab
        self.size = n = len(lengths)
        if n == 0:
            self._indptr = np.zeros(1, dtype=np.int64)
            self._rows = np.zeros(0, dtype=np.int32)
            self._scores = np.zeros(0, dtype=np.float32)
            return
        term = np.concatenate([np.asarray(t, np.int64) for t in terms])
        tf = np.concatenate([np.asarray(c, np.float64) for c in counts])
        row = np.repeat(np.arange(n, dtype=np.int32), [len(t) for t in terms])
        length = np.asarray(lengths, dtype=np.float64)
        n_terms = max(max(vocab.values(), default=-1), int(term.max(initial=-1))) + 1
        df = np.bincount(term, minlength=n_terms)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        norm = self.K1 * ((1 - self.B) + self.B * length / length.mean())
        score = (idf[term] * (tf / (norm[row] + tf))).astype(np.float32)
        order = np.argsort(term, kind="stable")  # by term, rows ascending within a term
        self._rows = row[order]
        self._scores = score[order]
        self._indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (zeros where nothing matches)."""
        return self.scores_tokens(tokenize(query, self.tokenizer))

    def scores_tokens(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every row for query ``tokens`` (zeros where nothing matches);
        a token given twice counts twice."""
        out = np.zeros(self.size, dtype=np.float32)
        for token in tokens:
            term = self.vocab.get(token)
            if term is None or term + 1 >= len(self._indptr):
                continue
            lo, hi = self._indptr[term], self._indptr[term + 1]
            out[self._rows[lo:hi]] += self._scores[lo:hi]  # a row appears once per term
        return out
