"""The page in a real browser: Debian's headless Chromium driven by Playwright, against a real uvicorn.

Each role's task is done the way a person would do it (typing, clicking, the keyboard alone), hostile stored text
must not run, and axe-core (vendored under tests/assets/axe-core) finds no serious or critical violation.
Screenshots are saved to ``$PMATCH_ARTEFACTS`` (default ``.artefacts/web``) for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_server import QUERY, ApiServer, corpus
from openpyxl import load_workbook
from web_helpers import HOSTILE, HOSTILE_APPLICANT, page_server

from matcher.export import header
from matcher.i18n import text
from matcher.records import Demand, Patent

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "tests" / "assets" / "axe-core" / "axe.min.js"
SHOTS = Path(os.environ.get("PMATCH_ARTEFACTS", ROOT / ".artefacts")) / "web"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make browser)")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sample_patents: list[Patent],
           sample_demands: list[Demand]) -> Iterator[tuple[ApiServer, str]]:
    indexed, _ = corpus(sample_patents)
    with page_server(tmp_path_factory.mktemp("browser"), indexed, sample_demands[:120]) as s:
        yield s


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=ARGS, headless=True, accept_downloads=True,
            viewport={"width": 1280, "height": 900}, locale="zh-CN")
        context.set_default_timeout(60_000)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture()
def page(browser_context: Any, served: tuple[ApiServer, str]) -> Iterator[Any]:
    tab = browser_context.new_page()
    tab.problems = []  # page errors and console errors (a CSP violation is one)
    tab.on("pageerror", lambda exc: tab.problems.append(f"pageerror: {exc}"))
    tab.on("console", lambda msg: tab.problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    tab.on("dialog", lambda dialog: (tab.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    tab.base = served[0].url
    yield tab
    tab.close()


def shot(page: Any, name: str, full: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    return path


def serious_violations(page: Any) -> list[str]:
    page.evaluate(AXE.read_text("utf-8"))  # evaluated by the driver: not subject to the page's CSP
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def wait_done(page: Any, lang: str = "zh", timeout_ms: int = 300_000) -> None:
    page.wait_for_function("() => !document.querySelector('meta[http-equiv=refresh]')", timeout=timeout_ms,
                           polling=500)
    page.wait_for_load_state()
    assert text("web.job.state.done", lang) in page.inner_text("main"), page.inner_text("main")[:1000]


def test_chinese_query_shows_explained_results(page: Any) -> None:
    page.goto(page.base + "/")
    page.fill("#q", QUERY)
    page.press("#q", "Enter")
    page.wait_for_selector("li.hit")
    hits = page.locator("li.hit h3 a").all_inner_texts()
    assert len(hits) == 10 and sum(bool(re.search(r"电池|正极|锂", h)) for h in hits) >= 8, hits
    assert page.locator("li.hit mark").count() > 0
    assert "q=" in page.url  # the view is a shareable URL
    shot(page, "search-zh")
    assert serious_violations(page) == []
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "search-zh-phone", full=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scrolling
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.problems == []


def test_detail_page_from_a_result(page: Any) -> None:
    page.goto(page.base + "/?q=" + QUERY)
    first = page.locator("li.hit h3 a").first
    title = first.inner_text()
    first.click()
    page.wait_for_url(re.compile(r"/patents/"))
    assert page.inner_text("h1") == title
    assert page.locator("#serves-title + * li.hit, section[aria-labelledby=serves-title] li.hit").count() > 0
    shot(page, "patent-zh")
    assert serious_violations(page) == []
    page.locator("section[aria-labelledby=serves-title] li.hit h3 a").first.click()
    page.wait_for_url(re.compile(r"/demands/"))
    assert page.locator("section[aria-labelledby=answers-title] li.hit").count() > 0
    shot(page, "demand-zh")
    assert page.problems == []


def test_filter_to_nothing_says_why(page: Any, served: tuple[ApiServer, str]) -> None:
    api = served[0].url + "/v1/search/patents"
    assert httpx.get(api, params={"q": QUERY, "ipc": "H01M", "language": "en"}).json()["results"] == []
    page.goto(page.base + "/?q=" + QUERY)
    page.fill("#ipc", "H01M")
    page.check("input[name=language][value=en]")
    page.click("aside.filters button[type=submit]")
    page.wait_for_selector(".empty")
    said = page.inner_text(".empty")
    assert text("filters.emptied_by", "zh", filter="language=en") in said, said
    assert re.search(r"ipc=H01M：\S+ 件专利中有 [1-9][\d,]* 件符合", said), said
    shot(page, "search-empty-zh")
    assert page.problems == []


def test_switch_to_english(page: Any) -> None:
    page.goto(page.base + "/?q=" + QUERY)
    page.click("a.lang")
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == text("web.search.title", "en")
    assert page.locator("li.hit").count() == 10
    shot(page, "search-en")
    page.locator("li.hit h3 a").first.click()
    page.wait_for_url(re.compile(r"/patents/.*lang=en"))
    assert text("web.patent.terms", "en") in page.inner_text("main")
    shot(page, "patent-en")
    assert page.problems == []


def test_event_shortlist_and_xlsx(page: Any, tmp_path: Path) -> None:
    page.goto(page.base + "/events?lang=en")
    page.select_option("#chain", "new_energy_vehicle")
    page.fill("#per_demand", "2")
    page.fill("#per_patent", "2")
    page.fill("#min_score", "0.1")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/events/jobs/"))
    wait_done(page, "en")
    assert page.locator("main table tbody tr").count() > 0
    shot(page, "event-shortlist-en")
    assert serious_violations(page) == []
    with page.expect_download() as download:
        page.click("text=XLSX")
    path = tmp_path / "shortlist.xlsx"
    download.value.save_as(path)
    book = load_workbook(path)
    assert book.sheetnames[-1] == text("export.sheet.info", "en")
    details = list(book.worksheets[-2].iter_rows(values_only=True))  # the ranker's numbers, one row per pair
    score = details[0].index(header("score", "en"))
    assert len(details) > 1 and all(r[score] >= 0.1 for r in details[1:])
    main_rows = [r for sheet in book.worksheets[:-2] for r in list(sheet.iter_rows(values_only=True))[1:]]
    assert len(main_rows) == len(details) - 1
    assert page.problems == []


def test_uploaded_chain_errors_per_key_path(page: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad-chain.yaml"
    bad.write_text("name: x\nsegments:\n  - id: a\n    name: A\n    ipc: [X99]\n", "utf-8")
    page.goto(page.base + "/events")
    page.set_input_files("#chain_file", str(bad))
    page.click("main button[type=submit]")
    page.wait_for_selector(".problem")
    assert "bad-chain.yaml：segments[0].ipc[0]：不是 IPC/CPC 分类号或其前缀" in page.inner_text(".problem")
    shot(page, "event-chain-errors-zh")


def test_push_a_portfolio(page: Any) -> None:
    page.goto(page.base + "/portfolio")
    applicant = page.locator("#applicants option").first.get_attribute("value")
    page.fill("#applicant", applicant[:8])  # the datalist offers the holders as one types
    page.fill("#applicant", "")
    # the hostile battery patent and its battery demand clear the push's floors in this fixture
    page.fill("#patent_ids", HOSTILE.id)
    page.fill("#k", "5")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/portfolio/jobs/"))
    wait_done(page)
    assert page.locator("ol.enterprises > li").count() > 0
    assert page.locator("ol.enterprises a.chip").count() > 0  # supporting patents
    shot(page, "portfolio-push-zh")
    assert serious_violations(page) == []
    assert page.problems == []


def test_upload_a_bad_file_and_see_its_errors(page: Any, served: tuple[ApiServer, str], tmp_path: Path) -> None:
    bad = tmp_path / "patents.csv"
    bad.write_text("id,title,ipc,legal_status\nCN-B-1,好的记录,H01M,valid\nCN-B-2,坏的记录,NOT-IPC,valid\n"
                   "CN-B-3,,,\n", "utf-8")
    page.goto(page.base + "/upload")
    page.fill("#api_key", served[1])
    page.click("main button[type=submit]")
    page.wait_for_selector("#file")
    assert "pmk_" not in page.evaluate("document.cookie")  # the key's cookie is HttpOnly
    assert served[1] not in page.content() and served[1] not in page.url
    page.set_input_files("#file", str(bad))
    page.click("form[enctype] button[type=submit]")
    page.wait_for_selector("ul.errors")
    errors = page.locator("ul.errors li").all_inner_texts()
    assert any(e.startswith("patents.csv:3") and "ipc" in e for e in errors), errors
    assert any(e.startswith("patents.csv:4") for e in errors), errors
    shot(page, "upload-errors-zh")
    assert serious_violations(page) == []
    assert httpx.get(served[0].url + "/v1/patents/CN-B-1").status_code == 404  # nothing written


def test_hostile_stored_text_does_not_run(page: Any) -> None:
    """A title and an applicant made of markup are shown as text on every page that lists them; nothing runs."""
    pages = (("/?q=锂离子电池正极材料&applicant=onmouseover", "li.hit"), (f"/patents/{HOSTILE.id}", "dl.record"),
             ("/demands/ZB-D-XSS", "dl.record"), ("/match?demand_id=ZB-D-XSS", "main"))
    for url, where in pages:
        page.goto(page.base + url)
        for element in page.locator(f"{where} a, {where} span, {where} dd").all()[:60]:
            element.hover()
        assert page.evaluate("window.__pwned") is None, url
        assert page.locator("img[src=x]").count() == 0, url
        assert HOSTILE.title in page.inner_text("main"), url  # shown, as the text it is
    page.goto(page.base + "/demands/ZB-D-XSS")
    assert HOSTILE_APPLICANT in page.inner_text("dl.record")  # the demand's enterprise
    assert not [p for p in page.problems if p.startswith("dialog")]


def test_keyboard_only(page: Any) -> None:
    page.goto(page.base + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # from the main landmark into the search box
    while page.evaluate("document.activeElement.id") != "q":
        page.keyboard.press("Tab")
    page.keyboard.type(QUERY)
    page.keyboard.press("Enter")
    page.wait_for_selector("li.hit")
    while page.evaluate("document.activeElement.className") != "to-results":  # past the box: skip the filters
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    for _ in range(5):  # the first result's link is next
        page.keyboard.press("Tab")
        if page.evaluate("!!document.activeElement.closest('li.hit h3')"):
            break
    else:
        raise AssertionError("no result reachable by Tab")
    shot(page, "keyboard-focus-zh", full=False)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/patents/"))
    assert page.problems == []
