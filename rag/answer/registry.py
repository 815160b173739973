"""The answer backends by name, each built the same way: ``build(settings, corpus)``.

A backend that reads the index's statistics (the extractive one weighs terms by how
many chunks hold them) says so with ``per_index``: it is built anew for each index it
answers from, while the others (HTTP clients with connection pools) can be shared.
Nothing here imports a backend until it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.answer.base import AnswerBackend

if TYPE_CHECKING:
    from rag.settings import Settings

__all__ = ["BACKENDS", "BackendSpec", "Corpus", "backend_spec", "build_backend"]


class Corpus(Protocol):
    """What a backend may ask of the indexed speeches."""

    def term_df(self, term: str) -> int:
        """How many chunks contain ``term``."""
        ...

    def n_chunks(self) -> int:
        """How many chunks the index holds."""
        ...

    def embed_pair(self, claim: str, spans: Sequence[str]) -> np.ndarray:
        """Cosine between a claim and each candidate span."""
        ...

    def english_groups(self, question: str) -> list[list[str]]:
        """Chinese terms of the speeches that an English question's words translate to."""
        ...


Build = Callable[["Settings", Corpus], AnswerBackend]


@dataclass(frozen=True)
class BackendSpec:
    build: Build
    per_index: bool = False  # reads the index's statistics: one instance per index


def _extractive(settings: Settings, corpus: Corpus) -> AnswerBackend:
    from rag.answer.extractive import ExtractiveBackend, idf_weights

    # the corpus is asked at each call, so the statistics follow the index
    return ExtractiveBackend(
        idf_weights(corpus.term_df, lambda: max(corpus.n_chunks(), 1)),
        corpus.embed_pair,
        in_corpus=lambda term: corpus.term_df(term) > 0,
        translate=corpus.english_groups,
    )


def _openai(settings: Settings, corpus: Corpus) -> AnswerBackend:
    from rag.answer.openai import OpenAIBackend

    return OpenAIBackend.from_settings(settings)


def _local(settings: Settings, corpus: Corpus) -> AnswerBackend:
    from rag.answer.local import LocalBackend  # llama.cpp server managed by rag (rag.llm)

    return LocalBackend.from_settings(settings)


BACKENDS: dict[str, BackendSpec] = {
    "extractive": BackendSpec(_extractive, per_index=True),
    "openai": BackendSpec(_openai),
    "local": BackendSpec(_local),
}


def backend_spec(name: str) -> BackendSpec:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown answer backend {name!r}; choose one of: {', '.join(BACKENDS)}"
        ) from None


def build_backend(name: str, settings: Settings, corpus: Corpus) -> AnswerBackend:
    """The backend called ``name``, built from the settings and the corpus."""
    return backend_spec(name).build(settings, corpus)
