"""``pmatch eval``, ``eval tune``, ``eval ablation``: offline evaluation on labeled sets in the BEIR layout.

The only module of ``api`` that imports ``eval``, and only inside the commands, so other commands never load it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli.common import MODES, check_lang, check_mode, console, fail
from api.cli.options import HomeOpt, LangOpt, h
from api.cli.progress import StageProgress
from matcher.config import load_config
from matcher.i18n import text
from matcher.workspace import Workspace


def _load_sets(data: list[Path], split: str | None, lang: str) -> list[Any]:
    from eval.beir import DatasetError, load_dataset

    try:
        return [load_dataset(d, split) for d in data]
    except DatasetError as exc:
        raise fail(str(exc), 1, lang) from None


def eval_cmd(
    ctx: typer.Context,
    data: Annotated[Path | None, typer.Option(help=h("eval.eval_cmd.data"))] = None,
    split: Annotated[str | None, typer.Option(help=h("eval.eval_cmd.split"))] = None,
    mode: Annotated[str | None, typer.Option(help=h("eval.eval_cmd.mode"))]
    = None,
    model: Annotated[str | None, typer.Option(help=h("eval.eval_cmd.model"))] = None,
    fusion: Annotated[str | None, typer.Option(help=h("eval.eval_cmd.fusion"))] = None,
    weight: Annotated[float | None, typer.Option(help=h("eval.eval_cmd.weight"))] = None,
    rrf_k: Annotated[int | None, typer.Option(help=h("eval.eval_cmd.rrf_k"))] = None,
    per_language: Annotated[bool | None, typer.Option("--per-language/--global-pool",
                                                      help=h("eval.eval_cmd.per_language"))] = None,
    out: Annotated[Path | None, typer.Option(help=h("eval.eval_cmd.out"))] = None,
    run_out: Annotated[Path | None, typer.Option(help=h("eval.eval_cmd.run_out"))] = None,
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Evaluate one configuration on one set (no flags: exactly what `pmatch search` serves)."""
    if ctx.invoked_subcommand:
        return
    check_lang(lang)
    if data is None:
        raise fail(text("cli.error.eval_data", lang), 2, lang)
    from eval.beir import DatasetError
    from eval.evaluate import evaluate_config
    from eval.runner import EvalConfig, Workspaces
    from eval.trec import write_run

    check_mode(mode, lang, (*MODES, "rank-bm25"))
    (dataset,) = _load_sets([data], split, lang)
    config = EvalConfig(mode=mode, model=model, fusion=fusion, weight=weight, rrf_k=rrf_k, per_language=per_language)
    workspaces = Workspaces()
    try:
        with StageProgress(lang) as bar:
            result, run = evaluate_config(dataset, config, workspaces, home or Workspace(None).home,
                                          bar.tick)
    except (DatasetError, ValueError) as exc:
        raise fail(str(exc), 1, lang) from None
    finally:
        workspaces.close()
    table = Table(title=text("cli.eval.title", lang, name=dataset.name, split=dataset.split,
                             count=result["queries"], label=result["label"]), title_justify="left")
    for name in result["metrics"]:
        table.add_column(name, justify="right")
    table.add_row(*(f"{v:.4f}" for v in result["metrics"].values()))
    console.print(table)
    if out:
        out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        console.print(text("cli.wrote", lang, path=out))
    if run_out:
        write_run(run, run_out, result["label"])
        console.print(text("cli.wrote", lang, path=run_out))


def eval_tune(
    data: Annotated[list[Path], typer.Option(help=h("eval.eval_tune.data"))],
    model_out: Annotated[Path | None, typer.Option(help=h("eval.eval_tune.model_out"))] = None,
    config_out: Annotated[Path | None, typer.Option(help=h("eval.eval_tune.config_out"))]
    = None,
    report: Annotated[Path | None, typer.Option(help=h("eval.eval_tune.report"))] = None,
    cache: Annotated[Path | None, typer.Option(help=h("eval.eval_tune.cache"))] = None,
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Fit the learned ranker on the dev splits and train splits (test splits are never read); write it and select it
    in the config."""
    from eval.runner import Workspaces
    from eval.tune import collect_features, fit_ranker, tuned_config_path
    from matcher.config import save_config

    check_lang(lang)
    ws = Workspace(home)
    # every set's dev split, and its train split where it has one (the needs set); test splits are never read
    datasets = _load_sets(data, "dev", lang) + _load_sets(
        [d for d in data if (d / "qrels" / "train.tsv").is_file()], "train", lang)
    workspaces = Workspaces()
    base = load_config(ws.home)
    try:
        with StageProgress(lang) as bar:
            queries = collect_features(datasets, workspaces, base, cache, bar.tick)
            model, result = fit_ranker(queries, bar.tick)
    except ValueError as exc:
        raise fail(str(exc), 1, lang) from None
    finally:
        workspaces.close()
    table = Table(title=text("cli.eval.tune_title", lang), title_justify="left")
    names = list(dict.fromkeys(d.name for d in datasets))
    for col in (text("cli.eval.model", lang), *names, text("cli.eval.mean", lang)):
        table.add_column(col)
    for name, row in result["cv"].items():
        if isinstance(row, dict):
            table.add_row(name, *(f"{row.get(n, float('nan')):.4f}" for n in names), f"{row['mean']:.4f}")
    console.print(table)
    target = model_out or ws.home / "ranker_model.json"
    model.save(target)
    config_path = config_out or tuned_config_path(ws.home)
    save_config(base.model_copy(update={"mode": "hybrid", "fusion": "learned", "translate_queries": True}),
                config_path)
    tuned = text("cli.eval.tuned", lang, model=target, chosen=result["chosen"], config=config_path)
    console.print(f"[green]{tuned}[/]")
    if report:
        report.write_text(json.dumps(result, indent=1), encoding="utf-8")


def eval_ablation(
    data: Annotated[list[Path], typer.Option(help=h("eval.eval_ablation.data"))],
    split: Annotated[str, typer.Option(help=h("eval.eval_ablation.split"))] = "test",
    markdown_out: Annotated[Path, typer.Option(help=h("eval.eval_ablation.markdown_out"))] = Path("eval/RESULTS.md"),
    json_out: Annotated[Path, typer.Option(help=h("eval.eval_ablation.json_out"))] = Path("eval/results.json"),
    extra_model: Annotated[list[str], typer.Option(help=h("eval.eval_ablation.extra_model"))] = [],  # noqa: B006
    dense_model: Annotated[list[str], typer.Option(help=h("eval.eval_ablation.dense_model"))] = [],  # noqa: B006
    lang: LangOpt = "zh",
    home: HomeOpt = None,
) -> None:
    """Every set x every ranker (bm25, bm25 translated, dense per model, hybrid rrf, hybrid convex, hybrid learned)."""
    import shlex
    import sys

    from eval.ablation import DENSE_MODELS, markdown, run_ablation
    from eval.runner import Workspaces

    check_lang(lang)
    ws = Workspace(home)
    datasets = _load_sets(data, split, lang)
    workspaces = Workspaces()
    try:
        with StageProgress(lang) as bar:
            result = run_ablation(datasets, workspaces, ws.home, bar.tick, tuple(extra_model),
                                  tuple(dense_model) or DENSE_MODELS)
    finally:
        workspaces.close()
    command = "pmatch " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    markdown_out.write_text(markdown(result, command), encoding="utf-8")
    json_out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    console.print(markdown(result, command), highlight=False)
    console.print(text("cli.eval.wrote_two", lang, first=markdown_out, second=json_out))
