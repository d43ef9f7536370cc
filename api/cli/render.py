"""How the ``pmatch`` search and match commands print results: a table and the explanations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from api.cli.common import check_lang, console, err, fail
from matcher.export import UnknownFormat, output_format, results_export, write
from matcher.i18n import DEFAULT_LANG, label, text
from matcher.matching import EnterpriseMatch
from matcher.records import Demand, Patent
from matcher.results import Result


def legal_status(patent: Patent, lang: str = DEFAULT_LANG) -> str:
    if patent.legal_status is None:
        return text("common.not_provided", lang)
    return text(f"export.legal.{patent.legal_status}", lang)


def licence_terms(record: Patent | Demand, lang: str = DEFAULT_LANG) -> str:
    """A patent's licence terms on one line (open licence, price, maturity, cooperation modes); a demand's
    cooperation modes and budget."""
    parts = []
    if isinstance(record, Patent):
        if record.open_licence:
            parts.append(text("cli.licence.open", lang))
        if record.price:
            parts.append(text("cli.licence.price", lang, value=record.price))
        if record.maturity:
            parts.append(text("cli.licence.maturity", lang, value=record.maturity))
    elif record.budget:
        parts.append(text("cli.licence.price", lang, value=record.budget))
    if record.cooperation_modes:
        parts.append(text("cli.licence.modes", lang, value="、".join(record.cooperation_modes)))
    return " · ".join(parts) or text("cli.licence.none", lang)


def results_table(results: list[Result], title: str, lang: str = DEFAULT_LANG) -> Table:
    table = Table(title=title, show_lines=False, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column(text("cli.col.id", lang), no_wrap=True)
    table.add_column(text("cli.col.title", lang))
    table.add_column(text("cli.col.who", lang), max_width=28)
    table.add_column(text("cli.col.legal_status", lang))
    table.add_column(text("cli.col.licence", lang), max_width=36)
    table.add_column(text("cli.col.lang", lang))
    table.add_column(text("cli.col.score", lang), justify="right")
    for r in results:
        rec = r.record
        name = rec.title or (rec.abstract[:60] + "…" if isinstance(rec, Patent) else "")
        who = ", ".join(getattr(rec, "applicants", [])[:2]) or (getattr(rec, "kind", None) or "")
        status = legal_status(rec, lang) if isinstance(rec, Patent) else ""
        name = _esc(name)
        if r.duplicates:  # folded near-duplicates are listed under the one shown, never silently dropped
            name += f"\n[dim]{text('common.folded_duplicates', lang)}{'、'.join(r.duplicates)}[/dim]"
        table.add_row(str(r.rank), r.id, name, who, status, licence_terms(rec, lang), rec.language,
                      f"{r.score:.4f}" if r.score < 1 else f"{r.score:.2f}")
    return table


def enterprises_table(matches: list[EnterpriseMatch], title: str, lang: str = DEFAULT_LANG) -> Table:
    """Enterprises for a portfolio (``match portfolio``, ``push``): each one's best demand and the patents behind it."""
    table = Table(title=title, title_justify="left")
    for col in ("#", "enterprise", "score", "best_demand", "supporting"):
        table.add_column(col if col == "#" else text(f"cli.col.{col}", lang))
    for i, m in enumerate(matches, 1):
        best = m.demands[0]
        who = m.enterprise if m.named else text("common.not_provided", lang)
        table.add_row(str(i), who, f"{m.score:.4f}", f"{best['demand_id']} {best['title']}",
                      ", ".join(p["patent_id"] for p in best["patents"][:3]))
    return table


def field_label(field: str, lang: str) -> str:
    """A record field's name as the user reads it (``cli.field.<field>``), else the field itself."""
    return label(f"cli.field.{field}", lang, field)


def retriever_label(name: str, lang: str) -> str:
    return label(f"cli.retriever.{name}", lang, name)


def print_explanations(results: list[Result], lang: str = DEFAULT_LANG) -> None:
    """``--explain``: per result, the shared terms and where they occur, highlighted snippets, the closest sentence
    and what each retriever said, in ``lang``."""
    sep = text("cli.explain.term_sep", lang)
    for r in results:
        if r.explanation is None:
            continue
        ex = r.explanation
        console.print(f"[bold]#{r.rank} {r.id}[/] ({ex['language']})", highlight=False)
        shown = ex["matched_terms"][:8]  # most informative first
        terms = sep.join(text("cli.explain.term", lang, term=_esc(t["term"]),
                              fields="/".join(field_label(f, lang) for f in t["fields"])) for t in shown)
        more = len(ex["matched_terms"]) - len(shown)
        console.print(text("cli.explain.terms", lang, terms=terms or text("cli.explain.none", lang))
                      + (text("cli.explain.more", lang, count=more) if more > 0 else ""), highlight=False)
        for field, snip in ex["snippets"].items():
            body, marked, last = snip["text"], [], 0
            for start, end in snip["highlights"]:
                marked += [_esc(body[last:start]), "[bold yellow]", _esc(body[start:end]), "[/]"]
                last = end
            marked.append(_esc(body[last:]))
            console.print(text("cli.explain.snippet", lang, field=field_label(field, lang),
                               text="".join(marked).replace("\n", " ")), highlight=False)
        if ex.get("closest_sentence"):
            cs = ex["closest_sentence"]
            console.print(text("cli.explain.sentence", lang, similarity=f"{cs['similarity']:.3f}",
                               text=_esc(cs["text"])), highlight=False)
        parts = []
        for name, info in r.retrievers.items():
            shown = retriever_label(name, lang)
            if "abstained" in info:
                parts.append(text("cli.explain.abstained", lang, name=shown))
            elif name == "fused":
                parts.append(text("cli.explain.fused", lang, method=info["method"],
                                  score=f"{info.get('score', info.get('margin')):.4f}"))
            else:
                parts.append(text("cli.explain.ranked", lang, name=shown, rank=info.get("rank") or "-",
                                  score=info.get("score")))
        console.print("  " + " · ".join(parts), highlight=False)


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


def check_out(out: Path | None, lang: str) -> None:
    """Refuse a bad ``--out`` or ``--lang`` before any work (exit 2)."""
    check_lang(lang)
    if out is not None:
        try:
            output_format(out)
        except UnknownFormat as exc:
            raise fail(exc.message(lang), 2, lang) from None


def write_results(out: Path, title: str, results: list[Result], info: dict[str, Any], lang: str) -> None:
    """``--out``: the results as CSV, XLSX or JSON (``matcher.export``)."""
    try:
        write(results_export(title, results, info, lang), out, lang)  # type: ignore[arg-type]
    except OSError as exc:
        raise fail(text("cli.error.cannot_write", lang, path=out, reason=exc.strerror or exc), 1, lang) from None
    err.print(text("cli.wrote", lang, path=out), highlight=False)
