"""``pmatch standing run|status``, ``pmatch feed`` and ``pmatch saved-search add|list|remove``: standing matches.

A write leaves pending work in the store; once ``pmatch index build`` (or a server's background rebuild) has
published the write, ``pmatch standing run`` matches it (a server does this in the background by itself).
``pmatch feed`` reads an enterprise's or a holder's new matches since a cursor or a date.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table as RichTable

from api.cli.common import check_lang, console, existing_workspace, fail
from api.cli.options import HomeOpt, LangOpt, h
from matcher import match_events as ev
from matcher.export import Table, UnknownFormat, write
from matcher.feeds import BadCursor, FeedPage, Owner, read_feed
from matcher.filters import DemandFilters, PatentFilters
from matcher.i18n import text
from matcher.search import Searcher
from matcher.standing import StandingSettings, run_pending

AsOfOpt = Annotated[str | None, typer.Option("--as-of", help=h("standing.AsOfOpt"))]


def _date(value: str | None, lang: str, key: str = "docking.feed.bad_date") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(text(key, lang, value=value), 2, lang) from None


def standing_run(
    home: HomeOpt = None,
    as_of: AsOfOpt = None,
    limit: Annotated[int | None, typer.Option(help=h("standing.standing_run.limit"))] = None,
    lang: LangOpt = "zh",
) -> None:
    """Match the written records that a published index holds against the other side; record match events."""
    lang = check_lang(lang)
    ws = existing_workspace(home, lang)
    settings = StandingSettings()
    if as_of is not None:
        settings = settings.model_copy(update={"as_of": _date(as_of, lang)})
    searcher = Searcher(ws)
    try:
        report = run_pending(searcher, settings, limit=limit)
        pending = ev.pending_count(searcher.store)
    finally:
        searcher.close()
    console.print(text("docking.run.done", lang, processed=report.processed, events=report.events,
                       seconds=round(report.seconds, 1), pending=sum(pending.values())), highlight=False)
    if sum(pending.values()) and limit is None:
        console.print(text("docking.run.waiting", lang, count=sum(pending.values())), highlight=False)


def standing_status(home: HomeOpt = None, lang: LangOpt = "zh") -> None:
    """What is pending and how many match events the store holds."""
    lang = check_lang(lang)
    ws = existing_workspace(home, lang)
    with ws.open_store() as store:
        pending = ev.pending_count(store)
        live, capped, superseded = store._db.execute(
            "SELECT COALESCE(SUM(superseded_by IS NULL), 0), COALESCE(SUM(superseded_by IS NULL AND capped=1), 0), "
            "COALESCE(SUM(superseded_by IS NOT NULL), 0) FROM match_events").fetchone()
    for kind, count in pending.items():
        console.print(text("docking.status.pending", lang, kind=kind, count=count), highlight=False)
    if not pending:
        console.print(text("docking.status.none", lang))
    console.print(text("docking.status.events", lang, live=live, capped=capped, superseded=superseded),
                  highlight=False)


FEED_COLUMNS = ["event_id", "created_at", "score", "evidence", "direction", "enterprise", "demand_id", "demand_title",
                "demand_expiry", "patent_id", "patent_title", "holder", "open_licence", "price", "saved_search"]


def feed_rows(page: FeedPage, lang: str) -> list[dict[str, Any]]:
    rows = []
    for item in page.items:
        p, d, s = item["patent"] or {}, item["demand"] or {}, item["saved_search"] or {}
        rows.append({
            "event_id": item["event_id"], "created_at": item["created_at"], "score": item["score"],
            "evidence": text(f"docking.evidence.{item['evidence']}", lang),
            "direction": text(f"docking.direction.{item['direction']}", lang),
            "enterprise": item["enterprise"] or "", "demand_id": d.get("id"), "demand_title": d.get("title"),
            "demand_expiry": d.get("expiry_date"), "patent_id": p.get("id"), "patent_title": p.get("title"),
            "holder": p.get("applicants") or [], "open_licence": p.get("open_licence"), "price": p.get("price"),
            "saved_search": s.get("name") or "",
        })
    return rows


def _owner(enterprise: str | None, holder: str | None, lang: str) -> tuple[Owner, str]:
    """Exactly one of --enterprise / --holder: (owner type, name)."""
    if enterprise is not None and holder is None:
        return "enterprise", enterprise
    if holder is not None and enterprise is None:
        return "holder", holder
    raise fail(text("docking.feed.need_owner", lang), 2, lang)


def feed(
    enterprise: Annotated[str | None, typer.Option(help=h("standing.feed.enterprise"))] = None,
    holder: Annotated[str | None, typer.Option(help=h("standing.feed.holder"))] = None,
    since: Annotated[str | None, typer.Option(help=h("standing.feed.since"))] = None,
    cursor: Annotated[str | None, typer.Option(help=h("standing.feed.cursor"))] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help=h("standing.feed.limit"))] = 50,
    include_capped: Annotated[bool, typer.Option(help=h("standing.feed.include_capped"))] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help=h("standing.feed.out"))] = None,
    home: HomeOpt = None,
    lang: LangOpt = "zh",
) -> None:
    """New matches of an enterprise or a patent holder since a cursor or a date."""
    lang = check_lang(lang)
    owner_type, name = _owner(enterprise, holder, lang)
    ws = existing_workspace(home, lang)
    with ws.open_store() as store:
        try:
            page = read_feed(store, owner_type, name, cursor, _date(since, lang), limit, include_capped)
        except BadCursor as exc:
            raise fail(text("docking.feed.bad_cursor", lang, reason=str(exc)), 2, lang) from None
    rows = feed_rows(page, lang)
    title = text("docking.feed.title", lang, who=name)
    if out is not None:
        try:
            table = Table(sheets=[(title[:31], rows)], columns=FEED_COLUMNS,
                          info=[("owner_type", owner_type), ("name", name), ("next_cursor", page.next_cursor),
                                ("has_more", page.has_more)], document=page.to_dict())
            write(table, out, lang)  # type: ignore[arg-type]
        except UnknownFormat as exc:
            raise fail(exc.message(lang), 2, lang) from None
        console.print(text("cli.wrote", lang, path=str(out)), highlight=False)
    else:
        if not rows:
            console.print(text("docking.feed.empty", lang))
        else:
            grid = RichTable(title=title, show_lines=False)
            for key in ("event_id", "score", "demand_id", "demand_title", "patent_id", "patent_title"):
                grid.add_column(text(f"export.col.{key}", lang))
            for r in rows:
                grid.add_row(str(r["event_id"]), f"{r['score']:.3f}", str(r["demand_id"] or r["saved_search"]),
                             str(r["demand_title"] or ""), str(r["patent_id"] or ""), str(r["patent_title"] or ""))
            console.print(grid)
    key = "docking.feed.more" if page.has_more else "docking.feed.next"
    console.print(text(key, lang, cursor=page.next_cursor), highlight=False, soft_wrap=True)


def saved_search_add(
    name: Annotated[str, typer.Argument(help=h("standing.saved_search_add.name"))],
    query: Annotated[str, typer.Argument(help=h("standing.saved_search_add.query"))],
    enterprise: Annotated[str | None, typer.Option(help=h("standing.saved_search_add.enterprise"))] = None,
    holder: Annotated[str | None, typer.Option(help=h("standing.saved_search_add.holder"))] = None,
    min_score: Annotated[float | None, typer.Option(help=h("standing.saved_search_add.min_score"))] = None,
    filters: Annotated[str | None, typer.Option(
        "--filters", help=h("standing.saved_search_add.filters"))] = None,
    home: HomeOpt = None,
    lang: LangOpt = "zh",
) -> None:
    """Save a search: records written from now on that enter its results appear in the owner's feed."""
    lang = check_lang(lang)
    owner_type, owner = _owner(enterprise, holder, lang)
    if not query.strip():
        raise fail(text("docking.saved.empty_query", lang), 2, lang)
    kind = "patents" if enterprise is not None else "demands"
    chosen = _saved_filters(filters, kind, lang)
    ws = existing_workspace(home, lang)
    with ws.open_store() as store:
        saved = ev.save_search(store, owner_type, owner, name, kind, query, chosen, min_score)
    console.print(text("docking.saved.added", lang, id=saved.id, name=name, k=StandingSettings().saved_search_k,
                       who=owner), highlight=False)


