"""The web page in a real browser (headless Chromium), against a real ``rag serve``.

Every expectation is checked against what the API itself answers for the same request
(the pipeline is deterministic with the hash embedder and the extractive backend), so
the tests assert that the page shows the server's answer faithfully, not particular
wording. Each tab fails its test on any console error or uncaught page error.
Screenshots of the main states are saved under ``reports/screenshots/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_llm import PIECE_DELAY_S
from tests.fake_llm import FakeLLM as SlowLLM
from tests.web.harness import PHONE, TEST_API_KEY, Server, Tab
from zh.script import detect_script

try:
    from playwright.sync_api import Locator, Page, Request, Route, expect
except ImportError:  # the `chromium` fixture skips (or fails under CI) and says why
    pass

pytestmark = pytest.mark.browser

QUESTION = "苏宁讲话主要回答了哪三个问题？"
TRADITIONAL_QUESTION = "蘇寧講話主要回答了哪三個問題？"
OFF_TOPIC = "火星探测器的发射时间是什么？"
KEY_STORAGE = "qunti-rag.api-key"

# Collects every version of the answer text the page shows while an answer streams in.
RECORD_DRAFTS = """() => {
  window.__drafts = [];
  const messages = document.getElementById("messages");
  new MutationObserver(() => {
    const msg = messages.querySelector(".turn:last-child .msg.assistant");
    if (!msg || msg.dataset.state !== "streaming" || msg.querySelector(".thinking")) return;
    const text = msg.querySelector(".answer-text").textContent;
    if (text && window.__drafts.at(-1) !== text) window.__drafts.push(text);
  }).observe(messages, {childList: true, subtree: true, characterData: true});
}"""


# ----------------------------------------------------------------------- helpers


def ask(page: Page, question: str) -> Locator:
    """Type ``question``, press Enter, wait for the answer to finish; the answer element."""
    before = page.locator(".turn").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    expect(page.locator(".turn")).to_have_count(before + 1)
    msg = page.locator(".turn").last.locator(".msg.assistant")
    expect(msg).not_to_have_attribute("data-state", "streaming")
    return msg


def answer_text(msg: Locator) -> str:
    return msg.locator(".answer-text").inner_text()


def covering_passage(answer: dict[str, Any], citation: dict[str, Any]) -> dict[str, Any]:
    return next(
        p
        for p in answer["passages"]
        if p["doc_id"] == citation["doc_id"]
        and p["start"] <= citation["start"]
        and citation["end"] <= p["end"]
    )


def zh_date(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{year}年{int(month)}月{int(day)}日"


def use_backend(page: Page, backend: str, sent: list[dict[str, Any]]) -> None:
    """Send the page's questions to ``backend`` (the page itself uses the server default)."""

    def handle(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        sent.append(body)
        route.continue_(post_data=json.dumps({**body, "backend": backend}))

    page.route("**/v1/ask", handle)


def ask_bodies(page: Page) -> list[dict[str, Any]]:
    """The JSON bodies of the page's /v1/ask requests, as they are sent."""
    bodies: list[dict[str, Any]] = []

    def record(request: Request) -> None:
        if request.url.endswith("/v1/ask") and request.method == "POST":
            bodies.append(json.loads(request.post_data or "{}"))

    page.on("request", record)
    return bodies


def no_horizontal_scroll(page: Page) -> None:
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width}px wide in a {inner}px viewport"


def speech_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------- asking


def test_answer_streams_in_and_ends_with_citations(
    tab: Tab, server: Server, slow_llm: SlowLLM
) -> None:
    page = tab.open()
    expect(page.locator("#index-status")).to_contain_text("5 篇讲话")
    sent: list[dict[str, Any]] = []
    use_backend(page, "openai", sent)  # the slow fake LLM writes a few characters at a time
    page.evaluate(RECORD_DRAFTS)
    calls = slow_llm.requests

    msg = ask(page, QUESTION)

    expect(msg).to_have_attribute("data-state", "done")
    assert sent[0]["stream"] is True and sent[0]["question"] == QUESTION
    assert slow_llm.requests > calls
    drafts: list[str] = page.evaluate("window.__drafts")
    assert len(drafts) >= 3, drafts  # the text grew piece by piece before the end
    for shorter, longer in zip(drafts, drafts[1:], strict=False):
        assert longer.startswith(shorter) and len(longer) > len(shorter)
    expected = server.ask(QUESTION, backend="openai")
    assert answer_text(msg) == expected["answer"]
    assert drafts[-1].startswith(expected["answer"].split("[")[0])
    expect(msg.locator(".cite")).to_have_count(len(expected["citations"]))
    expect(msg.locator(".answer-text")).to_have_attribute("aria-busy", "false")
    tab.screenshot("answer-desktop")


