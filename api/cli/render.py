"""How the ``pmatch`` search and match commands print results: a table and the explanations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from api.cli.common import console, err, fail
from matcher.export import output_format, results_export, write
from matcher.i18n import DEFAULT_LANG, LANGS, text
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
    table.add_column("id", no_wrap=True)
    table.add_column("title")
    table.add_column("applicant / kind", max_width=28)
    table.add_column(text("cli.col.legal_status", lang))
    table.add_column(text("cli.col.licence", lang), max_width=36)
    table.add_column("lang")
    table.add_column("score", justify="right")
    for r in results:
        rec = r.record
        name = rec.title or (rec.abstract[:60] + "…" if isinstance(rec, Patent) else "")
        who = ", ".join(getattr(rec, "applicants", [])[:2]) or (getattr(rec, "kind", None) or "")
        status = legal_status(rec, lang) if isinstance(rec, Patent) else ""
        table.add_row(str(r.rank), r.id, name, who, status, licence_terms(rec, lang), rec.language,
                      f"{r.score:.4f}" if r.score < 1 else f"{r.score:.2f}")
    return table


def print_explanations(results: list[Result]) -> None:
    for r in results:
        if r.explanation is None:
            continue
        ex = r.explanation
        console.print(f"[bold]#{r.rank} {r.id}[/] ({ex['language']})", highlight=False)
        shown = ex["matched_terms"][:8]  # most informative first
        terms = ", ".join(f"{t['term']} ({'/'.join(t['fields'])})" for t in shown) or "none"
        more = len(ex["matched_terms"]) - len(shown)
        console.print(f"  shared terms: {terms}" + (f" and {more} more" if more > 0 else ""), highlight=False)
        for field, snip in ex["snippets"].items():
            text, marked, last = snip["text"], [], 0
            for start, end in snip["highlights"]:
                marked += [_esc(text[last:start]), "[bold yellow]", _esc(text[start:end]), "[/]"]
                last = end
            marked.append(_esc(text[last:]))
            console.print(f"  {field}: " + "".join(marked).replace("\n", " "), highlight=False)
        if ex.get("closest_sentence"):
            cs = ex["closest_sentence"]
            console.print(f"  closest sentence ({cs['similarity']:.3f}): {_esc(cs['text'])}", highlight=False)
        parts = []
        for name, info in r.retrievers.items():
            if "abstained" in info:
                parts.append(f"{name}: abstained ({info['abstained']})")
            elif name == "fused":
                parts.append(f"fused ({info['method']}): {info.get('score', info.get('margin')):.4f}")
            else:
                parts.append(f"{name}: rank {info.get('rank') or '-'} score {info.get('score')}")
        console.print("  " + " · ".join(parts), highlight=False)


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


def check_out(out: Path | None, lang: str) -> None:
    """Refuse a bad ``--out`` or ``--lang`` before any work (exit 2)."""
    if lang not in LANGS:
        raise fail(f"--lang must be zh or en, not {lang!r}", 2)
    if out is not None:
        try:
            output_format(out)
        except ValueError as exc:
            raise fail(str(exc), 2) from None


def write_results(out: Path, title: str, results: list[Result], info: dict[str, Any], lang: str) -> None:
    """``--out``: the results as CSV, XLSX or JSON (``matcher.export``)."""
    try:
        write(results_export(title, results, info, lang), out, lang)  # type: ignore[arg-type]
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror or exc}") from None
    err.print(text("cli.wrote", lang, path=out), highlight=False)
