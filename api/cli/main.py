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
from api.cli.options import h

app = typer.Typer(help=h("main.app"), no_args_is_help=True,
                  pretty_exceptions_enable=False)
index_app = typer.Typer(help=h("main.index_app"), no_args_is_help=True)
match_app = typer.Typer(help=h("main.match_app"),
                        no_args_is_help=True)
eval_app = typer.Typer(help=h("main.eval_app"))
keys_app = typer.Typer(help=h("main.keys_app"), no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(match_app, name="match")
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")
standing_app = typer.Typer(help=h("main.standing_app"),
                           no_args_is_help=True)
saved_app = typer.Typer(help=h("main.saved_app"),
                        no_args_is_help=True)
app.add_typer(standing_app, name="standing")
app.add_typer(saved_app, name="saved-search")

app.command(help=h("cmd.ingest.ingest"))(ingest.ingest)
index_app.command("build", help=h("cmd.index.index_build"))(index.index_build)
app.command(help=h("cmd.search.search"))(search.search)
app.command(help=h("cmd.show.show"))(show.show)
match_app.command("demand", help=h("cmd.match.match_demand_cmd"))(match.match_demand_cmd)
match_app.command("patent", help=h("cmd.match.match_patent_cmd"))(match.match_patent_cmd)
match_app.command("portfolio", help=h("cmd.match.match_portfolio_cmd"))(match.match_portfolio_cmd)
app.command(help=h("cmd.stats.stats"))(stats.stats)
eval_app.callback(invoke_without_command=True)(eval.eval_cmd)  # the group's help is main.eval_app
eval_app.command("tune", help=h("cmd.eval.eval_tune"))(eval.eval_tune)
eval_app.command("ablation", help=h("cmd.eval.eval_ablation"))(eval.eval_ablation)
app.command(help=h("cmd.demo.demo"))(demo.demo)
app.command(help=h("cmd.serve.serve"))(serve.serve)
keys_app.command("create", help=h("cmd.keys.keys_create_cmd"))(keys.keys_create_cmd)
app.command(help=h("cmd.shortlist.shortlist"))(shortlist.shortlist)
app.command(help=h("cmd.shortlist.push"))(shortlist.push)
standing_app.command("run", help=h("cmd.standing.standing_run"))(standing.standing_run)
standing_app.command("status", help=h("cmd.standing.standing_status"))(standing.standing_status)
app.command(help=h("cmd.standing.feed"))(standing.feed)
saved_app.command("add", help=h("cmd.standing.saved_search_add"))(standing.saved_search_add)
saved_app.command("list", help=h("cmd.standing.saved_search_list"))(standing.saved_search_list)
saved_app.command("remove", help=h("cmd.standing.saved_search_remove"))(standing.saved_search_remove)
app.command("licence-request", help=h("cmd.licence.licence_request"))(licence.licence_request)
app.command(help=h("cmd.engine.embed"))(engine.embed)
