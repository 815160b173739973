"""Enumerations found across a whole speech (rag/lists.py) and list intent."""

from __future__ import annotations

from rag.intent import asks_list
from rag.lists import expected_count, find_enumeration, inline_count

FILLER = "这项工作要持续推进，久久为功，切实抓出成效。" * 30  # ~700 chars between items
DOC = (
    "会议强调，要做好四个方面的工作。\n"
    f"一是把好方向。{FILLER}\n"
    f"二是搞好指导。{FILLER}\n"
    f"三是用好干部。{FILLER}\n"
    f"四是抓好保障。{FILLER}\n"
    "一是另一个清单的开头。\n"
)


def _quotes(text: str, spans: tuple[tuple[int, int], ...]) -> list[str]:
    return [text[s:e] for s, e in spans]


def test_expected_count_from_questions_and_slogans() -> None:
    assert expected_count("对各级党委提了哪四点要求？") == 4
    assert expected_count("要把握哪五个方面的重点？") == 5
    assert expected_count("做到“两加强两坚持”分别是什么？") == 4
    assert expected_count("Which three projects were named?") == 3
    assert expected_count("商丘侨联的品牌活动叫什么？") is None


def test_items_far_apart_are_found_from_the_lead_in_and_from_any_item() -> None:
    lead = DOC.index("会议强调")
    enum = find_enumeration(DOC, (lead, lead + 5), expected_count("哪四个方面"))
    assert enum is not None
    assert _quotes(DOC, enum.items) == [
        "一是把好方向。",
        "二是搞好指导。",
        "三是用好干部。",
        "四是抓好保障。",
    ]
    third = DOC.index("三是用好干部")
    from_item = find_enumeration(DOC, (third, third + 3))
    assert from_item is not None and len(from_item) == 4  # the next “一是” starts another list


def test_colon_clauses_and_inline_lists() -> None:
    text = "存在一些问题，具体表现在:认识还有待提高；推进不够平衡；缺乏有效抓手。\n下一段。"
    at = text.index("存在")
    enum = find_enumeration(text, (at, at + 2))
    assert enum is not None and enum.family == "clauses" and len(enum) == 3
    assert inline_count("主要回答“为什么、干什么、怎么干”三个问题。") == 3
    assert find_enumeration("这是一句普通的话。后面没有清单。", (0, 3)) is None


def test_counted_questions_ask_for_lists() -> None:
    assert asks_list("魏小东讲的四点意见各是什么主题？")
    assert not asks_list("商丘侨联开展的品牌活动叫什么？")
