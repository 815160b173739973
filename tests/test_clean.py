"""Tests for ``rag.clean``: boilerplate removal and metadata.

The per-speech expectations were written by reading the bundled files in
``rag/corpus``: snippets of speech text that must survive verbatim (first and
last paragraphs included), page furniture that must not, and the metadata.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rag.clean import clean_document
from rag.documents import load_documents
from rag.load import RawFile, find_sidecar, read_file
from rag.types import Document

CORPUS = Path(__file__).resolve().parent.parent / "rag" / "corpus"


@dataclass
class Expected:
    keep: list[str]  # speech snippets that must be substrings of the cleaned text
    gone: list[str]  # boilerplate that must not survive anywhere
    meta: dict[str, str]
    first: str  # how the cleaned text starts ...
    last: str  # ... and ends
    once: list[str] = field(default_factory=list)  # lines kept exactly once


EXPECTED: dict[str, Expected] = {
    "000_f129062a640caa7f": Expected(
        keep=[
            "(2015年12月17日)",
            "这次会议的主要任务是,深入学习贯彻中央党的群团工作会议精神",
            "为实现全面建成小康社会凝聚智慧、汇聚力量。",
            "其中,工会进行的职工技能大赛,团委组织的“十强促百强”",
            "一、始终增强政治意识,切实把握正确方向",
            "政治性是群团组织的灵魂,是第一位的。",
            "要办好各类维权热线,完善法律援助等维权载体和手段",
            "四是抓好保障。",
        ],
        gone=["文章来源", "民权共青团", "点击数"],
        meta={
            "title": "魏小东同志在市委党的群团工作会议上的讲话",
            "speaker": "魏小东",
            "date": "2015-12-17",
            "occasion": "市委党的群团工作会议",
            "site": "民权共青团",
            "script": "simplified",
        },
        first="魏小东同志在市委党的群团工作会议上的讲话\n(2015年12月17日)\n这次会议的主要任务是",
        last="同志们,做好新形势下党的群团工作,责任重大,使命光荣。希望全市各级群团组织继续团结带领"
        "广大群团干部,在市委的坚强领导下,进一步解放思想、改革创新、扎实工作,更好地发挥桥梁纽带作用,"
        "努力开创我市群团工作新局面,为全面建成小康社会作出新的更大贡献!",
        once=["魏小东同志在市委党的群团工作会议上的讲话"],
    ),
    "001_7ac5df5915280052": Expected(
        keep=[
            "在全省工青妇组织开展“下基层、接地气、办实事”活动视频会议上的讲话\n"
            "省委常委、省总工会主席 苏宁\n(2012年1月4日)\n经省委、省政府主要领导同意,今天,",
            "主要回答“为什么、干什么、怎么干”三个问题。",
            "一、统一思想,充分认识开展“下基层、接地气、办实事”活动的重要意义",
            "今年是实施“十二五”规划承上启下的重要一年",
            "妇联要深入开展“双学双比”、“巾帼建功”、“巾帼特色示范村”创建活动",
            "三、加强领导,切实保证开展“下基层、接地气、办实事”活动取得实效",
        ],
        gone=["欢迎光临", "发布时间", "2012-02-23", "作者:办公室", "出处", "加入时间", "浏览314"],
        meta={
            "title": "苏宁常委在全省工青妇组织开展“下基层、接地气、办实事”活动视频会议上的讲话",
            "speaker": "苏宁",
            "date": "2012-01-04",
            "occasion": "全省工青妇组织开展“下基层、接地气、办实事”活动视频会议",
            "site": "青海省妇女网",
            "script": "simplified",
        },
        first="苏宁常委在全省工青妇组织开展“下基层、接地气、办实事”活动视频会议上的讲话\n在全省",
        last="以优异的工作成绩迎接党的十八大和省第十二次党代会胜利召开!",
        once=["苏宁常委在全省工青妇组织开展“下基层、接地气、办实事”活动视频会议上的讲话"],
    ),
    "002_dcaedb57e0e2e4fe": Expected(
        keep=[
            "就是群团部门一定要跳出群团看群团,立足群团干群团。",
            "二是手段不多,经费不足。",
            "第二句话,工作方法要改进。",
            "示范点一定要选好。",
            "第三句话,自身建设要加强。",
            "刚才张书记说,团支部书记还有69岁的。",
        ],
        gone=[
            ".doc",
            "上传人",
            "zhu****ei",
            "文档编号",
            "返回 下载",
            "举报",
            "第1页",
            "共6页",
            "点击查看更多",
            "资源描述",
            "第 6 页 共 6 页",
            "展开阅读全文",
            "相关资源",
            "正为您匹配相似的精品文档",
            "相关搜索",
            "最新文档",
            "当前位置",
            "copyright",
            "装配图网",
            "18123376007",
            "ICP2024067431",
            "公网安备",
            "本站为文档C2C交易模式",
        ],
        meta={
            "title": "市级群团部门工作会的讲话",
            "speaker": "",
            "date": "",  # the page only has the date a user uploaded the file
            "occasion": "市级群团部门工作会",
            "site": "装配图网",
            "script": "simplified",
        },
        first="市级群团部门工作会的讲话第一句话,工作思路要创新。",
        last="至于大家讲到的一些具体问题,下来后我们尽量做好协调工作,给大家服好务。",
    ),
    "003_ce01d0c9163fd3d8": Expected(
        keep=[
            "日前,省直機關黨的群團工作座談會在濟南召開。會議由省直機關工委副書記魏春明主持",
            "在組織建設方面,存在單位工青婦組織不健全",
            "一是切實擔負起把職工群眾凝聚到黨的周圍的政治責任。",
            "大力營造勤政為民、風清氣正、務實奮進、和諧友愛的工作環境。",
            "一是抓好傳達學習。",
        ],
        gone=[
            "首頁",
            "今日要聞",
            "稿源時間",
            "文章來源",
            "責任編輯",
            "gaojing",
            "【摘要】",
            "歡迎廣大網民",
            "0531-88556593",
            "zgwsdchina@126.com",
            "http://",
            "sdpdchina",
        ],
        meta={
            "title": "山東省直機關召開黨的群團工作座談會",
            "speaker": "李玉清",
            "date": "2016-09-02",
            "occasion": "省直機關黨的群團工作座談會",
            "site": "齊魯網",
            "script": "traditional",
        },
        first="山東省直機關召開黨的群團工作座談會\n齊魯網9月2日訊 \xa0日前,",
        last="省直機關部分單位機關黨委書記、專職副書記、工青婦委員會委員共計60多人參加了座談會。",
        # the page's summary repeats the report's first sentence: only the report keeps it
        once=["日前,省直機關黨的群團工作座談會在濟南召開。"],
    ),
    "004_7d0a0f78258bbd25": Expected(
        keep=[
            "按:12月15日下午,我市召开党群共建创先争优座谈会。",
            "为深入贯彻落实全国党群共建创先争优视频会议和省有关会议精神",
            "工作中三个方面值得肯定:",
            "一、进一步提高思想认识,把党群共建创先争优作为当前一项重要的工作任务来抓",
            "要扎实开展“送温暖”惠民大行动,在元旦春节前后",
            "“七一”前期,要重点组织开展大型系列活动",
            "四要加强宣传,营造氛围。",
        ],
        gone=[
            "404",
            "Not Found",
            "ZJOL",
            "您当前的位置",
            "之江先锋",
            "绍兴简报",
            "转发到",
            "新浪微博",
            "文明上网",
            "我要注册",
            "复制本文标题地址",
            "发表评论",
            "相关稿件",
            "·",
            "袍江新区",
            "全省动态",
            "更多",
            "闪光言行之星",
            "系统传真",
            "地市行动",
            "陈铁雄",
            "视频播报",
        ],
        meta={
            "title": "翁鲁敏同志在全市党群共建创先争优座谈会上的讲话",
            "speaker": "翁鲁敏",
            "date": "12月15日",  # the page never gives the year
            "occasion": "全市党群共建创先争优座谈会",
            "site": "浙江在线",
            "script": "simplified",
        },
        first="翁鲁敏同志在全市党群共建创先争优座谈会上的讲话\n按:12月15日下午",
        last="党群共建创先争优给工会、共青团、妇联工作发展提供了广阔的空间,我们要按照中央、省委的部署和要求,"
        "以高度负责的政治责任感和使命感,积极开拓、锐意进取,着力提高党建带群建工作水平,"
        "不断推动党群共建创先争优取得新的成效。",
        once=["翁鲁敏同志在全市党群共建创先争优座谈会上的讲话"],
    ),
}


@pytest.fixture(scope="module")
def corpus_docs() -> dict[str, Document]:
    docs, skipped = load_documents([CORPUS])
    assert skipped == []
    return {doc.doc_id: doc for doc in docs}


def test_every_bundled_speech_has_expectations(corpus_docs: dict[str, Document]) -> None:
    assert set(corpus_docs) == set(EXPECTED)


@pytest.mark.parametrize("doc_id", sorted(EXPECTED))
def test_speech_text_is_kept_verbatim(corpus_docs: dict[str, Document], doc_id: str) -> None:
    text, expected = corpus_docs[doc_id].text, EXPECTED[doc_id]
    assert text.startswith(expected.first)
    assert text.endswith(expected.last)
    for snippet in expected.keep:
        assert snippet in text
    for line in expected.once:
        assert text.count(line) == 1


@pytest.mark.parametrize("doc_id", sorted(EXPECTED))
def test_boilerplate_is_gone(corpus_docs: dict[str, Document], doc_id: str) -> None:
    text = corpus_docs[doc_id].text
    for junk in EXPECTED[doc_id].gone:
        assert junk not in text
    assert "0" not in text.split("\n")


@pytest.mark.parametrize("doc_id", sorted(EXPECTED))
def test_metadata(corpus_docs: dict[str, Document], doc_id: str) -> None:
    assert corpus_docs[doc_id].meta.to_dict() == EXPECTED[doc_id].meta


@pytest.mark.parametrize("doc_id", sorted(EXPECTED))
def test_lines_are_original_lines_stripped(corpus_docs: dict[str, Document], doc_id: str) -> None:
    doc = corpus_docs[doc_id]
    raw = (CORPUS / f"{doc_id}.txt").read_text(encoding="utf-8")
    originals = [line.strip() for line in raw.split("\n")]
    for line in doc.text.split("\n"):
        assert line and line == line.strip()
        # every kept line is a whole original line, or one with a page counter cut off its end
        assert line in originals or any(
            o.startswith(line) and "页" in o[len(line) :] for o in originals
        )
    assert doc.sha256 == hashlib.sha256((CORPUS / f"{doc_id}.txt").read_bytes()).hexdigest()
    assert doc.source.endswith(f"{doc_id}.txt")


# -- the rules on a made-up page ---------------------------------------------

PAGE = """首页 | 新闻中心 | 工作动态
您的位置：首页 > 工作动态 > 领导讲话
欢迎访问某某市总工会网站
张三同志在全市工会工作会议上的讲话
张三同志在全市工会工作会议上的讲话
发布日期：2018-03-20　　来源：某某市总工会　　浏览次数：1024
市委常委、市总工会主席　张三
（二〇一八年三月十五日）
同志们：
\u3000\u3000这次会议的主要任务是，总结去年工作，部署今年任务，动员全市各级工会组织和广大职工奋发有为。第 1 页 共 2 页
一、关于去年的工作
\u3000\u3000去年以来，全市各级工会紧紧围绕市委中心工作，扎实推进各项任务，取得了明显成效。\u3000
\u3000\u3000今年要重点抓好三件事：一是维护职工权益，二是推进技能竞赛，三是加强基层组织建设。
谢谢大家！
分享到：微信 微博 QQ空间
·市总工会召开理事会议...
·全市职工技能大赛开幕
热点推荐
主办：某某市总工会　地址：某某市人民路1号　电话：0371-12345678
Copyright © 2018 某某市总工会 版权所有 豫ICP备12345678号
E-mail: union@example.cn
0
"""
PAGE_CLEAN = """张三同志在全市工会工作会议上的讲话
市委常委、市总工会主席　张三
（二〇一八年三月十五日）
同志们：
这次会议的主要任务是，总结去年工作，部署今年任务，动员全市各级工会组织和广大职工奋发有为。
一、关于去年的工作
去年以来，全市各级工会紧紧围绕市委中心工作，扎实推进各项任务，取得了明显成效。
今年要重点抓好三件事：一是维护职工权益，二是推进技能竞赛，三是加强基层组织建设。
谢谢大家！"""


def test_made_up_page_keeps_exactly_the_speech() -> None:
    doc = clean_document(PAGE, doc_id="page", source="page.html")
    assert doc.text == PAGE_CLEAN
    assert doc.meta.to_dict() == {
        "title": "张三同志在全市工会工作会议上的讲话",
        "speaker": "张三",
        "date": "2018-03-15",  # the speech's own dated line beats the page's 2018-03-20
        "occasion": "全市工会工作会议",
        "site": "某某市总工会",
        "script": "simplified",
    }
    assert doc.sha256 == hashlib.sha256(PAGE.encode()).hexdigest()


def test_accepts_a_raw_file_and_keeps_its_hash() -> None:
    raw = RawFile(path=Path("x.txt"), text=PAGE, sha256="ab" * 32, encoding="utf-8")
    doc = clean_document(raw, doc_id="x", source="x.txt")
    assert doc.text == PAGE_CLEAN and doc.sha256 == "ab" * 32
    assert (doc.doc_id, doc.source) == ("x", "x.txt")


def test_script_and_punctuation_are_never_changed() -> None:
    text = "中國網報道\n李玉清強調，要堅持黨的領導，突出加強思想建設,推動群團工作創新發展。"
    doc = clean_document(text, doc_id="t", source="t")
    assert doc.text.endswith("李玉清強調，要堅持黨的領導，突出加強思想建設,推動群團工作創新發展。")
    assert doc.meta.script == "traditional"


def test_shared_furniture_outside_the_body_is_dropped() -> None:
    slogan = "某某市妇女联合会主办单位门户网站"
    body = "要把群众工作放在心上，深入基层，倾听群众呼声，切实帮助群众解决实际困难和问题。"
    text = f"{slogan}\n李四同志在全市妇联执委会议上的讲话\n{body}"
    alone = clean_document(text, doc_id="a", source="a")
    shared = clean_document(text, doc_id="a", source="a", others=[slogan, body])
    assert slogan in alone.text  # on its own it looks like a heading: kept
    assert slogan not in shared.text and body in shared.text
    assert shared.meta.title == "李四同志在全市妇联执委会议上的讲话"


def test_title_repeated_at_the_top_keeps_one_copy() -> None:
    title = "王五同志在全县共青团工作会议上的讲话"
    body = "青年是国家的未来，各级团组织要把青年紧紧团结在党的周围，为县域发展贡献青春力量。"
    doc = clean_document(f"{title}\n{title}\n\n{title}\n{body}", doc_id="t", source="t")
    assert doc.text == f"{title}\n{body}"


def test_repeated_salutation_inside_the_body_is_kept() -> None:
    para = "各级工会组织要紧紧围绕中心工作，团结动员广大职工建功立业，为发展大局作出新的贡献。"
    doc = clean_document(f"同志们：\n{para}\n同志们：\n{para}", doc_id="t", source="t")
    assert doc.text == f"同志们：\n{para}\n同志们：\n{para}"


def test_short_text_without_prose_keeps_non_boilerplate_lines() -> None:
    doc = clean_document("404 Not Found\n谢谢大家。\n0", doc_id="t", source="t")
    assert doc.text == "谢谢大家。"


@pytest.mark.parametrize(
    ("lines", "field_name", "value"),
    [
        (["市委书记、市长赵六在全市经济工作会议上的讲话"], "speaker", "赵六"),
        (["市委书记、市长赵六在全市经济工作会议上的讲话"], "occasion", "全市经济工作会议"),
        (["在团代会上的讲话", "（二〇一五年十二月十七日）"], "date", "2015-12-17"),
        (
            ["稿源时间：2016-01-05 09:00", "编者按：12月28日，全县召开工会工作座谈会。"],
            "date",
            "2015-12-28",
        ),
        (["发布时间：2016-03-05", "按：3月2日，全县召开工会工作座谈会。"], "date", "2016-03-02"),
        (["某县召开妇女工作座谈会"], "occasion", "妇女工作座谈会"),
        (["在全县妇女工作会议上的讲话_某县妇联网"], "site", "某县妇联网"),
        (["在全县妇女工作会议上的讲话_某县妇联网"], "title", "在全县妇女工作会议上的讲话"),
        (["当前位置：浙江在线 > 新闻"], "site", "浙江在线"),
    ],
)
def test_metadata_rules(lines: list[str], field_name: str, value: str) -> None:
    body = (
        "各级组织要坚持以人民为中心的发展思想，切实把党的温暖送到群众心坎上，推动工作再上新台阶。"
    )
    doc = clean_document("\n".join([*lines, body]), doc_id="t", source="t")
    assert getattr(doc.meta, field_name) == value


def test_sidecar_overrides_metadata_and_changes_the_hash() -> None:
    base = clean_document(PAGE, doc_id="p", source="p")
    doc = clean_document(
        PAGE,
        doc_id="p",
        source="p",
        sidecar={"speaker": "张三丰", "date": "2018-03-16", "unknown": 1},
    )
    assert doc.meta.speaker == "张三丰" and doc.meta.date == "2018-03-16"
    assert doc.meta.title == base.meta.title and doc.text == base.text
    edited = clean_document(PAGE, doc_id="p", source="p", sidecar={"speaker": "李四"})
    assert len({base.sha256, doc.sha256, edited.sha256}) == 3


# -- batches -----------------------------------------------------------------

SPEECH = (
    "赵六同志在全区工会工作会议上的讲话\n"
    "同志们，今年全区工会工作要围绕中心、服务大局，在维护职工合法权益上下功夫，在服务职工群众上求实效。\n"
)


def test_html_page_title_and_metadata() -> None:
    docs, skipped = load_documents([Path(__file__).parent / "data" / "formats" / "sample.html"])
    assert skipped == [] and len(docs) == 1
    assert docs[0].meta.title == "魏小东同志在市委党的群团工作会议上的讲话"
    assert (docs[0].meta.speaker, docs[0].meta.date) == ("魏小东", "2015-12-17")
    assert "政治性是群团组织的灵魂,是第一位的。" in docs[0].text


def test_load_documents_mixed_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "good.txt").write_text(SPEECH, encoding="utf-8")
    (tmp_path / "legacy.txt").write_bytes(SPEECH.encode("gbk"))
    (tmp_path / "sub" / "good.md").write_text(SPEECH, encoding="utf-8")  # same stem as good.txt
    (tmp_path / "page.html").write_bytes(f"<p>{SPEECH}</p><p>Copyright © 某网</p>".encode())
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 64)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "only-furniture.txt").write_text("404 Not Found\nZJOL/1.22.95\n", encoding="utf-8")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    (tmp_path / "legacy.txt.meta.json").write_text(
        json.dumps({"speaker": "钱七", "site": "某区总工会网"}, ensure_ascii=False),
        encoding="utf-8",
    )

    docs, skipped = load_documents([tmp_path])

    by_id = {d.doc_id: d for d in docs}
    good_md_id = next(i for i in by_id if i.startswith("good-"))
    assert set(by_id) == {"good", "legacy", "page", good_md_id}
    assert len(good_md_id) == len("good-") + 8
    for doc in docs:
        assert "同志们，今年全区工会工作要围绕中心" in doc.text
    assert "Copyright" not in by_id["page"].text
    assert by_id["legacy"].meta.speaker == "钱七"
    assert by_id["legacy"].meta.site == "某区总工会网"
    assert by_id["good"].meta.speaker == "赵六"

    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"binary.txt", "empty.txt", "only-furniture.txt"}
    assert "binary" in reasons["binary.txt"]
    assert "empty" in reasons["empty.txt"]
    assert "no speech text" in reasons["only-furniture.txt"]


def test_stem_sidecar_and_bad_sidecar(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(SPEECH, encoding="utf-8")
    (tmp_path / "a.meta.json").write_text('{"title": "改过的标题"}', encoding="utf-8")
    (tmp_path / "b.txt").write_text(SPEECH, encoding="utf-8")
    (tmp_path / "b.meta.json").write_text("{not json", encoding="utf-8")
    assert find_sidecar(tmp_path / "a.txt") == tmp_path / "a.meta.json"

    docs, skipped = load_documents([tmp_path / "a.txt", tmp_path / "b.txt"])

    assert [d.meta.title for d in docs] == ["改过的标题"]
    assert len(skipped) == 1 and "b.meta.json" in skipped[0].reason
    plain = clean_document(read_file(tmp_path / "a.txt"), doc_id="a", source="a")
    assert docs[0].sha256 != plain.sha256  # the sidecar counts towards change detection


def test_repeated_lines_across_a_batch_are_treated_as_furniture(tmp_path: Path) -> None:
    banner = "某某区人民政府门户网站欢迎您"
    for i, name in enumerate(("一", "二")):
        (tmp_path / f"{i}.txt").write_text(
            f"{banner}\n第{name}篇讲话\n同志们，要把为职工办实事作为检验工作成效的标准，"
            f"让职工群众有更多获得感，这是第{name}篇。\n",
            encoding="utf-8",
        )
    docs, _ = load_documents([tmp_path])
    assert len(docs) == 2
    for doc in docs:
        assert banner not in doc.text
        assert doc.text.startswith("第")


def test_a_speech_loaded_twice_keeps_its_header(
    tmp_path: Path, corpus_docs: dict[str, Document]
) -> None:
    for name in ("copy1.txt", "copy2.txt"):
        (tmp_path / name).write_bytes((CORPUS / "001_7ac5df5915280052.txt").read_bytes())
    docs, _ = load_documents([tmp_path])
    assert [d.text for d in docs] == [corpus_docs["001_7ac5df5915280052"].text] * 2


def test_exported_names_exist() -> None:
    import rag.clean as module

    assert all(callable(getattr(module, name)) or name.isupper() for name in module.__all__)
