"""The indexed speeches as the answer backends and the retriever ask about them.

:class:`IndexCorpus` implements :class:`rag.answer.Corpus`: how many chunks hold a
term, the cosine between a claim and candidate sentences (reusing the stored sentence
vectors), and the Chinese terms an English question's words translate to. It follows
the index: every question reads the state current at that moment, and the term
statistics are rebuilt once per index generation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from index.state import IndexState
from rag.bilingual import english_groups
from zh.script import to_simplified

__all__ = ["IndexCorpus"]


class IndexCorpus:
    """Asks ``state()`` for the current index at every question; ``embed_query`` and
    ``embed_passages`` embed what the stored vectors do not cover."""

    def __init__(
        self,
        state: Callable[[], IndexState],
        embed_query: Callable[[str], np.ndarray],
        embed_passages: Callable[[list[str]], np.ndarray],
    ) -> None:
        self._state = state
        self._embed_query = embed_query
        self._embed_passages = embed_passages
        self._df: tuple[str, Counter[str], list[str], dict[str, int]] | None = None

    def english_groups(self, question: str) -> list[list[str]]:
        """Chinese terms of the speeches that an English question's words and names
        translate to (CC-CEDICT and the speakers' pinyin), one group per English word."""
        people = {d.meta.speaker for d in self._state().documents.values() if d.meta.speaker}
        return english_groups(question, lambda t: self.term_df(t) > 0, people=sorted(people))

    def english_terms(self, question: str) -> list[str]:
        return list(dict.fromkeys(t for grp in self.english_groups(question) for t in grp))

    def _corpus_stats(self) -> tuple[Counter[str], list[str], dict[str, int]]:
        """Per index generation: how many chunks contain each character bigram, the
        chunks' simplified texts, and a cache of longer terms' chunk counts."""
        state = self._state()
        gen = state.manifest.generation
        if self._df is None or self._df[0] != gen:
            df: Counter[str] = Counter()
            texts = [to_simplified(c.text).lower() for c in state.chunks]
            for t in texts:
                df.update({t[i : i + 2] for i in range(len(t) - 1)})
            self._df = (gen, df, texts, {})
        return self._df[1], self._df[2], self._df[3]

    def term_df(self, term: str) -> int:
        """How many chunks of the current index contain ``term`` (simplified, lowercase)."""
        df, texts, longer = self._corpus_stats()
        t = to_simplified(term).lower()
        if len(t) <= 2:
            return df.get(t, 0)
        if t not in longer:
            longer[t] = sum(1 for x in texts if t in x)
        return longer[t]

    def n_chunks(self) -> int:
        """How many chunks the current index holds."""
        return len(self._state().chunks)

    def embed_pair(self, claim: str, spans: Sequence[str]) -> np.ndarray:
        """Cosine between a claim (as a query) and candidate spans (as passages); spans
        that are indexed sentences reuse their stored vectors."""
        q = self._embed_query(to_simplified(claim))
        state = self._state()
        table, sv = state.sentence_rows(), state.sentence_vectors
        texts = [to_simplified(s) for s in spans]
        missing = [t for t in texts if t not in table]
        fresh = dict(zip(missing, self._embed_passages(missing), strict=True)) if missing else {}
        vecs = np.vstack([sv[table[t]] if t in table else fresh[t] for t in texts])
        return vecs @ q