def test_citation_opens_the_passage_with_the_quote_highlighted(tab: Tab, server: Server) -> None:
    expected = server.ask(QUESTION)
    citation = expected["citations"][0]
    passage = covering_passage(expected, citation)
    page = tab.open()

    msg = ask(page, QUESTION)
    assert answer_text(msg) == expected["answer"]
    cite = msg.locator(".cite").first
    expect(cite).to_have_text(f"[{citation['n']}]")
    cite.click()

    panel = page.locator("#source-panel")
    expect(panel).to_be_visible()
    expect(cite).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#source-title")).to_be_focused()
    expect(panel.locator("mark")).to_have_text(citation["quote"])
    expect(page.locator("#source-passage")).to_have_text(passage["text"])
    before_mark = page.evaluate(
        "document.querySelector('#source-passage mark').previousSibling?.textContent ?? ''"
    )
    assert before_mark == passage["text"][: citation["start"] - passage["start"]]
    expect(page.locator("#source-doc")).to_have_text(f"《{citation['title']}》")
    meta = page.locator("#source-meta")
    expect(meta).to_contain_text(citation["speaker"])
    expect(meta).to_contain_text(zh_date(citation["date"]))
    expect(meta).to_contain_text(citation["section"])
    tab.screenshot("citation-desktop")

    source_link = msg.locator(".source-link").first
    source_link.click()  # the sources list under the answer opens the same passage
    expect(panel.locator("mark")).to_have_text(citation["quote"])
    page.click("#source-close")
    expect(panel).to_be_hidden()
    expect(source_link).to_be_focused()  # focus goes back to what opened the panel


def test_refusal_shows_the_not_found_state_with_closest_passages(tab: Tab, server: Server) -> None:
    expected = server.ask(OFF_TOPIC)
    assert expected["refused"], "precondition: the server refuses this question"
    page = tab.open()

    msg = ask(page, OFF_TOPIC)

    expect(msg).to_have_attribute("data-state", "refused")
    box = msg.locator(".not-found")
    expect(box).to_contain_text("资料中未找到相关内容")
    expect(msg.locator(".cite")).to_have_count(0)
    closest = box.locator(".closest > li")
    expect(closest).to_have_count(len(expected["passages"]))
    first = expected["passages"][0]
    expect(closest.first).to_contain_text(first["title"])
    closest.first.locator("button").click()
    expect(page.locator("#source-passage")).to_have_text(first["text"])
    expect(page.locator("#source-passage mark")).to_have_count(0)
    msg.scroll_into_view_if_needed()
    tab.screenshot("refusal-desktop")


def test_traditional_question_is_answered_in_traditional_script(tab: Tab, server: Server) -> None:
    expected = server.ask(TRADITIONAL_QUESTION)
    page = tab.open()

    msg = ask(page, TRADITIONAL_QUESTION)

    shown = answer_text(msg)
    assert shown == expected["answer"]
    assert detect_script(shown) == "traditional"
    citation = expected["citations"][0]
    msg.locator(".cite").first.click()
    # The quote in the reader's script, and the source passage exactly as the speech has it.
    expect(page.locator("#source-quote-text")).to_have_text(citation["display_quote"])
    assert detect_script(citation["display_quote"]) == "traditional"
    expect(page.locator("#source-passage mark")).to_have_text(citation["quote"])
    tab.screenshot("traditional-desktop")


def test_degraded_answer_shows_a_notice(tab: Tab, server: Server, slow_llm: SlowLLM) -> None:
    page = tab.open()
    use_backend(page, "openai", [])
    slow_llm.mode = "down"
    try:
        msg = ask(page, QUESTION)
    finally:
        slow_llm.mode = "ok"

    expect(msg).to_have_attribute("data-state", "degraded")
    notice = msg.locator(".notice.degraded")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("大模型暂时不可用")
    expect(msg.locator(".cite").first).to_be_visible()  # the fallback answer is still cited
    tab.screenshot("degraded-desktop")


