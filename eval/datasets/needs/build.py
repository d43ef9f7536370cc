"""Assemble the judged needs set (BEIR layout) from the raw files beside this one; formats in FORMAT.md.

    python -m eval.datasets.needs.build            # writes queries.jsonl, qrels/{train,dev,test}.tsv, CARD.md
    python -m eval.datasets.needs.build --check    # validates only, writes nothing

Reads every `queries_<L>.jsonl`, `pool_<L>_blind.jsonl`, `judgments_<L>.jsonl` (and, for the card's analysis,
`pool_<L>.jsonl`). Refuses (`file:line: field: reason`) a malformed row, a duplicate id, a seed or candidate not in
the bundled corpus, a query without a pool, and a pooled pair without exactly one judgment. Judged zeros are kept
in the qrels (judged non-relevant, not unknown); a query with no candidate graded 1 or 2 stays in queries.jsonl
but gets no qrels lines (no metric is defined for it). Split by a stable hash of the query id (`split_of`).
Deterministic: the same raw files give byte-identical outputs.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "corpus" / "bundled.jsonl.gz"
SPLITS = ("train", "dev", "test")
LANGS = ("zh", "en")
QID = re.compile(r"^need-(zh|en)-\d{3}$")
RETRIEVERS = ("bm25", "dense", "hybrid", "bm25_translated")


class NeedsError(ValueError):
    """A malformed raw file: the message says file:line: field: reason."""


def split_of(qid: str) -> str:
    """dev if sha1 % 10 < 3 (the rule every set here uses), train if 3..5, test if 6..9."""
    h = int(hashlib.sha1(qid.encode()).hexdigest(), 16) % 10
    return "dev" if h < 3 else "train" if h < 6 else "test"


def rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for no, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise NeedsError(f"{path.name}:{no}: line: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise NeedsError(f"{path.name}:{no}: line: not a JSON object")
        out.append((no, obj))
    return out


def corpus_ids() -> dict[str, str]:
    """Bundled corpus id -> document language."""
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        return {d["_id"]: d.get("language", "") for d in map(json.loads, f)}


def load(here: Path = HERE) -> dict[str, Any]:
    """Validate the raw files and return queries, grades and pools (blind and, where present, with found_by)."""
    ids = corpus_ids()
    queries: dict[str, dict[str, Any]] = {}
    for path in sorted(here.glob("queries_*.jsonl")):
        tag = path.stem.removeprefix("queries_")
        for no, q in rows(path):
            where = f"{path.name}:{no}"
            qid = q.get("_id")
            if not isinstance(qid, str) or not QID.match(qid) or qid.split("-")[1] != tag:
                raise NeedsError(f"{where}: _id: {qid!r} is not need-{tag}-NNN")
            if qid in queries:
                raise NeedsError(f"{where}: _id: {qid} appears twice")
            if not isinstance(q.get("text"), str) or not q["text"].strip():
                raise NeedsError(f"{where}: text: empty")
            if q.get("lang") != tag:
                raise NeedsError(f"{where}: lang: {q.get('lang')!r}, the file holds {tag!r} queries")
            if q.get("answer_lang") not in LANGS:
                raise NeedsError(f"{where}: answer_lang: {q.get('answer_lang')!r} is not zh or en")
            if q.get("seed") not in ids:
                raise NeedsError(f"{where}: seed: {q.get('seed')!r} is not in the bundled corpus")
            if ids[q["seed"]] != q["answer_lang"]:
                raise NeedsError(f"{where}: answer_lang: {q['answer_lang']} but the seed is {ids[q['seed']]}")
            queries[qid] = {"_id": qid, "text": q["text"], "lang": tag, "answer_lang": q["answer_lang"],
                            "seed": q["seed"]}
    pools: dict[str, list[str]] = {}
    for path in sorted(here.glob("pool_*_blind.jsonl")):
        for no, p in rows(path):
            qid = p.get("_id")
            if qid not in queries:
                raise NeedsError(f"{path.name}:{no}: _id: {qid!r} is not in any queries_*.jsonl")
            if qid in pools:
                raise NeedsError(f"{path.name}:{no}: _id: {qid} pooled twice")
            if p.get("text") != queries[qid]["text"]:
                raise NeedsError(f"{path.name}:{no}: text: differs from the query's text (re-pool after editing)")
            cands = [c.get("id") for c in p.get("candidates", [])]
            for c in cands:
                if c not in ids:
                    raise NeedsError(f"{path.name}:{no}: candidates: {c!r} is not in the bundled corpus")
            if any(k in c for c in p["candidates"] for k in ("found_by", "seed", "retriever")):
                raise NeedsError(f"{path.name}:{no}: candidates: the blind pool says who found a candidate")
            pools[qid] = cands
    missing_pool = sorted(set(queries) - set(pools))
    if missing_pool:
        raise NeedsError(f"{len(missing_pool)} queries have no pool, e.g. {missing_pool[:3]}")
    grades: dict[str, dict[str, int]] = {}
    for path in sorted(here.glob("judgments_*.jsonl")):
        for no, j in rows(path):
            where = f"{path.name}:{no}"
            qid, doc, grade = j.get("query_id"), j.get("corpus_id"), j.get("grade")
            if qid not in pools:
                raise NeedsError(f"{where}: query_id: {qid!r} is not a pooled query")
            if doc not in pools[qid]:
                raise NeedsError(f"{where}: corpus_id: {doc!r} was not pooled for {qid}")
            if grade not in (0, 1, 2) or isinstance(grade, bool):
                raise NeedsError(f"{where}: grade: {grade!r} is not 0, 1 or 2")
            if doc in grades.setdefault(qid, {}):
                raise NeedsError(f"{where}: corpus_id: {qid} / {doc} judged twice")
            grades[qid][doc] = grade
    unjudged = [(q, d) for q, ds in sorted(pools.items()) for d in ds if d not in grades.get(q, {})]
    if unjudged:
        raise NeedsError(f"{len(unjudged)} pooled pairs have no judgment, e.g. {unjudged[:3]}")
    found_by: dict[str, dict[str, list[str]]] = {}
    for path in sorted(here.glob("pool_*.jsonl")):
        if path.stem.endswith("_blind"):
            continue
        for _, p in rows(path):
            found_by[p["_id"]] = {c["id"]: c.get("found_by", []) for c in p.get("candidates", [])}
    return {"queries": queries, "pools": pools, "grades": grades, "found_by": found_by, "corpus_size": len(ids)}


def half(q: dict[str, Any]) -> str:
    return "same-language" if q["lang"] == q["answer_lang"] else "cross-language"


def stats(data: dict[str, Any]) -> dict[str, Any]:
    queries, grades, pools, found_by = data["queries"], data["grades"], data["pools"], data["found_by"]
    with_pos = {q for q, g in grades.items() if max(g.values()) > 0}
    info: dict[str, Any] = {"queries": len(queries), "pairs": sum(len(p) for p in pools.values()),
                            "grades": Counter(g for d in grades.values() for g in d.values()),
                            "with_relevant": len(with_pos),
                            "with_grade_2": sum(1 for g in grades.values() if max(g.values()) == 2)}
    info["without_relevant"] = sorted(set(queries) - with_pos)
    table: dict[tuple[str, str, str], int] = Counter()
    for qid, q in queries.items():
        table[(q["lang"], q["answer_lang"], split_of(qid))] += 1
    info["table"] = table
    info["splits"] = {}
    for split in SPLITS:
        qs = [q for q in sorted(with_pos) if split_of(q) == split]
        rel = [sum(1 for g in grades[q].values() if g > 0) for q in qs]
        info["splits"][split] = {
            "queries": len(qs), "qrels": sum(len(grades[q]) for q in qs),
            "grades": Counter(g for q in qs for g in grades[q].values()),
            "relevant": {"median": statistics.median(rel), "mean": round(statistics.mean(rel), 1),
                         "min": min(rel), "max": max(rel)} if rel else None,
            "halves": Counter(half(queries[q]) for q in qs)}
    sizes = [len(p) for p in pools.values()]
    info["pool"] = {"median": statistics.median(sizes), "mean": round(statistics.mean(sizes), 1),
                    "min": min(sizes), "max": max(sizes)}
    info["lengths"] = {}
    for lang in LANGS:
        ls = [len(q["text"]) if lang == "zh" else len(q["text"].split()) for q in queries.values()
              if q["lang"] == lang]
        if ls:
            info["lengths"][lang] = {"median": statistics.median(ls), "min": min(ls), "max": max(ls)}
    # Per retriever (from the pools with found_by): per half, the share of queries whose top DEPTH it pooled
    # had a grade-2 document, and of all grade-2 documents, the share it found.
    per: dict[str, dict[str, list[int]]] = {}
    seed_grades: Counter[int] = Counter()
    seed_retrieved = 0
    for qid, fb in sorted(found_by.items()):
        if qid not in grades:
            continue
        seed_grades.update(grades[qid][d] for d, who in fb.items() if "seed" in who)
        seed_retrieved += any("seed" in who and len(who) > 1 for who in fb.values())
        h = half(queries[qid])
        twos = {d for d, g in grades[qid].items() if g == 2}
        for r in RETRIEVERS:
            mine = {d for d, who in fb.items() if any(w.split("@")[0] == r for w in who)}
            if not any(any(w.split("@")[0] == r for w in who) for who in fb.values()):
                continue
            row = per.setdefault(r, {}).setdefault(h, [0, 0, 0, 0])
            row[0] += 1
            row[1] += bool(mine & twos)
            row[2] += len(mine & twos)
            row[3] += len(twos)
    info["retrievers"] = per
    info["seed_grades"] = seed_grades
    info["seed_retrieved"] = seed_retrieved
    info["with_found_by"] = sum(1 for q in found_by if q in grades)
    return info


def fmt(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.1f}".removesuffix(".0")


def grade_list(g: Counter[int]) -> str:
    return ", ".join(f"grade {k}: {g[k]}" for k in (2, 1, 0) if g.get(k)) or "none"


def card(info: dict[str, Any], data: dict[str, Any], here: Path) -> str:
    t = info["table"]
    lines = ["# needs: company technology needs, judged over the bundled corpus, in both languages", "",
             "**Task**: given a technology need phrased the way a company posts it on a technology market (its "
             "problem and product, vague, in Chinese or English), rank the bundled patents and offers that "
             "answer it. Half of each query language is answered in the same language, half in the other.",
             f"**Queries**: {info['queries']} ({info['with_relevant']} with at least one relevant document; "
             f"{info['with_grade_2']} with a grade-2 one). **Judged pairs**: {fmt(info['pairs'])} "
             f"({grade_list(info['grades'])}).",
             f"**Corpus**: `corpus.jsonl.gz` -> `../corpus/bundled.jsonl.gz` (symlink), {fmt(data['corpus_size'])} "
             "documents, Chinese and English together.", "",
             "| written in | answered in | half | train | dev | test | all |", "|---|---|---|---|---|---|---|"]
    for lang in LANGS:
        for ans in LANGS:
            row = [t.get((lang, ans, s), 0) for s in SPLITS]
            if sum(row):
                h = "same-language" if lang == ans else "cross-language"
                lines.append(f"| {lang} | {ans} | {h} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    lines += ["", "Evaluated queries (with a relevant document) per split; qrels hold every judged pair of "
              "those queries, zeros included:", "",
              "| split | queries | same-language / cross-language | qrels lines | grades "
              "| relevant (grade >= 1) per query |",
              "|---|---|---|---|---|---|"]
    for s in SPLITS:
        x = info["splits"][s]
        r = x["relevant"]
        spread = f"median {fmt(r['median'])}, mean {fmt(r['mean'])}, min {r['min']}, max {r['max']}" if r else "-"
        lines.append(f"| {s} | {x['queries']} | {x['halves'].get('same-language', 0)} / "
                     f"{x['halves'].get('cross-language', 0)} | {x['qrels']} | {grade_list(x['grades'])} | {spread} |")
    if info["without_relevant"]:
        lines += ["", "No candidate judged relevant (kept in queries.jsonl, no qrels): "
                  + ", ".join(f"`{q}`" for q in info["without_relevant"]) + "."]
    lengths = "; ".join(f"{lang}: median {fmt(v['median'])}, min {v['min']}, max {v['max']} "
                        f"{'characters' if lang == 'zh' else 'words'}" for lang, v in info["lengths"].items())
    notes = sorted(p.name for p in here.glob("NOTES_*.md"))
    lines += ["", "## How the queries were written", "",
              "Each labeller drew seed documents at random with a fixed seed (the Chinese-written half with "
              "`make_pool.py seeds`, the English-written half with its own script and seed, see its notes): "
              "bundled documents of the answer language with an abstract of at least 80 characters, so title-only "
              "records are never seeds, and none that is already a `crosslingual/` target. The labeller read the "
              "seed's title and abstract and wrote the need a company with that problem would post: its product "
              "and trouble, in its own words, without copying the title; some long and specific, some one line. "
              "A seed the writer could not turn into a need was skipped (listed in the notes). "
              f"Query length: {lengths}.",
              "",
              "Per-half notes by the labellers: " + (", ".join(f"[`{n}`]({n})" for n in notes) if notes else
                                                     "none yet") + ".",
              "", "## How the pool was built", "",
              f"`make_pool.py pool`: per query, the union of the seed and the top 5 of each retriever over all "
              f"bundled documents (no legal-status filter) in a workspace built by `pmatch demo`: BM25, dense "
              f"(USE-m3), the served hybrid, and BM25 on the query translated into the other language "
              f"(`indexes.translate.translate`, keeping the terms the BM25 index can match). Pool size per "
              f"query: median {fmt(info['pool']['median'])}, "
              f"min {info['pool']['min']}, max {info['pool']['max']}. The judge reads `pool_<L>_blind.jsonl` "
              "(sorted by id; nothing says which retriever found a candidate or which is the seed); "
              "`pool_<L>.jsonl` keeps `found_by` for the analysis below.", ""]
    per = info["retrievers"]
    if per:
        lines += [f"Who found the grade-2 documents (from the {info['with_found_by']} queries with `found_by`): "
                  "per retriever and half, queries whose top 5 held a grade-2 document, and the share of all "
                  "grade-2 documents it pooled.", "",
                  "| retriever | half | queries | top 5 holds a grade 2 | grade-2 docs found / all |",
                  "|---|---|---|---|---|"]
        for r in RETRIEVERS:
            for h in ("same-language", "cross-language"):
                if h in per.get(r, {}):
                    q, hit, found, total = per[r][h]
                    lines.append(f"| {r} | {h} | {q} | {hit} ({100 * hit / q:.0f}%) | {found} / {total} |")
        if "bm25_translated" not in per:
            lines += ["", "**BM25 on the translated query is not in these pools**: `indexes/translate.py` did not "
                      "exist on main when they were built. Documents only that retriever would surface were "
                      "never judged; their absence biases the set against it."]
        lines += ["", f"The seed, judged blind like every candidate: {grade_list(info['seed_grades'])}; some "
                  f"retriever had it in its top 5 for {info['seed_retrieved']} of {info['with_found_by']} queries."]
    lines += ["", "## How the pool was judged", "",
              "Every pooled candidate graded 0/1/2 by reading the need and the candidate's title and abstract "
              "(the first 600 characters), per `../demands/JUDGING.md`, with these adaptations to needs:",
              "- The demand's *title and description* are one need text here; grade 2 = a tech-transfer officer "
              "would forward it to that company as answering (most of) the need; 1 = same product or field and "
              "solves part of it or a neighbouring problem; 0 = shares words, not the problem.",
              "- Title-only candidates (the `cn_ipc_titles` records have no abstract) get 1 only if the title "
              "itself names the need's product *and* its problem; a title naming only the product is 0. Each "
              "half's notes give examples of where its labeller drew the 1/2 and 0/1 lines.",
              "- Exact-text twins (same title and abstract under two ids) get the same grade.",
              "- The seed is pooled and judged like any other candidate; it is not relevant by construction.",
              "", "## Biases: read before trusting a number", "",
              "- **Writer = judge, and knew the seed.** Each half was written and judged by one labeller who had "
              "read the seed; the pool hides which candidate is the seed, but the judge recognises it. Expect "
              "seeds to be graded 2 more readily than an independent judge would, and grades elsewhere to lean "
              "towards the writer's reading of a vague need.",
              "- **Seeded needs.** Needs were written from one document each, so each has at least one close "
              "answer; real needs (see `../demands/`) are vaguer and have none more often.",
              "- **Pool depth 5 per retriever.** A relevant document no retriever put in its top 5 is unjudged and "
              "counts as non-relevant: recall is overestimated, and a new retriever that surfaces unjudged "
              "documents is underrated. Judge its new top-10 documents before claiming a win.",
              "- **Topic worlds differ by answer language.** English documents are all NVIDIA patents (computing, "
              "graphics, autonomous driving), so needs answered in English are about computing whichever "
              "language they are written in, while needs answered in Chinese cover every field of the Chinese "
              "sample (machinery, chemistry, agriculture, medicine, software). Report the halves separately.",
              "- **Two labellers, one per query language**, each judging only their own half: grades are "
              "consistent within a half, less so across halves (no pair was judged twice).",
              f"- **Small.** With {info['splits']['test']['queries']} evaluated test queries, a metric near 0.5 has "
              f"a 95% interval of about +/-{0.98 / max(info['splits']['test']['queries'], 1) ** 0.5:.2f}; compare "
              "systems with the harness's paired test, and each half on its own.",
              "", "## Files", "",
              "`queries.jsonl` (`_id`, `text`, `lang`, `answer_lang`, `seed`), `qrels/train.tsv`, `qrels/dev.tsv`, "
              "`qrels/test.tsv` (`query-id<TAB>corpus-id<TAB>score`, header line, integer grades), "
              "`corpus.jsonl.gz`. Raw files (formats in `FORMAT.md`): `queries_<L>.jsonl`, `pool_<L>_blind.jsonl`, "
              "`pool_<L>.jsonl`, `judgments_<L>.jsonl`, `NOTES_<L>.md`.",
              "Split by query id: `h = int(sha1(_id).hexdigest(), 16) % 10`; **dev** if `h < 3` (the rule of every "
              "set here), **train** if `3 <= h < 6`, **test** if `h >= 6`. Fit and tune on train and dev, report test.",
              "", "Rebuild: `python -m eval.datasets.needs.build` (deterministic; this card is written by the "
              "same run).", ""]
    return "\n".join(lines)


def build(here: Path = HERE, write: bool = True) -> dict[str, Any]:
    data = load(here)
    info = stats(data)
    if write:
        with (here / "queries.jsonl").open("w", encoding="utf-8") as out:
            for qid in sorted(data["queries"]):
                out.write(json.dumps(data["queries"][qid], ensure_ascii=False) + "\n")
        (here / "qrels").mkdir(exist_ok=True)
        lines: dict[str, list[str]] = {s: [] for s in SPLITS}
        for qid in sorted(data["grades"]):
            g = data["grades"][qid]
            if max(g.values()) == 0:
                continue
            lines[split_of(qid)] += [f"{qid}\t{doc}\t{grade}" for doc, grade in sorted(g.items())]
        for split, ls in lines.items():
            (here / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
                line + "\n" for line in ls), "utf-8")
        corpus = here / "corpus.jsonl.gz"
        if not corpus.is_symlink():
            corpus.symlink_to("../corpus/bundled.jsonl.gz")
        (here / "CARD.md").write_text(card(info, data, here), "utf-8")
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="validate the raw files, write nothing")
    args = parser.parse_args()
    try:
        info = build(write=not args.check)
    except NeedsError as exc:
        raise SystemExit(f"needs: {exc}") from None
    print(json.dumps({"queries": info["queries"], "pairs": info["pairs"],
                      "grades": dict(sorted(info["grades"].items())), "with_relevant": info["with_relevant"],
                      "evaluated": {s: info["splits"][s]["queries"] for s in SPLITS}}))


if __name__ == "__main__":
    main()
