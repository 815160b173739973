"""Answer with a local GGUF model through llama.cpp's server, managed by rag.

``LocalBackend`` is the OpenAI-compatible backend pointed at a server that
``rag.llm.server.LocalServer`` starts on loopback (or reuses) on first use and stops
when the backend is closed or the process exits. What differs from a remote model is
tuned for a small model on two CPU cores:

* a prompt of explicit rules (``prompts/system_local.txt``),
* a passage budget that keeps prompt processing to tens of seconds
  (``RAG_LOCAL_PASSAGE_TOKENS``),
* ``cache_prompt`` so the server reuses the evaluated system prompt,
* English questions are translated into Chinese by the model before retrieval.

Anything that goes wrong surfaces as ``BackendError`` (so the pipeline falls back to
the extractive answer, marked degraded), as with the remote backend.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import prompts
from rag.answer.base import AnswerRequest, BackendError, Draft, TokenCallback
from rag.answer.openai import OpenAIBackend
from rag.llm.install import active_model, llm_dir
from rag.llm.models import DEFAULT_LOCAL_MODEL, MODELS
from rag.llm.server import MODEL_ALIAS, LocalServer, ServerError
from rag.settings import Settings
from zh.text import has_han

__all__ = ["LocalBackend", "resolve_model"]

log = logging.getLogger(__name__)

TRANSLATE_MAX_TOKENS = 80
CONTEXT_MARGIN = 128  # tokens kept free: cl100k counts are an estimate of the model's


def resolve_model(settings: Settings) -> Path:
    """The GGUF to serve: ``RAG_LOCAL_MODEL`` (a catalogue key or a path), else the last
    one ``rag llm install`` made the default, else where the 1.5B model would be."""
    choice = settings.local_model.strip()
    directory = llm_dir(settings.models_dir)
    if choice in MODELS:
        return directory / MODELS[choice].file_name
    if choice:
        return Path(choice).expanduser()
    return active_model(settings.models_dir) or directory / MODELS[DEFAULT_LOCAL_MODEL].file_name


class LocalBackend(OpenAIBackend):
    name = "local"
    system_template = "system_local"
    extra_body = {"cache_prompt": True}  # replaces the parent's; never mutated

    def __init__(
        self, server: LocalServer, *, passage_tokens: int = 1200, translate: bool = True,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        kwargs.setdefault("model", MODEL_ALIAS)
        super().__init__(base_url="http://127.0.0.1:1/v1", **kwargs)  # set on first use
        self.server = server
        self.passage_tokens = passage_tokens
        self.translate = translate

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> LocalBackend:
        server = LocalServer(
            settings.home / "llm",
            resolve_model(settings),
            threads=settings.llm_threads,
            ctx=settings.llm_ctx,
            startup_timeout=settings.local_startup_timeout,
        )
        kwargs: dict[str, Any] = {
            "passage_tokens": settings.local_passage_tokens,
            "translate": settings.local_translate_questions,
            "temperature": 0.0,  # reproducible answers; the rules leave no room for style
            "max_tokens": settings.local_max_tokens,
            "stream": settings.llm_stream,
            "connect_timeout": settings.llm_connect_timeout,
            # the first byte comes only after the whole prompt is processed
            "read_timeout": max(settings.llm_read_timeout, settings.local_deadline / 2),
            "deadline": settings.local_deadline,
            "max_retries": 1,  # a second try only helps when the server went away
            "context_tokens": settings.llm_ctx - settings.local_max_tokens - CONTEXT_MARGIN,
            "history_turns": settings.llm_history_turns,
        }
        kwargs.update(overrides)
        return cls(server, **kwargs)

    def _connect(self) -> None:
        try:
            self.url = self.server.ensure() + "/chat/completions"
        except ServerError as exc:
            raise BackendError(str(exc)) from exc

    def generate(self, request: AnswerRequest, on_token: TokenCallback | None = None) -> Draft:
        if request.passages:
            self._connect()
        return super().generate(request, on_token)

    def search_query(self, query: str, language: str) -> str:
        if language != "en" or not self.translate:
            return query
        try:
            self._connect()
            payload = {
                **self.extra_body,
                "model": self.model,
                "messages": [
                    {"role": "user", "content": prompts.render("translate_local", question=query)}
                ],
                "temperature": 0.0,
                "max_tokens": TRANSLATE_MAX_TOKENS,
                "stream": False,
            }
            text, _usage, _model = self._with_retries(payload, None)
        except Exception as exc:  # retrieval goes on with the English question
            log.warning("could not translate the question for retrieval: %s", exc)
            return query
        text = text.strip().splitlines()[0].strip() if text.strip() else ""
        return text if has_han(text) else query

    def close(self) -> None:
        super().close()
        self.server.stop()