def test_stop_cancels_an_answer_being_written(tab: Tab, server: Server, slow_llm: SlowLLM) -> None:
    page = tab.open()
    use_backend(page, "openai", [])
    slow_llm.delay = 0.5  # slow enough to be caught mid-answer
    try:
        page.fill("#question", QUESTION)
        page.press("#question", "Enter")
        msg = page.locator(".msg.assistant").last
        expect(msg.locator(".answer-text")).not_to_have_text(re.compile(r"^$|正在查找"))
        page.click("#stop")
        expect(msg).to_have_attribute("data-state", "stopped")
        expect(msg).to_contain_text("已停止")
        expect(page.locator("#stop")).to_be_hidden()
        expect(page.locator("#send")).to_be_enabled()
    finally:
        slow_llm.delay = PIECE_DELAY_S
    page.unroute("**/v1/ask")
    bodies = ask_bodies(page)
    ask(page, QUESTION)  # a stopped answer is not sent back as history
    assert bodies[0]["history"] == []


def test_follow_up_sends_history_and_new_conversation_forgets_it(tab: Tab, server: Server) -> None:
    page = tab.open()
    bodies = ask_bodies(page)
    first = answer_text(ask(page, QUESTION))
    follow_up = "第二个问题他是怎么讲的？"
    ask(page, follow_up)
    assert bodies[0]["history"] == []
    assert bodies[1]["history"] == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first},
    ]

    page.click("#new-conversation")
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#welcome")).to_be_visible()
    expect(page.locator("#question")).to_be_focused()
    ask(page, QUESTION)
    assert bodies[2]["history"] == []


def test_filters_are_sent_and_narrow_the_sources(tab: Tab, server: Server) -> None:
    page = tab.open()
    bodies = ask_bodies(page)
    expect(page.locator("#index-status")).to_contain_text("篇讲话")
    page.click("#filters summary")
    page.select_option("#f-speaker", "苏宁")
    page.fill("#f-from", "2012-01-01")
    page.fill("#f-to", "2012-12-31")
    expect(page.locator("#filter-summary")).to_contain_text("苏宁")
    question = "群团组织要怎样联系群众？"

    msg = ask(page, question)

    filters = {"speaker": "苏宁", "date_from": "2012-01-01", "date_to": "2012-12-31"}
    assert bodies[0]["filters"] == filters
    expected = server.ask(question, filters=filters)
    assert {c["speaker"] for c in expected["citations"]} <= {"苏宁"}
    sources = msg.locator(".sources li")
    expect(sources).to_have_count(len(expected["citations"]))
    for i in range(sources.count()):
        expect(sources.nth(i)).to_contain_text("苏宁")

    page.click("#f-clear")
    expect(page.locator("#filter-summary")).to_have_text("")
    ask(page, question)
    assert "filters" not in bodies[1]


def test_copy_puts_the_answer_and_its_sources_on_the_clipboard(tab: Tab, server: Server) -> None:
    expected = server.ask(QUESTION)
    page = tab.open()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    msg = ask(page, QUESTION)
    msg.get_by_role("button", name="复制").click()
    expect(msg.locator(".done-note")).to_contain_text("已复制")
    copied: str = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"问：{QUESTION}\n答：{expected['answer']}")
    assert "来源：" in copied
    for c in expected["citations"]:
        assert f"[{c['n']}] 《{c['title']}》" in copied and c["display_quote"] in copied

    # Without the clipboard API (plain http on a LAN address) the page copies a selection.
    page.context.add_init_script(
        """Object.defineProperty(Navigator.prototype, "clipboard", {get: () => undefined});
        window.__copied = null;
        document.execCommand = (command) => {
          if (command !== "copy") return false;
          window.__copied = document.activeElement.value;
          return true;
        };"""
    )
    page.reload()
    msg = ask(page, QUESTION)
    msg.get_by_role("button", name="复制").click()
    expect(msg.locator(".done-note")).to_contain_text("已复制")
    assert page.evaluate("window.__copied") == copied


# ----------------------------------------------------------------------- documents


