"""The web page over HTTP (a real uvicorn, no browser): every view renders on the server, strings come from the
catalogue in both languages, stored text is escaped, forms that post need the CSRF token, uploads need the key and
are validated as the API validates them, and downloads open with the rows they promise."""

from __future__ import annotations

import csv as csv_module
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from html import unescape

import httpx
import pytest
from api_server import QUERY, RANKER, ROOT, ApiServer, corpus
from openpyxl import load_workbook
from web_helpers import HOSTILE, HOSTILE_APPLICANT, HOSTILE_TITLE, page_server

from api.web.render import CSP
from matcher.export import header
from matcher.i18n import text
from matcher.records import Demand, Patent

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sample_patents: list[Patent],
           sample_demands: list[Demand]) -> Iterator[tuple[ApiServer, str]]:
    indexed, _ = corpus(sample_patents)
    with page_server(tmp_path_factory.mktemp("web"), indexed, sample_demands[:120]) as s:
        yield s


@pytest.fixture()
def client(served: tuple[ApiServer, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[0].url, timeout=120, follow_redirects=True) as c:
        yield c


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def titles(page: httpx.Response) -> list[str]:
    return [unescape(t) for t in re.findall(r'<li class="hit">\s*<h3><a href="[^"]+">([^<]*)</a>', page.text)]


def test_search_renders_results_without_javascript(client: httpx.Client) -> None:
    page = client.get("/", params={"q": QUERY})
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP and "'unsafe-inline'" not in CSP
    found = titles(page)
    assert len(found) == 10 and sum(bool(re.search(r"电池|正极|锂", t)) for t in found) >= 8, found
    assert "<mark>" in page.text  # matched terms highlighted in a snippet
    assert text("web.result.closest", "zh") in page.text
    assert text("web.search.title", "zh") in page.text and text("web.search.title", "en") not in page.text
    second = client.get("/", params={"q": QUERY, "page": 2})
    assert titles(second) and not set(titles(second)) & set(found)
    assert re.search(r'<ol class="hits"[^>]* start="11">', second.text)


def test_the_page_lists_what_the_json_api_answers(client: httpx.Client) -> None:
    page = client.get("/", params={"q": QUERY, "ipc": "H01M", "legal_status": ["valid", "pending"]})
    api = client.get("/v1/search/patents", params={"q": QUERY, "ipc": "H01M", "legal_status": ["valid", "pending"],
                                                   "limit": 10}).json()
    linked = re.findall(r'<li class="hit">\s*<h3><a href="/patents/([^"?]+)', page.text)
    assert linked == [r["id"] for r in api["results"]]


def test_english_switch_and_sort_by_date(client: httpx.Client) -> None:
    # an English query: the fixture's dated records are its US patents (its Chinese ones carry no dates)
    page = client.get("/", params={"q": "graphics processor", "lang": "en", "sort": "date"})
    assert text("web.search.title", "en") in page.text and text("web.search.title", "zh") not in page.text
    assert 'lang="en"' in page.text
    dates = re.findall(r"<span>(\d{4}-\d{2}-\d{2})</span>", page.text)
    assert len(dates) >= 2 and dates == sorted(dates, reverse=True)
    assert 'href="/patents/' in page.text and "lang=en" in page.text  # links keep the language


def test_a_filter_that_empties_the_list_is_named_with_counts_alone(client: httpx.Client) -> None:
    page = client.get("/", params={"q": QUERY, "ipc": "H01M", "applicant_type": "individual", "lang": "en"})
    assert page.status_code == 200 and not titles(page)
    said = unescape(page.text)
    assert text("filters.emptied_by", "en", filter="applicant_type=individual") in said
    keeps = dict(re.findall(r"<li>(\w+)=[^:]+: ([\d,]+) of", said))
    assert int(keeps["ipc"]) > 0 and keeps["applicant_type"] == "0"


def test_bad_filter_value_is_shown_beside_its_field(client: httpx.Client) -> None:
    page = client.get("/", params={"q": QUERY, "ipc": "X99"})
    assert page.status_code == 422 and 'id="ipc-error"' in page.text and "X99" in unescape(page.text)


def test_stored_text_is_escaped_everywhere(client: httpx.Client) -> None:
    for url in ("/?q=锂离子电池 正极材料 制备方法", f"/patents/{HOSTILE.id}", "/demands/ZB-D-XSS"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert "<script>window" not in page.text and "onerror=\"window" not in page.text
        assert 'onmouseover="window' not in page.text
    detail = client.get(f"/patents/{HOSTILE.id}")
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in detail.text
    assert unescape(HOSTILE_APPLICANT) in unescape(detail.text) and HOSTILE_TITLE not in detail.text


def test_patent_and_demand_pages(client: httpx.Client, served: tuple[ApiServer, str]) -> None:
    hit = client.get("/v1/search/patents", params={"q": QUERY, "limit": 1}).json()["results"][0]
    page = client.get(f"/patents/{hit['id']}")
    assert page.status_code == 200 and hit["record"]["title"] in unescape(page.text)
    for field in ("abstract", "ipc", "price", "maturity", "open_licence", "legal_status", "source"):
        assert text(f"web.field.{field}", "zh") in page.text, field
    demands = re.findall(r'href="/demands/([^"?]+)"', page.text)
    assert demands, "the demands the patent could serve are listed"
    demand = client.get(f"/demands/{demands[0]}")
    assert demand.status_code == 200 and re.findall(r'href="/patents/([^"?]+)"', demand.text)
    missing = client.get("/patents/NO-SUCH-ID")
    assert missing.status_code == 404 and "NO-SUCH-ID" in missing.text


def test_demand_matching_by_text_and_export(client: httpx.Client) -> None:
    page = client.get("/match", params={"need": "动力电池正极材料\n寻求高镍三元正极材料的合成工艺"})
    assert page.status_code == 200 and len(titles(page)) == 10
    xlsx = client.get("/match/export.xlsx", params={"need": "动力电池正极材料\n寻求高镍三元正极材料的合成工艺"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == tuple(header(k, "zh") for k in ("rank", "patent_id", "patent_title")) and len(rows) > 10


def test_search_export_csv_has_the_ranked_window(client: httpx.Client) -> None:
    csv = client.get("/export.csv", params={"q": QUERY, "lang": "en"})
    assert csv.status_code == 200 and csv.content.startswith("\ufeff".encode())
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith(f'{header("rank", "en")},{header("patent_id", "en")}') and len(lines) > 20


def test_posting_without_the_csrf_token_is_refused(client: httpx.Client) -> None:
    client.get("/events")
    refused = client.post("/events", data={"chain": "smart_manufacturing"})
    assert refused.status_code == 403 and text("web.error.csrf", "zh") in refused.text
    forged = client.post("/login", data={"api_key": "x", "csrf": "a" * 43})
    assert forged.status_code == 403


def wait_for_job(client: httpx.Client, url: str, timeout: float = 300) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = client.get(url)
        if 'http-equiv="refresh"' not in page.text:
            return page
        time.sleep(1)
    raise AssertionError(f"{url} still running after {timeout} s")


def test_event_shortlist_runs_in_the_background_and_downloads(client: httpx.Client) -> None:
    form = client.get("/events")
    started = client.post("/events", data={"chain": "new_energy_vehicle", "per_demand": "2", "per_patent": "2",
                                            "min_score": "0", "csrf": csrf(form)})
    assert started.status_code == 200 and "/events/jobs/" in str(started.url)
    done = wait_for_job(client, str(started.url))
    assert text("web.job.state.done", "zh") in done.text, done.text[-2000:]
    link = re.search(r'href="(/events/jobs/[^"]+/shortlist\.xlsx)"', done.text)
    assert link
    book = load_workbook(io.BytesIO(client.get(link.group(1)).content))
    rows = [r for sheet in book.worksheets[:-1] for r in list(sheet.iter_rows(values_only=True))[1:]]
    assert rows and all(r[0] for r in rows)


def test_uploaded_chain_errors_are_listed_per_key_path(client: httpx.Client) -> None:
    form = client.get("/events")
    bad = b"name: x\nsegments:\n  - id: a\n    name: A\n    ipc: [X99]\n"
    page = client.post("/events", data={"csrf": csrf(form)}, files={"chain_file": ("bad.yaml", bad, "text/yaml")})
    assert page.status_code == 422
    assert "bad.yaml：segments[0].ipc[0]：不是 IPC/CPC 分类号或其前缀" in unescape(page.text)  # the page's language
    english = client.post("/events", params={"lang": "en"}, data={"csrf": csrf(form)},
                          files={"chain_file": ("bad.yaml", bad, "text/yaml")})
    assert "bad.yaml: segments[0].ipc[0]: not an IPC/CPC code or prefix" in unescape(english.text)


def test_upload_needs_the_key_validates_and_becomes_searchable(client: httpx.Client,
                                                              served: tuple[ApiServer, str]) -> None:
    page = client.get("/upload")
    assert 'type="password"' in page.text and 'name="file"' not in page.text
    wrong = client.post("/login", data={"api_key": "pmk_wrong", "csrf": csrf(page)})
    assert wrong.status_code == 401
    signed = client.post("/login", data={"api_key": served[1], "csrf": csrf(page)})
    cookie = next(c for c in client.cookies.jar if c.name == "pm_key")
    assert cookie.has_nonstandard_attr("HttpOnly") and served[1] not in signed.text and served[1] not in str(signed.url)
    bad = b'{"id": "CN1", "title": "ok"}\n{"id": "CN2", "title": "x", "ipc": ["BAD"]}\n'
    rejected = client.post("/upload", data={"kind": "patents", "csrf": csrf(signed)},
                           files={"file": ("bad.jsonl", bad, "application/octet-stream")})
    assert rejected.status_code == 422
    assert re.search(r"<code>bad\.jsonl:2</code> <strong>ipc(\.0)?</strong>", rejected.text), rejected.text[-1500:]
    assert client.get("/v1/patents/CN1").status_code == 404  # nothing written
    odd = client.post("/upload", data={"kind": "patents", "csrf": csrf(signed)},
                      files={"file": ("../../evil.exe", b'{"id": "CN9", "title": "x"}\n', "application/octet-stream")})
    assert odd.status_code == 422 and "evil.exe" in unescape(odd.text) and ".jsonl" in odd.text
    good = json.dumps({"id": "CN-WEB-1", "title": "一种石墨烯散热膜", "abstract": "graphene heat film",
                       "legal_status": "valid"}, ensure_ascii=False).encode() + b"\n"
    written = client.post("/upload", data={"kind": "patents", "csrf": csrf(signed)},
                          files={"file": ("good.jsonl", good, "application/octet-stream")})
    assert written.status_code == 200 and text("web.upload.written", "zh", inserted=1, updated=0,
                                                                     unchanged=0) in written.text
    status = re.search(r'href="(/upload/status/patents/\d+)"', written.text)
    assert status
    final = wait_for_job(client, status.group(1))
    assert text("web.upload.searchable", "zh", kind=text("web.upload.patents", "zh")) in final.text
    assert "CN-WEB-1" in client.get("/", params={"q": "石墨烯散热膜"}).text


def test_upload_size_limit_applies(client: httpx.Client, served: tuple[ApiServer, str]) -> None:
    page = client.get("/upload")
    client.post("/login", data={"api_key": served[1], "csrf": csrf(page)})
    huge = client.post("/upload", data={"kind": "patents", "csrf": csrf(page)},
                       files={"file": ("big.jsonl", b"x" * (51 * 2**20), "application/octet-stream")})
    assert huge.status_code == 413


def test_portfolio_push_runs_and_lists_enterprises(client: httpx.Client) -> None:
    form = client.get("/portfolio")
    assert "<datalist" in form.text
    # battery patents: the fixture holds a battery demand (the hostile one) that clears the push's floors
    ids = [r["id"] for r in client.get("/v1/search/patents", params={"q": QUERY, "limit": 10}).json()["results"]]
    started = client.post("/portfolio", data={"patent_ids": " ".join(ids), "k": "5", "per_enterprise": "2",
                                               "csrf": csrf(form)})
    done = wait_for_job(client, str(started.url))
    assert text("web.job.state.done", "zh") in done.text, done.text[-2000:]
    assert re.findall(r'<ol class="enterprises">\s*<li>', done.text)
    book = load_workbook(io.BytesIO(client.get(re.search(r'href="(/portfolio/jobs/[^"]+/push\.xlsx)"',
                                                           done.text).group(1)).content))  # type: ignore[union-attr]
    assert book.worksheets[0].max_row > 1
    unknown = client.post("/portfolio", data={"patent_ids": "NO-SUCH", "csrf": csrf(form)})
    assert unknown.status_code == 422 and "NO-SUCH" in unknown.text


def test_portfolio_push_says_so_when_nothing_clears_the_floor(client: httpx.Client) -> None:
    """The fixture's applicants are English GPU makers and its demands Chinese: no pair clears the floor, and the
    page says so with the floor instead of an empty list."""
    form = client.get("/portfolio")
    applicant = unescape(re.findall(r'<option value="([^"]+)"', form.text)[0])
    started = client.post("/portfolio", data={"applicant": applicant, "k": "5", "csrf": csrf(form)})
    done = wait_for_job(client, str(started.url))
    assert text("web.job.state.done", "zh") in done.text
    if not re.findall(r'<ol class="enterprises">\s*<li>', done.text):
        assert unescape(text("web.portfolio.none", "zh", min_fit="0.25")) in unescape(done.text)




def test_page_latency_bench_runs(served: tuple[ApiServer, str]) -> None:
    """bench/page_latency.py keeps working (a tiny run; the figures live in bench/README.md, not in a test)."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "page_latency.py"), "--url", served[0].url,
                          "--rounds", "1", "--queries", "2"], capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(out.stdout)
    assert report["page"]["requests"] == report["api"]["requests"] == 2
    assert report["page"]["p95_ms"] > 0 and report["api"]["p95_ms"] > 0 and "cpu" in report["machine"]


def test_closed_reads_close_the_pages_too(served: tuple[ApiServer, str]) -> None:
    """With ``reads_need_key`` the pages need the key too (from the sign-in form's cookie); the form itself and the
    static files stay open (in-process app on the same workspace, as test_api's closed-reads test)."""
    from fastapi.testclient import TestClient

    from api.http.app import create_app
    from api.http.settings import ServiceSettings
    from matcher.config import RankerConfig
    from matcher.workspace import Workspace

    settings = ServiceSettings(reads_need_key=True, ranker=RankerConfig(**RANKER), warm=False)
    with TestClient(create_app(Workspace(served[0].log.parent / "home"), settings)) as client:
        page = client.get("/", params={"q": QUERY})
        assert page.status_code == 401 and 'type="password"' in page.text and not titles(page)
        assert client.get(f"/patents/{HOSTILE.id}").status_code == 401
        assert client.get("/export.csv", params={"q": QUERY}).status_code == 401
        assert client.get("/static/app.css").status_code == 200
        assert client.get("/v1/search/patents", params={"q": QUERY}).status_code == 401  # the API stays closed
        client.post("/login", data={"api_key": served[1], "csrf": csrf(page)})
        assert titles(client.get("/", params={"q": QUERY}))
        assert client.get("/v1/search/patents", params={"q": QUERY}).status_code == 401  # a cookie opens no API


def test_a_folded_near_duplicate_is_listed_under_the_result_shown(tmp_path_factory: pytest.TempPathFactory,
                                                                  sample_patents: list[Patent],
                                                                  sample_demands: list[Demand]) -> None:
    """One offer written twice (the same abstract, a title with two more words) is one hit; the other is named and
    linked under it on the page, in both languages, and in the export: folded, never silently dropped."""
    indexed, _ = corpus(sample_patents)
    first = next(p for p in indexed if p.language == "zh" and p.title and len(p.abstract) > 80)
    twin = first.model_copy(update={"id": "TWIN-OF-FIRST", "title": first.title + "及其应用"})
    with page_server(tmp_path_factory.mktemp("twin"), [*indexed[:120], twin], sample_demands[:20]) as (server, _), \
            httpx.Client(base_url=server.url, timeout=120) as c:
        hits = c.get("/v1/search/patents", params={"q": first.title, "limit": 10}).json()["results"]
        ids = [h["id"] for h in hits]
        assert len({first.id, twin.id} & set(ids)) == 1, ids  # one of the two is shown
        head = next(h for h in hits if h["id"] in (first.id, twin.id))
        other = twin.id if head["id"] == first.id else first.id
        assert other in head["duplicates"]
        for lang in ("zh", "en"):
            page = c.get("/", params={"q": first.title, "lang": lang})
            item = next(li for li in page.text.split('<li class="hit">')
                        if re.search(rf'<h3><a href="/patents/{re.escape(head["id"])}["?]', li))
            folded = re.search(r'<p class="duplicates">([^<]*)(.*?)</p>', item, re.S)
            assert folded and unescape(folded.group(1)).strip() == text("common.folded_duplicates", lang).strip()
            assert f'href="/patents/{other}' in folded.group(2) and other in folded.group(2)
        csv = c.get("/export.csv", params={"q": first.title, "lang": "en"}).content.decode("utf-8-sig")
        columns, *rows = list(csv_module.reader(io.StringIO(csv)))
        assert header("near_duplicates", "en") in columns
        row = next(r for r in rows if r[columns.index(header("patent_id", "en"))] == head["id"])
        assert other in row[columns.index(header("near_duplicates", "en"))]
