"""The extractive composer on hand-made passages: which sentences it quotes, in which
order, with which markers, and when it refuses."""

from __future__ import annotations

import re

import pytest

from rag.answer.base import AnswerRequest
from rag.answer.extractive import REFUSAL, Candidate, ExtractiveBackend, question_terms
from rag.types import Chunk, DocMeta, Passage


def passage(
    doc_id: str, text: str, *, speaker: str = "", title: str = "", date: str = ""
) -> Passage:
    chunk = Chunk(f"{doc_id}#0", doc_id, 0, len(text), text, "全文", ["全文"], text)
    return Passage(
        chunk, DocMeta(title=title or f"{speaker}的讲话", speaker=speaker, date=date), 1.0
    )


def compose(question: str, passages: list[Passage], **kw: object) -> tuple[str, list[str]]:
    draft = ExtractiveBackend(**kw).compose(AnswerRequest(question, passages))  # type: ignore[arg-type]
    cited = [line for line in draft.text.splitlines() if re.search(r"\[\d+\]", line)]
    return draft.text, cited


LIST_SPEECH = (
    "会议强调了群团工作的重要性。他要求,一是抓好传达学习。各单位要迅速贯彻。"
    "二是制定落实措施。要明确责任。三是强化作风保障。要从严要求。会议还安排了其他工作。"
)


def test_a_list_question_gets_the_items_in_order() -> None:
    text, cited = compose("他要求做好哪三点？", [passage("a", LIST_SPEECH, speaker="魏春明")])
    assert cited == ["一是抓好传达学习[1]。", "二是制定落实措施[1]。", "三是强化作风保障[1]。"]
    assert text.splitlines()[0].startswith("《魏春明的讲话》")  # whose words follow


def test_a_sentence_before_a_later_item_does_not_lead_into_the_list() -> None:
    speech = "一是加强学习。二是改进作风。如市总工会通过兴办十件实事为职工服务。三是加强组织。"
    _, cited = compose("市总工会通过哪些举措为职工服务？", [passage("a", speech)])
    assert cited == ["如市总工会通过兴办十件实事为职工服务[1]。"]


def test_a_question_across_speeches_quotes_each_speech() -> None:
    passages = [
        passage("a", "要深化党建带群建工作。要关心职工生活。", speaker="苏宁"),
        passage("b", "天气很好。坚持完善党建带群建制度机制。", speaker="魏小东"),
        passage("c", "会议开得很成功。", speaker="翁鲁敏"),
    ]
    text, cited = compose("哪些讲话提到了“党建带群建”？", passages)
    assert cited == ["要深化党建带群建工作[1]。", "坚持完善党建带群建制度机制[2]。"]
    assert "《苏宁的讲话》" in text and "《魏小东的讲话》" in text and "翁鲁敏" not in text


def test_a_date_question_quotes_only_the_dated_sentence() -> None:
    speech = "苏宁同志在全省视频会议上讲话。(2012年1月4日)\n苏宁同志强调工青妇组织要下基层。"
    _, cited = compose("苏宁的讲话是在哪一天发表的？", [passage("a", speech, speaker="苏宁")])
    assert cited == ["(2012年1月4日)[1]"]


def test_a_question_about_absent_things_is_refused() -> None:
    backend_kw = {"in_corpus": lambda term: term not in {"乡村", "振兴"}}
    text, cited = compose(
        "群团组织如何参与乡村振兴？", [passage("a", "群团组织要服务大局。")], **backend_kw
    )
    assert text == REFUSAL["zh-hans"] and not cited


def test_a_question_whose_terms_the_passages_miss_is_refused() -> None:
    text, _ = compose("全国总工会会员总数", [passage("a", "妇联要开展最美家庭评选活动。")])
    assert text == REFUSAL["zh-hans"]


@pytest.mark.parametrize(
    ("question", "present", "absent"),
    [
        ("哪些讲话提到了“十三五”？", ["十三五"], ["哪些", "讲话"]),
        ("苏宁的讲话是在哪一天发表的？", ["苏宁"], ["一天", "哪一", "发表"]),
        ("哪两篇讲话的讲话人当时是组织部长？", ["部长"], ["两篇"]),
    ],
)
def test_question_terms(question: str, present: list[str], absent: list[str]) -> None:
    terms = question_terms(question)
    assert all(t in terms for t in present)
    assert not any(t in terms for t in absent)


def test_list_items_are_followed_by_their_numbering_over_long_follow_on_text() -> None:
    text = (
        "会议提出了要求。一要加强领导。各级要重视。要明确责任。要抓好落实。要加强考核。"
        "二要强化保障。要落实经费。三要转变作风。会议还谈了别的事。一要另起一份名单。"
    )
    _, cited = compose("会议提出哪三点要求？", [passage("a", text, speaker="苏宁")])
    assert cited == ["一要加强领导[1]。", "二要强化保障[1]。", "三要转变作风[1]。"]