def test_upload_makes_a_speech_searchable_and_delete_removes_it(
    tab: Tab, server: Server, tmp_path: Path
) -> None:
    title = "王晓明同志在星火读书会启动仪式上的讲话"
    path = speech_file(
        tmp_path,
        "xinghuo.txt",
        f"{title}\n\n（2021年3月5日）\n\n同志们：\n今天我们启动星火读书会，"
        "讲一讲青年读书的三条经验。第一，读原著要坚持每天一小时。"
        "第二，读书笔记要写满一百页。第三，读书心得要在支部会上交流分享。\n",
    )
    page = tab.open("/#docs")
    expect(page.locator(".doc-card")).to_have_count(5)
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-button")
    result = page.locator("#upload-result")
    expect(result).to_contain_text("已加入：xinghuo.txt")
    expect(result).to_contain_text("可以检索")
    card = page.locator(".doc-card", has_text=title)
    expect(card).to_have_count(1)
    expect(card).to_contain_text("王晓明")
    expect(card).to_contain_text("2021年3月5日")
    expect(page.locator("#index-status")).to_contain_text("6 篇讲话")
    tab.screenshot("upload-desktop")

    card.get_by_role("button", name="提问").click()  # ask about this speech
    expect(page.locator("#ask-view")).to_be_visible()
    doc_id = page.input_value("#f-doc")
    assert any(d["doc_id"] == doc_id and d["title"] == title for d in server.documents())
    msg = ask(page, "星火读书会要求读书笔记写多少页？")
    expect(msg).to_have_attribute("data-state", "done")
    expect(msg.locator(".sources")).to_contain_text(title)
    msg.locator(".cite").first.click()
    expect(page.locator("#source-passage mark")).to_contain_text("一百页")

    page.click("#tab-docs")
    card = page.locator(".doc-card", has_text=title)
    card.get_by_role("button", name="删除").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(title)
    dialog.get_by_role("button", name="取消").click()  # cancelling keeps it
    expect(dialog).to_be_hidden()
    expect(card).to_have_count(1)
    card.get_by_role("button", name="删除").click()
    dialog.locator("#confirm-ok").click()
    expect(page.locator("#docs-status")).to_contain_text("已删除")
    expect(card).to_have_count(0)
    expect(page.locator(".doc-card")).to_have_count(5)
    assert all(d["doc_id"] != doc_id for d in server.documents())


def test_text_from_the_server_is_never_turned_into_markup(
    tab: Tab, server: Server, tmp_path: Path
) -> None:
    path = speech_file(
        tmp_path,
        "hostile.txt",
        "<b>星火</b>读书会上的讲话<i>（摘要）</i>\n\n（2021年4月1日）\n\n"
        '星火读书会要求每个支部都设立读书角<img src=x onerror="window.__pwned=1">。\n',
    )
    with server.client() as http, path.open("rb") as f:
        added = http.post("/v1/documents", files={"files": ("hostile.txt", f, "text/plain")})
    added.raise_for_status()
    doc_id = added.json()["added"][0]["doc_id"]
    question = "星火读书会要求每个支部设立什么？"
    try:
        expected = server.ask(question)
        assert "<img" in expected["answer"], "precondition: the answer quotes the markup"
        page = tab.open("/#docs")
        expect(page.locator(f'.doc-card[data-doc-id="{doc_id}"]')).to_contain_text("hostile.txt")
        page.click("#tab-ask")
        msg = ask(page, question)
        assert answer_text(msg) == expected["answer"]  # shown as the characters it is
        msg.locator(".cite").first.click()
        expect(page.locator("#source-passage mark")).to_have_text(expected["citations"][0]["quote"])
        assert page.evaluate("document.querySelectorAll('main img, main b, main i').length") == 0
        assert page.evaluate("window.__pwned") is None
    finally:
        with server.client() as http:
            http.delete(f"/v1/documents/{doc_id}").raise_for_status()


# ----------------------------------------------------------------------- access


