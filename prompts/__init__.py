"""Prompt templates, shipped as package data and rendered strictly.

Templates are plain ``.txt`` files in this package with ``$name`` placeholders
(``string.Template`` syntax; a literal dollar sign is written ``$$``). Rendering
refuses unknown and missing variables alike, so a renamed placeholder fails loudly in
tests instead of silently sending a prompt with a hole in it. Values (passage text,
questions) are substituted as data and never parsed as template syntax, so whatever
they contain — dollar signs, braces, text that looks like instructions — reaches the
model unchanged.

The refusal sentences are defined in ``zh.text`` (the extractive backend answers with
them too) and re-exported here: the system prompt tells the model to reply with
exactly one of them, and ``is_refusal`` recognises a reply that is one.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from string import Template

from zh.text import REFUSALS, refusal_for

__all__ = [
    "LANGUAGES",
    "PromptError",
    "REFUSAL_EN",
    "REFUSAL_ZH",
    "REFUSAL_ZH_HANT",
    "REFUSALS",
    "is_refusal",
    "load",
    "placeholders",
    "refusal_for",
    "render",
    "template_names",
]

REFUSAL_ZH = REFUSALS["zh-hans"]
REFUSAL_ZH_HANT = REFUSALS["zh-hant"]
REFUSAL_EN = REFUSALS["en"]
LANGUAGES = tuple(REFUSALS)

_SUFFIX = ".txt"
# What is ignored when deciding whether a reply is just the refusal sentence:
# whitespace, sentence punctuation, quotes and stray [n] markers.
_REFUSAL_NOISE = re.compile(r"\[\d+\]|[\s。．.!！\"'“”‘’「」『』]")


class PromptError(ValueError):
    """A template is missing, malformed, or was rendered with the wrong variables."""


def _file_name(name: str) -> str:
    return name if name.endswith(_SUFFIX) else name + _SUFFIX


def template_names() -> list[str]:
    """Names of the templates shipped in this package (without ``.txt``)."""
    return sorted(
        entry.name[: -len(_SUFFIX)]
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(_SUFFIX)
    )


@cache
def load(name: str) -> Template:
    """The template called ``name`` (``"user"`` or ``"user.txt"``).

    A file's final newline is not part of the template: editors add one, and it
    would otherwise leak into every rendered prompt.
    """
    resource = resources.files(__name__).joinpath(_file_name(name))
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise PromptError(
            f"no prompt template {name!r}; available: {', '.join(template_names())}"
        ) from exc
    template = Template(text.rstrip("\n"))
    if not template.is_valid():
        raise PromptError(f"prompt template {name!r} has a malformed placeholder (use $$ for $)")
    return template


def placeholders(name: str) -> frozenset[str]:
    """The variables template ``name`` expects."""
    return frozenset(load(name).get_identifiers())


def render(name: str, **variables: object) -> str:
    """Fill template ``name``; every placeholder must be given and nothing else."""
    expected = placeholders(name)
    given = set(variables)
    missing = sorted(expected - given)
    unknown = sorted(given - expected)
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(unknown)}")
        raise PromptError(f"prompt template {name!r}: {'; '.join(problems)}")
    return load(name).substitute({k: str(v) for k, v in variables.items()})


def is_refusal(text: str) -> bool:
    """Whether ``text`` is nothing but a refusal sentence, in any of the answer languages.

    Whitespace, final punctuation, quotes, letter case and stray ``[n]`` markers are
    ignored; anything more than the refusal (an answer followed by a refusal, say) is not
    a refusal.
    """
    core = _REFUSAL_NOISE.sub("", text).casefold()
    return bool(core) and any(
        core == _REFUSAL_NOISE.sub("", r).casefold() for r in REFUSALS.values()
    )
