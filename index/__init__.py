"""Persistence: one SQLite database (documents, chunks, compact vectors, keyword tokens,
manifest) written one transaction per ingest; FAISS and BM25 are built from it in memory."""

from index.state import Changes, IndexState, Manifest
from index.store import IndexStore, StoreError

__all__ = ["Changes", "IndexState", "IndexStore", "Manifest", "StoreError"]
