"""index.state: the sentence-vector layout is written and read by one rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from index.state import sentence_texts
from rag.pipeline import Pipeline
from rag.settings import Settings
from zh.script import to_simplified
from zh.text import sentence_spans


def test_sentence_rows_point_at_the_vectors_of_their_chunks(tmp_path: Path) -> None:
    pipeline = Pipeline(Settings(home=tmp_path, embed_model="hash"))
    pipeline.ingest()
    state = pipeline.state()
    rows = state.sentence_rows()
    assert len(rows) > 100
    for chunk_row, c in enumerate(state.chunks):
        for s, e in sentence_spans(c.text):
            row = rows[to_simplified(c.text[s:e])]
            # the first chunk that says the sentence owns the row the lookup gives
            assert state.chunks[state.sentence_owner[row]].text.count(c.text[s:e]) >= 1
            assert state.sentence_owner[row] <= chunk_row
    texts, owner = sentence_texts(state.chunks)
    assert np.array_equal(np.asarray(owner), state.sentence_owner)
    assert len(texts) == len(state.sentence_vectors)


def test_sentence_rows_are_empty_for_another_layout(tmp_path: Path) -> None:
    pipeline = Pipeline(Settings(home=tmp_path, embed_model="hash"))
    pipeline.ingest()
    state = pipeline.state()
    other = dataclasses.replace(state, sentence_vectors=state.sentence_vectors[:-1])
    assert other.sentence_rows() == {}
