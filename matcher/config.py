"""The ranker's settings, as data: ``matcher/ranker.json`` (shipped defaults), overridden by ``HOME/ranker.json``.

The shipped fusion is the learned ranker (``fusion: learned``, ``matcher/fusion/learned.py``, model
``matcher/ranker_model.json``), fitted by ``pmatch eval tune`` on the dev and train splits (cross-validation table
in ``eval/tune_dev.json``); ``convex`` (the earlier hand-set weight) and ``rrf`` stay selectable. The class
defaults below equal ``ranker.json`` (a test checks it).

The evaluation's tuning command writes ``HOME/ranker.json`` (or a file named by ``PMATCH_RANKER_CONFIG``); the
searcher reads it at start. Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from matcher.settings import engine_settings

DEFAULTS = Path(__file__).with_name("ranker.json")
Mode = Literal["bm25", "dense", "hybrid"]


class RankerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = "hybrid"
    fusion: Literal["rrf", "convex", "learned"] = "learned"
    rrf_k: int = Field(default=60, ge=0)
    convex_weight_bm25: float = Field(default=0.9, ge=0.0, le=1.0, description="BM25's weight; dense gets the rest.")
    dense_model: str = "use-m3"
    title_model: str | None = Field(
        default="e5-small-int8", description="Embeds each record's title for the learned ranker's title channel "
                                             "(``matcher.features.TITLE_CHANNEL``); null: no title vectors (the "
                                             "learned ranker's model fitted without the channel then ranks: "
                                             "``LearnedRanker.without_titles``). Chosen on the dev splits: mean "
                                             "nDCG@10 0.467 -> 0.506.")
    candidates: int = Field(default=100, ge=1, le=10_000, description="Depth each retriever fetches before fusion.")
    dense_text_chars: int = Field(default=512, ge=32, description="Characters of title+abstract+claim embedded.")
    abstain_credit: float = Field(
        default=1.0, ge=0.0, le=1.0, description="How much a document that BM25 cannot see (another language) is "
                                                 "credited for BM25's share: 1 = as if BM25 agreed with dense, 0 = a "
                                                 "zero. Tuned on the dev splits.")
    dense_per_language: bool = Field(
        default=True, description="Fetch dense candidates per document language, so a model that prefers the query's "
                                  "language cannot crowd the other language out of the candidate pool.")
    translate_queries: bool = Field(
        default=True, description="Hybrid search: BM25 runs once per document language with the query rendered in "
                                  "that language (translated by CC-CEDICT when it is another), for the learned "
                                  "fusion, which reads those runs.")
    cohesive_translation: bool = Field(
        default=True, description="Translated queries keep, of each word's dictionary senses, those that co-occur "
                                   "with the other words' senses in the target documents (else the dictionary's "
                                   "first senses). Chosen on the dev splits: cross-lingual nDCG@10 0.359 -> 0.402.")


def load_config(home: Path | None = None) -> RankerConfig:
    data = json.loads(DEFAULTS.read_text("utf-8"))
    override = engine_settings().ranker_config
    path = override or (home / "ranker.json" if home else None)
    if path is not None and path.is_file():
        data.update(json.loads(path.read_text("utf-8")))
    return RankerConfig.model_validate(data)


def save_config(config: RankerConfig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config.model_dump(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
