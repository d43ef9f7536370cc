"""How the ``pmatch`` search and match commands print results: a table and the explanations."""

from __future__ import annotations

from rich.table import Table

from api.cli.common import console
from matcher.search import Result


def results_table(results: list[Result], title: str) -> Table:
    table = Table(title=title, show_lines=False, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("id", no_wrap=True)
    table.add_column("title")
    table.add_column("applicant / kind", max_width=28)
    table.add_column("lang")
    table.add_column("score", justify="right")
    for r in results:
        rec = r.record
        name = rec.title or (rec.abstract[:60] + "…" if hasattr(rec, "abstract") else "")
        who = ", ".join(getattr(rec, "applicants", [])[:2]) or (getattr(rec, "kind", None) or "")
        table.add_row(str(r.rank), r.id, name, who, rec.language, f"{r.score:.4f}" if r.score < 1 else f"{r.score:.2f}")
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
                parts.append(f"fused ({info['method']}): {info['score']:.4f}")
            else:
                parts.append(f"{name}: rank {info.get('rank') or '-'} score {info.get('score')}")
        console.print("  " + " · ".join(parts), highlight=False)


def _esc(text: str) -> str:
    return text.replace("[", "\\[")