def test_api_key_is_asked_for_and_kept_in_session_storage(
    keyed_tab: Tab, keyed_server: Server
) -> None:
    keyed_tab.allow_errors("401")  # Chromium logs each refused request; that is the point here
    page = keyed_tab.page
    response = page.goto(keyed_server.url + "/")
    assert response is not None and response.status == 200  # the page itself is public
    with httpx.Client(base_url=keyed_server.url) as anonymous:
        assert anonymous.get("/v1/documents").status_code == 401  # the data is not

    panel = page.locator("#key-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#key-input")).to_be_focused()
    expect(page.locator("#index-status")).to_contain_text("需要访问密钥")
    keyed_tab.screenshot("api-key-desktop")

    page.fill("#key-input", "wrong-key")
    page.press("#key-input", "Enter")
    expect(page.locator("#key-error")).to_contain_text("密钥无效")
    expect(panel).to_be_visible()

    page.fill("#key-input", TEST_API_KEY)
    page.click("#key-form button[type=submit]")
    expect(panel).to_be_hidden()
    expect(page.locator("#index-status")).to_contain_text("5 篇讲话")
    msg = ask(page, QUESTION)
    expect(msg).to_have_attribute("data-state", "done")
    stored = page.evaluate(f"[sessionStorage.getItem('{KEY_STORAGE}'), localStorage.length]")
    assert stored == [TEST_API_KEY, 0]

    other = page.context.new_page()  # sessionStorage belongs to one tab: a new tab asks again
    other.goto(keyed_server.url + "/")
    expect(other.locator("#key-panel")).to_be_visible()
    other.close()


# ----------------------------------------------------------------------- layout, keyboard


def test_phone_width_layout_has_no_horizontal_scroll(phone_tab: Tab, server: Server) -> None:
    page = phone_tab.open()
    assert page.viewport_size == PHONE
    expect(page.locator("#index-status")).to_contain_text("篇讲话")
    no_horizontal_scroll(page)
    phone_tab.screenshot("phone-start")

    msg = ask(page, QUESTION)
    msg.locator(".cite").first.click()
    panel = page.locator("#source-panel")
    expect(panel).to_be_visible()
    no_horizontal_scroll(page)
    # On a phone the source opens right below the answer, full width, not beside it.
    answer_box, panel_box = msg.bounding_box(), panel.bounding_box()
    assert answer_box is not None and panel_box is not None
    assert panel_box["y"] >= answer_box["y"] + answer_box["height"] - 1
    assert panel_box["x"] + panel_box["width"] <= PHONE["width"]
    assert abs(panel_box["width"] - answer_box["width"]) < 2
    # The page scrolls the highlighted quote into view, clear of the sticky question box.
    mark_box = panel.locator("mark").bounding_box()
    composer_box = page.locator("#ask-form").bounding_box()
    assert mark_box is not None and composer_box is not None
    assert 0 <= mark_box["y"] and mark_box["y"] + mark_box["height"] <= composer_box["y"]
    phone_tab.screenshot("phone-citation")

    page.click("#filters summary")
    no_horizontal_scroll(page)
    page.click("#tab-docs")
    expect(page.locator(".doc-card").first).to_be_visible()
    no_horizontal_scroll(page)
    phone_tab.screenshot("phone-documents")


def test_keyboard_enter_sends_shift_enter_breaks_escape_closes(tab: Tab, server: Server) -> None:
    page = tab.open()
    box = page.get_by_label("你的问题")
    box.focus()
    page.keyboard.type("第一行")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("第二行")
    expect(box).to_have_value("第一行\n第二行")
    expect(page.locator(".turn")).to_have_count(0)
    box.fill(QUESTION)
    page.keyboard.press("Enter")
    msg = page.locator(".msg.assistant").last
    expect(msg).to_have_attribute("data-state", "done")
    expect(box).to_have_value("")

    cite = msg.locator(".cite").first
    cite.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#source-panel")).to_be_visible()
    expect(page.locator("#source-title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#source-panel")).to_be_hidden()
    expect(cite).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focused control is visibly marked


def test_walkthrough_has_no_console_errors(tab: Tab, server: Server) -> None:
    page = tab.open()
    expect(page.locator("#index-status")).to_contain_text("篇讲话")
    page.click("#tab-docs")
    expect(page.locator(".doc-card").first).to_be_visible()
    page.click("#tab-ask")
    page.locator(".example").first.click()
    msg = page.locator(".msg.assistant").last
    expect(msg).not_to_have_attribute("data-state", "streaming")
    if msg.locator(".cite").count():
        msg.locator(".cite").first.click()
        page.click("#source-close")
    page.click("#new-conversation")
    tab.screenshot("start-desktop")
    assert tab.errors == []