def test_a_list_question_takes_the_list_of_a_close_candidate() -> None:
    # the best-covering sentence is a general statement; the list follows later
    text = (
        "群团组织要做好方面工作,走在前列。大家要振奋精神。会上还作了部署。"
        "群团组织要做好四个方面:一是担负政治责任。二是承担工作责任。"
    )
    _, cited = compose("群团组织要做好哪几个方面？", [passage("a", text)])
    assert cited == ["一是担负政治责任[1]。", "二是承担工作责任[1]。"]


def test_a_question_naming_a_part_is_answered_from_inside_it_not_by_its_heading() -> None:
    text = (
        "一是同步建设党群组织。二是同步建设党群队伍。三是同步建设党群阵地。"
        "要把村级公共服务中心作为活动阵地,让这些场所成为群众之家。"
    )
    _, cited = compose("讲到同步建设党群阵地时，要把哪些场所作为活动阵地？", [passage("a", text)])
    assert cited == ["要把村级公共服务中心作为活动阵地,让这些场所成为群众之家[1]。"]


def _at(doc_id: str, text: str, start: int, section: str = "三、加强领导") -> Passage:
    """A passage of speech ``doc_id`` that starts at ``start`` in its text."""
    chunk = Chunk(f"{doc_id}#{start}", doc_id, start, start + len(text), text, section,
                  [section], text)  # fmt: skip
    return Passage(chunk, DocMeta(title="苏宁的讲话", speaker="苏宁"), 1.0)


def test_a_list_that_runs_into_the_next_retrieved_passage_is_read_whole() -> None:
    head = "三、加强领导,切实保证活动取得实效\n各级组织要把活动列入议程,做到“两加强两坚持”。"
    rest = "一要加强组织领导。成立领导小组。二要加强监督检查。三要坚持典型引路。四要坚持制度创新。"
    passages = [_at("a", head, 0), _at("z", "无关的话。", 0), _at("a", rest, len(head))]
    _, cited = compose("“两加强两坚持”分别是什么？", passages)
    assert cited == ["一要加强组织领导[3]。", "二要加强监督检查[3]。", "三要坚持典型引路[3]。",
                     "四要坚持制度创新[3]。"]  # fmt: skip
    # a passage from another section does not continue it
    other = [_at("a", head, 0), _at("a", rest, len(head), section="四、其他")]
    _, cited = compose("“两加强两坚持”分别是什么？", other)
    assert not any("一要" in line for line in cited)


def test_a_section_heading_alone_announces_the_list_its_section_opens_with() -> None:
    text = (
        "三、加强领导,切实保证活动取得实效\n开展活动是重要途径。各级组织要列入议程。"
        "一要加强组织领导。二要加强监督检查。\n四、其他工作\n要总结经验。"
    )
    _, cited = compose("苏宁在加强领导方面提出哪两点要求？", [passage("a", text)])
    assert cited == ["一要加强组织领导[1]。", "二要加强监督检查[1]。"]


def test_a_semicolon_list_opened_by_a_colon_is_quoted_clause_by_clause() -> None:
    text = (
        "工作中存在一些问题和不足,具体表现在:思想认识还有待提高,参与热情不高;"
        "推进工作不够平衡;工作推动还缺乏有效抓手,等等。对这些问题,我们要予以重视。"
    )
    _, cited = compose("工作存在哪些问题和不足？", [passage("a", text)])
    assert [c.split("[")[0] for c in cited] == [
        "工作中存在一些问题和不足,具体表现在:思想认识还有待提高,参与热情不高",
        "推进工作不够平衡",
        "工作推动还缺乏有效抓手,等等",
    ]
    # without the colon that opens it, a run of semicolons is not taken for a list
    _, cited = compose("工作存在哪些问题和不足？", [passage("a", text.replace("具体表现在:", ""))])
    assert len(cited) == 1


def test_a_list_runs_on_by_its_numbering_into_a_later_passage_of_its_section() -> None:
    first = "要处理好三个方面的关系。一是重点与难点的关系。二是创新与日常的关系。"
    gap = "这里是很长的一段论述。" * 5
    third = "三是示范与整体的关系。要以点带面。"
    passages = [_at("a", first, 0), _at("a", third, len(first) + len(gap))]
    _, cited = compose("要处理好哪三个方面的关系？", passages)
    assert [c.split("[")[0] for c in cited] == [
        "一是重点与难点的关系", "二是创新与日常的关系", "三是示范与整体的关系"
    ]  # fmt: skip
    # a lead-in does not announce a list that only starts after text not retrieved
    lead = "要处理好三个方面的关系。"
    items = "一是重点与难点的关系。二是创新与日常的关系。"
    far = [_at("a", lead, 0), _at("a", items, len(lead) + len(gap))]
    near = [_at("a", lead, 0), _at("a", items, len(lead))]
    best = Candidate(1, 0, len(lead), lead, 1.0, 1.0)
    assert ExtractiveBackend()._enumeration(best, far) == []
    assert [no for no, _, _ in ExtractiveBackend()._enumeration(best, near)] == [2, 2]
