"""Persistence: one SQLite database (documents, chunks, compact vectors, keyword tokens,
manifest) written one transaction per ingest; FAISS and BM25 are built from it in memory."""

from index.store import Changes, IndexState, IndexStore, Manifest, StoreError

__all__ = ["Changes", "IndexState", "IndexStore", "Manifest", "StoreError"]
