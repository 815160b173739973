"""Answer-type checks: a question asking for a day, a number, a post, a name or a
group's members is answered only by a sentence that holds one."""

from __future__ import annotations

import pytest

from rag.answer.base import AnswerRequest
from rag.answer.expect import Expectation, expectation
from rag.answer.extractive import ExtractiveBackend
from rag.types import Chunk, DocMeta, Passage


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("中央的会议是7月几日召开的？", "day"),
        ("On what day was the meeting held?", "day"),
        ("这项活动是哪一年开始的？", "year"),
        ("企业建会率是多少？", "number"),
        ("How many days must cadres spend at the grassroots?", "number"),
        ("他在讲话时担任什么职务？", "post"),
        ("作这篇讲话的领导叫什么名字？", "name"),
        ("群团组织的灵魂是什么？", None),
        ("“双学双比”活动过去叫什么名字？", None),  # the name of a thing, not a person
    ],
)
def test_what_a_question_asks_for(question: str, kind: str | None) -> None:
    got = expectation(question)
    assert (got.kind if got else None) == kind


def test_a_quoted_group_with_members_asked_for() -> None:
    assert expectation("“四季四送”活动每个季节分别送什么？") == Expectation("members", "四季四送")
    assert expectation("“四进三问”中的“四进”具体是哪四个地方？") == Expectation(
        "members", "四进三问"
    )


@pytest.mark.parametrize(
    ("kind", "sentence", "held"),
    [
        ("day", "今年7月,中央召开党的群团工作会议。", False),
        ("day", "今年7月6日至7日,中央召开会议。", True),
        ("day", "十二月十七日召开。", True),
        ("year", "力争到2012年企业建会率达到90%以上。", True),
        ("year", "今年7月召开会议。", False),
        ("number", "每个干部每年下基层不少于90天。", True),
        ("number", "共计六十多人参加了座谈会。", True),
        ("number", "要加强组织领导。", False),
        ("number", "读书笔记要写满一百页。", True),  # a numeral of two characters, any unit
        ("number", "一是抓好学习。", False),
        ("post", "省委常委、秘书长苏宁出席会议。", True),
        ("post", "这次会议很重要。", False),
    ],
)
def test_whether_a_sentence_holds_the_kind_asked_for(kind: str, sentence: str, held: bool) -> None:
    assert Expectation(kind).held_by(sentence) is held


def test_members_are_held_when_spelled_out_not_when_the_group_is_one_of_a_series() -> None:
    group = Expectation("members", "四季四送")
    assert group.held_by("开展“四季四送”活动,即春送岗位、夏送清凉、秋送助学、冬送温暖。")
    assert group.held_by("“四季四送”包括四项内容。")
    assert not group.held_by(
        "比如,工会的“四季四送”、团委的“点赞商丘”、妇联的“最美家庭”等活动受到表彰。"
    )
    assert not group.held_by("工会组织了“四季四送”活动,效果很好。")
    # the members may follow in the passage, as an enumeration the sentence opens
    assert group.held_by("工会开展“四季四送”活动：", "一是春送岗位。二是夏送清凉。")
    assert not group.held_by("工会开展“四季四送”活动。", "一是春送岗位。二是夏送清凉。")


def test_a_series_in_another_clause_is_not_the_groups_members() -> None:
    group = Expectation("members", "四季四送")
    # siblings before the name, other things after it: nothing spells the group out
    assert not group.held_by(
        "要开展“春风行动”、“金秋助学”、“送温暖”活动,实施“四季四送”工程,推动就业、助学、帮扶工作落实。"
    )
    # the series leads up to the name within its clause
    assert group.held_by("以春送岗位、夏送清凉、秋送助学、冬送温暖为内容的“四季四送”活动。")
    # the sentence opens the list with a colon
    assert group.held_by("工会开展“四季四送”活动：", "春送岗位、夏送清凉、秋送助学、冬送温暖。")
    assert not group.held_by("工会开展“四季四送”活动。", "春送岗位、夏送清凉、秋送助学、冬送温暖。")


def _passage(text: str) -> Passage:
    chunk = Chunk("a#0", "a", 0, len(text), text, "全文", ["全文"], text)
    return Passage(chunk, DocMeta(title="讲话", speaker="魏春明"), 1.0)


def test_the_backend_refuses_when_only_a_mention_answers_a_day_question() -> None:
    text = "今年7月,中央召开党的群团工作会议。会议很重要。"
    draft = ExtractiveBackend().compose(
        AnswerRequest("中央群团工作会议是7月几日召开的？", [_passage(text)])
    )
    assert draft.refused


def test_the_backend_prefers_a_close_sentence_that_holds_the_number() -> None:
    text = "各级干部要下基层。每个干部每年下基层不少于90天。会议很重要。"
    draft = ExtractiveBackend().compose(AnswerRequest("干部每年下基层多少天？", [_passage(text)]))
    assert not draft.refused
    assert "90天" in draft.text


def test_figures_the_question_states_must_be_in_the_answer() -> None:
    day = expectation("中央的会议是7月几日召开的？")
    assert day is not None and day.given == ("7月",)
    assert not day.held_by("今年9月17日,省委召开了会议。")  # a day, but of another month
    assert day.held_by("7月6日,中央召开了会议。")


def test_a_number_must_count_the_thing_asked_about() -> None:
    money = expectation("活动安排了多少专项经费？")
    assert money is not None and money.focus == "专项"
    assert not money.held_by("学习贯彻党的十七届六中全会精神。")  # a number of something else
    assert money.held_by("安排专项经费200万元。")
    units = expectation("有多少个单位建立了工会？")
    assert units is not None and units.focus == "单位"
    # a number in the sentence, but it counts people, far from the units
    assert not units.held_by("部分单位的党委书记、专职副书记和委员共计60多人参加了座谈会。")
    assert units.held_by("全市已有120个单位建立了工会。")
    both = expectation("商丘联系的工人和青年分别有多少？")
    assert both is not None and both.focus == ""  # “分别” is not what is counted


def test_a_post_must_be_the_named_persons() -> None:
    post = expectation("魏小东在发表这篇讲话时担任什么职务？")
    assert post is not None and post.subject == ("魏小东",)
    assert not post.held_by("学习贯彻郭庚茂书记的重要讲话精神。")
    assert post.held_by("市委常委、秘书长魏小东出席会议。")
