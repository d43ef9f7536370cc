"""Fit the pair model (``matcher.pair_model``) on judged matchmaking pairs and report it on held-out ones.

    PYTHONPATH=. python eval/pair_fit.py --home .pmatch            # fit, print figures, write matcher/pair_model.json
    PYTHONPATH=. python eval/pair_fit.py --home .pmatch --dry-run  # the figures only

The split is fixed by how the pairs were judged, not chosen here:
- **train**: ``shortlist_pairs`` rounds 1, 2, 3 and 5 (shortlist and push rows of seen demands; rounds 2, 3 and 5
  were judged knowing the version, so they are for fitting only);
- **test**: ``shortlist_pairs`` rounds 4 and 6 (blind, demands never judged before; round 6's "new" rows were
  drawn with this model and no lexical floors) and ``standing_pairs`` round 1 (blind, standing events; its round
  2 was drawn by this model). Nothing of them is used to fit the weights or to choose the floor.

The floor (``min_confidence``) is chosen on the training pairs alone, from 5-fold cross-validated predictions: the
lowest threshold on a 0.05 grid whose kept pairs are at most 10% bad (the issue-14 floor), with at least 20 kept.
Needs the bundled workspace (``pmatch demo``): the pairs name its records.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matcher.pair_model import FEATURES, MODEL_PATH, PairJudge, PairModel
from matcher.records import Demand, Patent
from matcher.store import Store
from matcher.workspace import Workspace

DATASETS = Path(__file__).resolve().parent / "datasets"
TRAIN_ROUNDS = (1, 2, 3, 5)
HELD_OUT_ROUNDS = (4, 6)
GRADES = {"good": 2, "loose": 1, "bad": 0}
MAX_BAD = 0.10
MIN_KEPT = 20
EMBEDDER, TEXT_CHARS, C = "e5-small", 300, 1.0


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def labelled_pairs() -> dict[str, list[dict[str, Any]]]:
    """The judged pairs by split and set: train, test_shortlist_round<N> for each held-out round, test_standing."""
    shortlist = _read(DATASETS / "shortlist_pairs" / "pairs.jsonl")
    return {
        "train": [p for p in shortlist if p["round"] in TRAIN_ROUNDS],
        **{f"test_shortlist_round{r}": [p for p in shortlist if p["round"] == r] for r in HELD_OUT_ROUNDS},
        # round 1 only: standing round 2's events were drawn by this model, so they are not held out from it
        "test_standing": [p for p in _read(DATASETS / "standing_pairs" / "pairs.jsonl") if p.get("round", 1) == 1],
    }


def features(judge: PairJudge, store: Store, pairs: list[dict[str, Any]]) -> np.ndarray:
    demands = store.get_many("demands", sorted({p["demand_id"] for p in pairs}))
    patents = store.get_many("patents", sorted({p["patent_id"] for p in pairs}))
    missing = [(p["demand_id"], p["patent_id"]) for p in pairs
               if not isinstance(demands.get(p["demand_id"]), Demand) or not isinstance(patents.get(p["patent_id"]),
                                                                                        Patent)]
    if missing:
        raise SystemExit(f"the workspace lacks the records of {len(missing)} judged pairs, e.g. {missing[:3]}: "
                         "run it on the bundled workspace (pmatch demo)")
    return judge.features([(demands[p["demand_id"]], patents[p["patent_id"]]) for p in pairs])  # type: ignore[misc]


def _fit(x: np.ndarray, good: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    m = LogisticRegression(C=C, max_iter=5000).fit((x - mean) / scale, good)
    return mean, scale, m.coef_[0], float(m.intercept_[0])


def _model(mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float, floor: float) -> PairModel:
    return PairModel(EMBEDDER, TEXT_CHARS, list(FEATURES), [round(float(v), 6) for v in mean],
                     [round(float(v), 6) for v in scale], [round(float(v), 6) for v in coef], round(intercept, 6),
                     floor)


def _cv_confidence(x: np.ndarray, good: np.ndarray, folds: int = 5) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(x))
    for fit_idx, held in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, good):
        out[held] = _model(*_fit(x[fit_idx], good[fit_idx]), 0.5).confidence(x[held])
    return out


def choose_floor(confidence: np.ndarray, grades: np.ndarray) -> float:
    """The lowest 0.05-grid threshold whose kept pairs are at most ``MAX_BAD`` bad, with ``MIN_KEPT`` kept."""
    for t in np.round(np.arange(0.05, 1.0, 0.05), 2):
        kept = confidence >= t
        if kept.sum() >= MIN_KEPT and (grades[kept] == 0).mean() <= MAX_BAD:
            return float(t)
    raise SystemExit("no threshold keeps enough pairs at the bad-share floor")


def _auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(positive, score)), 3) if 0 < positive.sum() < len(positive) else None


def figures(confidence: np.ndarray, grades: np.ndarray, floor: float) -> dict[str, Any]:
    kept = confidence >= floor

    def counts(mask: np.ndarray) -> dict[str, Any]:
        c = Counter(int(g) for g in grades[mask])
        n = int(mask.sum())
        return {"pairs": n, "good": c[2], "loose": c[1], "bad": c[0],
                "good_share": round(c[2] / n, 3) if n else None, "bad_share": round(c[0] / n, 3) if n else None}

    return {"all": counts(np.ones(len(grades), bool)), "kept": counts(kept),
            "auc_good": _auc(confidence, grades == 2), "auc_not_bad": _auc(confidence, grades >= 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=Path(".pmatch"))
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    ap.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    args = ap.parse_args()
    sets = labelled_pairs()
    placeholder = PairModel(EMBEDDER, TEXT_CHARS, list(FEATURES), [0.0] * 3, [1.0] * 3, [0.0] * 3, 0.0, 0.5)
    judge = PairJudge(placeholder)
    with Store(Workspace(args.home).store_path) as store:
        x = {name: features(judge, store, pairs) for name, pairs in sets.items()}
    grades = {name: np.array([GRADES[p["label"]] for p in pairs]) for name, pairs in sets.items()}
    good = grades["train"] == 2
    floor = choose_floor(_cv_confidence(x["train"], good), grades["train"])
    model = _model(*_fit(x["train"], good), floor)
    report: dict[str, Any] = {"min_confidence": floor, "train_cv": figures(_cv_confidence(x["train"], good),
                                                                          grades["train"], floor)}
    tests = [name for name in sets if name.startswith("test_")]
    for name in tests:
        report[name] = figures(model.confidence(x[name]), grades[name], floor)
    report["test_all"] = figures(np.concatenate([model.confidence(x[n]) for n in tests]),
                                 np.concatenate([grades[n] for n in tests]), floor)
    model.fitted_on = {"train": f"shortlist_pairs rounds {list(TRAIN_ROUNDS)}", "pairs": len(sets["train"]),
                       "labels": dict(Counter(p["label"] for p in sets["train"])), "C": C,
                       "floor_rule": f"lowest 0.05 step with <= {MAX_BAD:.0%} bad of >= {MIN_KEPT} kept (5-fold CV)"}
    model.held_out = {k: report[k] for k in (*tests, "test_all")}
    print(json.dumps(report, ensure_ascii=False, indent=1))
    if not args.dry_run:
        model.save(args.out)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
