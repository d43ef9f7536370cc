"""The ``pmatch`` command line: ingest, index, embed, search, show, match, shortlist, push, stats, eval, serve, keys,
demo.

Each command lives in its own module of ``api.cli``; this one only assembles them into the typer application.
"""

from __future__ import annotations

import typer

from api.cli import (
                     demo,
                     engine,
                     eval,
                     index,
                     ingest,
                     keys,
                     licence,
                     match,
                     search,
                     serve,
                     shortlist,
                     show,
                     standing,
                     stats,
)

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
standing_app = typer.Typer(help="Standing matches: written records meet the other side once searchable.",
                           no_args_is_help=True)
saved_app = typer.Typer(help="Saved searches whose new results join an enterprise's or holder's feed.",
                        no_args_is_help=True)
app.add_typer(standing_app, name="standing")
app.add_typer(saved_app, name="saved-search")

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
standing_app.command("run")(standing.standing_run)
standing_app.command("status")(standing.standing_status)
app.command()(standing.feed)
saved_app.command("add")(standing.saved_search_add)
saved_app.command("list")(standing.saved_search_list)
saved_app.command("remove")(standing.saved_search_remove)
app.command("licence-request")(licence.licence_request)
app.command()(engine.embed)
