"""What kind of answer a question needs, and whether a sentence holds one.

A question that asks for a number, a day, a year, a post, a person's name or the
members of a named group (“双个十百千万”工程具体包括哪些) is not answered by a
sentence that merely mentions the thing asked about: “今年7月,中央…召开…会议” does
not say on which day, and “实施‘双个十百千万’工程” does not say what the project
holds. The extractive backend uses these checks to pick a sentence that holds the
kind of answer asked for, and to refuse when none of the candidates does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rag.sentences import ENUM_START
from zh.script import to_simplified
from zh.text import jieba

__all__ = ["Expectation", "expectation", "names_person", "people"]

_CN_NUM = "〇零一二三四五六七八九十百千万亿两"
_NUMBER = re.compile(
    rf"\d|[{_CN_NUM}]{{2,}}|百分之|[{_CN_NUM}](?:多|余)?(?:个|项|条|名|人|次|天|年|家|所|倍|位|件|批|类|"
    rf"支|处|届|期|元|亿|万|成|页|张|本|篇|场|户|座|台|辆|吨|米|亩|周|小时|分钟|公里|岁)"
)
_DAY = re.compile(rf"(?:\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*[日号]")
_YEAR = re.compile(r"(?:\d{4}|[〇零一二三四五六七八九]{4})\s*年")
_MONTH = re.compile(r"(?:\d{1,2}|[一二三四五六七八九十]{1,2})\s*月")
_POST = re.compile(
    r"书记|主席|部长|市长|省长|县长|区长|镇长|常委|秘书长|主任|厅长|局长|委员|团长|会长|"
    r"理事长|总经理|董事长|校长|院长|组长|处长|科长|政委|司令|总理|总书记|主任委员"
)
# the members of a named group are spelled out right after its name: a colon, a bracket,
# or (after a comma, as in “开展‘四进三问’活动,即…”) “即”, “包括”, “是指”, “就是”, “分别是”
_SPELLED_OUT = re.compile(
    r"^[”」』\"]?(?:工程|活动|行动|项目|服务承诺|承诺|制度|机制)?\s*(?:[：:（(]|[，,]?\s*(?:即|包括|是指|就是|分别是|具体是))"
)

_ASKS = {
    "day": re.compile(
        r"几日|几号|哪一?天|哪一?日|什么日子|具体日期|what date|which day|what day|on which date",
        re.I,
    ),
    "year": re.compile(r"哪一?年(?!级)|什么年份|which year|what year|in what year", re.I),
    "month": re.compile(r"几月(?!几日)|哪个月|哪一个月|which month|what month", re.I),
    "number": re.compile(
        r"多少|几成|比例是|how many|how much|what percentage|what proportion|what share", re.I
    ),
    "post": re.compile(
        r"什么职务|何职|职务是|什么职位|职位是|担任什么|身份是|头衔|what post|what position|"
        r"what office|what title",
        re.I,
    ),
    "name": re.compile(
        r"(?:领导|同志|人|者|书记|主席|部长)(?:叫|的)?(?:什么名字|姓名|名字)|哪位领导|哪位同志|"
        r"谁主持|由谁|whose name|"
        r"the name of|who chaired|who presided|who hosted",
        re.I,
    ),
}
# a run of short items separated by “、” (quoted or not)
_SERIES = re.compile(
    r"(?:[“「『\"]?[^、，,。；;：:“”「」『』\"]{1,12}[”」』\"]?、){2,}[“「『\"]?[^、，,。；;：:“”「」『』\"]{1,12}[”」』\"]?"
)
_CLAUSE_BREAK = re.compile(r"[，,；;。！？!?]")
FOCUS_WINDOW = 8  # characters between a number and the thing it counts
FOLLOWING_CHARS = 60  # of the passage after a sentence, searched for a group's members
# figures stated in the question (“7月几日”, “2012年”) that a sentence answering it repeats
_GIVEN = re.compile(r"\d+(?:\.\d+)?\s*(?:年|月|日|号|%|％)")
# “多少专项经费” / “建会率是多少”: the thing counted, right after or before “多少”
_FOCUS_AFTER = re.compile(r"多少(?:个|名|家|项|位|次|元|笔)?([\u4e00-\u9fff]{2})")
_FOCUS_BEFORE = re.compile(r"([\u4e00-\u9fff]{2})(?:是|为|有|达到|达)多少")
_NOT_FOCUS = re.compile(r"[是了呢吗的个人天年次]|分别|各自|一共|总共|大约|大概|还有|共有")
_QUOTED_NAME = re.compile(r"[“「『\"]([^”」』\"]{2,20})[”」』\"]")
_MEMBERS = re.compile(
    r"具体(?:包括|是|有|指)|分别(?:是|送|指|为|有)|哪[一二三四五六七八九十两几\d]+[个项条点大]|"
    r"包括哪|有哪些|是哪些|指哪|what are the|which are the|what do .* consist|list the",
    re.I,
)


@dataclass(frozen=True)
class Expectation:
    """The kind of answer a question asks for; ``group`` names the group whose members
    are asked for (kind ``members``)."""

    kind: str
    group: str = ""
    given: tuple[str, ...] = ()  # figures the question states (“7月”): the answer keeps them
    focus: str = ""  # what is counted (“多少专项经费” → “专项”), to be found beside the number
    subject: tuple[str, ...] = ()  # the people whose post is asked for

    def held_by(self, sentence: str, following: str = "") -> bool:
        """Whether ``sentence`` holds this kind of answer (``following``: the text after
        it in its passage, where a group's members may be spelled out)."""
        s = to_simplified(sentence)
        if any(g not in s for g in self.given):
            return False
        if self.focus and not self._counted(s):
            return False
        if self.kind == "day":
            return bool(_DAY.search(s))
        if self.kind == "year":
            return bool(_YEAR.search(s))
        if self.kind == "month":
            return bool(_MONTH.search(s))
        if self.kind == "number":
            return bool(_NUMBER.search(s))
        if self.kind == "post":
            if self.subject and not any(p in s for p in self.subject):
                return False  # a post, but somebody else's
            return bool(_POST.search(s))
        if self.kind == "name":
            return names_person(s)
        if self.kind == "members":
            return self._members_in(s, to_simplified(following)[:FOLLOWING_CHARS])
        return True

    def _counted(self, s: str) -> bool:
        """Whether a number stands next to the thing counted (“60多个单位”, “建会率达到
        90%”): within FOCUS_WINDOW characters of it on either side, not just anywhere in
        the sentence (“…60多人参加…部分单位…” does not count the units)."""
        at = s.find(self.focus)
        while at >= 0:
            lo, hi = max(0, at - FOCUS_WINDOW), at + len(self.focus) + FOCUS_WINDOW
            if _NUMBER.search(s[lo:at]) or _NUMBER.search(s[at + len(self.focus) : hi]):
                return True
            at = s.find(self.focus, at + 1)
        return False

    def _members_in(self, sentence: str, following: str) -> bool:
        """Whether the sentence spells out the group's members: its name followed by a
        colon, “即”, “包括”…; or a series of three or more items (“进企业、进学校、
        进农村”) that does not have the group's own name among its items, as a sentence
        listing sibling programmes (“四季四送”、“点赞商丘”、…) does. Where the sentence
        names the group, the series must stand in the name's own clause (“以‘A、B、C’为
        内容的X活动”, “X包括A、B、C”), or the sentence must end in a colon that opens it;
        a series in another clause, or in the next sentence, is about something else
        (on eval/gold/speeches.jsonl, letting an enumeration in the next sentence
        count refused fewer unanswerable questions and answered no more). A sentence
        that does not name the group may be one of its members (“一是…”)."""
        text = sentence + following
        at = text.find(self.group)
        while at >= 0:
            if _SPELLED_OUT.search(text[at + len(self.group) :]):
                return True
            at = text.find(self.group, at + 1)
        named = sentence.find(self.group)
        if named < 0:
            scope = text
        else:
            end = named + len(self.group)
            breaks = [m.start() for m in _CLAUSE_BREAK.finditer(sentence)]
            lo = max((b + 1 for b in breaks if b < named), default=0)
            hi = min((b for b in breaks if b >= end), default=len(sentence))
            scope = sentence[lo:hi]
            if sentence.rstrip().endswith(("：", ":")):
                scope += following
        if any(ENUM_START.match(part.strip()) for part in re.split(r"[。；;！？!?]", scope)):
            return True
        for series in _SERIES.finditer(scope):
            items = [i.strip('“”「」『』"') for i in re.split(r"[、，,]", series.group(0))]
            if len(items) >= 3 and self.group not in items:
                return True
        return False


def expectation(question: str) -> Expectation | None:
    """The kind of answer ``question`` asks for, or None when any sentence may do."""
    q = to_simplified(question)
    quoted = _QUOTED_NAME.findall(q)
    if quoted and _MEMBERS.search(q):
        return Expectation("members", quoted[0])
    for kind, pattern in _ASKS.items():
        if not pattern.search(q):
            continue
        given = tuple(dict.fromkeys(_GIVEN.findall(q))) if kind != "post" else ()
        focus = ""
        if kind == "number":
            m = _FOCUS_AFTER.search(q) or _FOCUS_BEFORE.search(q)
            focus = m.group(1) if m and not _NOT_FOCUS.search(m.group(1)) else ""
        subject = people(q) if kind == "post" else ()
        return Expectation(kind, given=given, focus=focus, subject=subject)
    return None


@lru_cache(maxsize=4096)
def people(text: str) -> tuple[str, ...]:
    """The person names jieba's part-of-speech tagger finds in ``text``."""
    jieba()
    from jieba import posseg

    return tuple(w.word for w in posseg.cut(text) if w.flag == "nr" and len(w.word) >= 2)


def names_person(sentence: str) -> bool:
    """Whether ``sentence`` names a person."""
    return bool(people(sentence))