def _saved_filters(raw: str | None, kind: str, lang: str) -> dict[str, Any]:
    """``--filters`` checked as the API checks them: ``--filters: field: reason`` on a bad one."""
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise fail(text("docking.saved.bad_filters", lang, reason=f"JSON: {exc.msg} (char {exc.pos})"), 2,
                   lang) from None
    model = PatentFilters if kind == "patents" else DemandFilters
    try:
        checked = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "filters"
        raise fail(text("docking.saved.bad_filters", lang, reason=f"{where}: {first['msg']}"), 2, lang) from None
    return checked.model_dump(mode="json", exclude_defaults=True)


def saved_search_list(home: HomeOpt = None, lang: LangOpt = "zh") -> None:
    """List saved searches."""
    lang = check_lang(lang)
    ws = existing_workspace(home, lang)
    with ws.open_store() as store:
        found = ev.saved_searches(store)
    if not found:
        console.print(text("docking.saved.none", lang))
    for s in found:
        console.print(f"#{s.id}  {s.owner_type}:{s.owner}  {s.name}  [{s.kind}]  {s.query}", highlight=False)


def saved_search_remove(search_id: Annotated[int, typer.Argument(help=h("standing.saved_search_remove.search_id"))],
                        home: HomeOpt = None, lang: LangOpt = "zh") -> None:
    """Remove a saved search (its matches leave the feed)."""
    lang = check_lang(lang)
    ws = existing_workspace(home, lang)
    with ws.open_store() as store:
        if not ev.delete_saved_search(store, search_id):
            raise fail(text("docking.saved.unknown", lang, id=search_id), 1, lang)
    console.print(text("docking.saved.removed", lang, id=search_id))
