"""The ``pmatch`` command line: ingest, index, embed, search, show, match, shortlist, push, stats, eval, serve, keys,
demo.

Each command lives in its own module of ``api.cli``; this one only assembles them into the typer application.
"""

from __future__ import annotations

import typer

from api.cli import demo, engine, eval, index, ingest, keys, match, search, serve, shortlist, show, stats

app = typer.Typer(help="patent-match: bilingual patent supply-demand matching.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
index_app = typer.Typer(help="Build the search indexes from the store.", no_args_is_help=True)
match_app = typer.Typer(help="Licensing matches: demand -> patents, patent -> demands, portfolio -> enterprises.",
                        no_args_is_help=True)
eval_app = typer.Typer(help="Offline evaluation on labeled sets in the BEIR layout.")
keys_app = typer.Typer(help="API keys for the HTTP service's write endpoints.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(match_app, name="match")
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")

app.command()(ingest.ingest)
index_app.command("build")(index.index_build)
app.command()(search.search)
app.command()(show.show)
match_app.command("demand")(match.match_demand_cmd)
match_app.command("patent")(match.match_patent_cmd)
match_app.command("portfolio")(match.match_portfolio_cmd)
app.command()(stats.stats)
eval_app.callback(invoke_without_command=True)(eval.eval_cmd)
eval_app.command("tune")(eval.eval_tune)
eval_app.command("ablation")(eval.eval_ablation)
app.command()(demo.demo)
app.command()(serve.serve)
keys_app.command("create")(keys.keys_create_cmd)
app.command()(shortlist.shortlist)
app.command()(shortlist.push)
app.command()(engine.embed)
