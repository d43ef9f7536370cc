"""Build the labelled evaluation sets in the BEIR layout from the bundled sample: ``python -m eval.datasets.build``.

Reads only ``data/sample/patents.jsonl.gz`` and the hand-written queries ``eval/datasets/crosslingual/written_*.jsonl``
and writes, under ``--out`` (default ``eval/datasets``)::

    corpus/bundled.jsonl.gz   the whole bundled sample as one BEIR corpus (every Patent field but ``keywords``)
    known_item_zh/            KPPatent keyphrases -> the patent they were written for
    classification/           CN patent titles / USPTO patents -> the documents sharing their IPC/CPC codes
    crosslingual/             queries written in one language -> the patent (other language) they were written from
    README.md                 the table of sets

Each set folder holds ``queries.jsonl``, ``qrels/dev.tsv``, ``qrels/test.tsv``, ``corpus.jsonl.gz`` (a relative
symlink to the bundled corpus, or the set's own file) and ``CARD.md`` (how the labels were made, counts, biases).
The output is deterministic: rows sorted, fixed seeds, gzip with ``mtime=0`` and no file name, no timestamps.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.datasets import cards
from matcher.records import Patent
from matcher.store import dedup_key

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
WRITTEN = ROOT / "eval" / "datasets" / "crosslingual"
WRITTEN_FILES = ("written_en_from_tac.jsonl", "written_en_from_abstracts.jsonl", "written_zh_from_uspto.jsonl")
BUNDLED = "corpus/bundled.jsonl.gz"
BUNDLED_LINK = "../corpus/bundled.jsonl.gz"  # what a set's corpus.jsonl.gz points to, relative to the set folder

# Fixed seeds: changing one changes the sample (and so every number in the cards).
SEED_KNOWN_ITEM = 20_240_601
SEED_CLASS_ZH = 20_240_602
SEED_CLASS_EN = 20_240_603

KNOWN_ITEM_QUERIES = 1_000
KNOWN_ITEM_MIN_PHRASES = 3  # keyphrases of 2+ characters
CLASS_ZH_QUERIES = 300
CLASS_EN_QUERIES = 200
CLASS_MAX_RELEVANT = 100  # a classification query is used only if 1..100 corpus documents are relevant to it
INDEXING_GROUP = 2_000  # CPC groups numbered 2000+ are indexing codes (G06T2207/10016), not classification

Row = dict[str, Any]
Qrels = dict[str, dict[str, int]]
_GROUP = re.compile(r"^[A-H]\d{2}[A-Z](\d+)")


# ---------------------------------------------------------------- reading and writing


def read_jsonl(path: Path) -> list[Row]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [json.loads(line) for line in fh if line.strip()]


def dumps(row: Row) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def jsonl_bytes(rows: Iterable[Row]) -> bytes:
    return "".join(dumps(r) + "\n" for r in rows).encode("utf-8")


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_symlink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    os.symlink(target, path)


def is_dev(query_id: str) -> bool:
    """The fixed split: ~30% of queries are dev, the rest test, decided by the query id alone."""
    return int(hashlib.sha1(query_id.encode("utf-8")).hexdigest(), 16) % 10 < 3


def qrels_tsv(qrels: Qrels, query_ids: Iterable[str]) -> bytes:
    lines = ["query-id\tcorpus-id\tscore"]
    for qid in sorted(query_ids):
        for doc_id, grade in sorted(qrels[qid].items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{qid}\t{doc_id}\t{grade}")
    return ("\n".join(lines) + "\n").encode("utf-8")


# ---------------------------------------------------------------- the bundled corpus

_SKIP = {"id", "title", "abstract", "keywords"}
CORPUS_EXTRA_FIELDS = tuple(name for name in Patent.model_fields if name not in _SKIP)


def corpus_doc(record: Row) -> Row:
    """A sample record as a BEIR document: ``_id``, ``title``, ``text`` = abstract, then the other Patent fields
    under their own names (empty ones left out). ``keywords`` is never copied: the known-item queries are made
    of them."""
    unknown = set(record) - set(Patent.model_fields)
    if unknown:
        raise ValueError(f"{record.get('id')}: fields not in the Patent model: {sorted(unknown)}")
    doc: Row = {"_id": record["id"], "title": record.get("title", ""), "text": record.get("abstract", "")}
    for name in CORPUS_EXTRA_FIELDS:
        value = record.get(name)
        if value is not None and value != "" and value != []:
            doc[name] = value
    return doc


def source_name(record: Row) -> str:
    """Short source label from ``source`` (``kppatent_zh/test_data_TAC.json#12`` -> ``kppatent_tac``)."""
    src = str(record.get("source", "")).split("#")[0]
    if src.startswith("kppatent_zh/test_data_TAC"):
        return "kppatent_tac"
    if src.startswith("kppatent_zh/data_A"):
        return "kppatent_a"
    if src.startswith("cn_ipc_titles/"):
        return "cn_ipc_titles"
    if src.startswith("zhibei_market/"):
        return "zhibei_offers"
    if src.startswith("uspto_nvidia/"):
        return "uspto_nvidia"
    return src.split("/")[0] or "unknown"


# ---------------------------------------------------------------- one labelled set


@dataclass
class LabelledSet:
    name: str
    queries: list[Row]  # sorted by _id
    qrels: Qrels
    corpus: list[Row] | None  # None: the set uses the bundled corpus (symlink)
    facts: dict[str, Any] = field(default_factory=dict)  # set-specific numbers for the card

    def split_ids(self, dev: bool) -> list[str]:
        return sorted(q["_id"] for q in self.queries if q["_id"] in self.qrels and is_dev(q["_id"]) == dev)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"queries": len(self.queries)}
        for split, dev in (("dev", True), ("test", False)):
            ids = self.split_ids(dev)
            grades = Counter(g for qid in ids for g in self.qrels[qid].values())
            sizes = [len(self.qrels[qid]) for qid in ids]
            out[split] = {
                "queries": len(ids),
                "qrels": sum(sizes),
                "grades": dict(sorted(grades.items(), reverse=True)),
                "relevant_per_query": describe(sizes),
            }
        sizes = [len(docs) for docs in self.qrels.values()]
        out["relevant_per_query"] = describe(sizes)
        out["grades"] = dict(sorted(Counter(g for d in self.qrels.values() for g in d.values()).items(), reverse=True))
        return out


def describe(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0, "max": 0}
    return {"min": min(values), "median": float(statistics.median(values)),
            "mean": round(statistics.fmean(values), 1), "max": max(values)}


def numbered(prefix: str, n: int, width: int) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


# ---------------------------------------------------------------- known_item_zh


def keyphrase_query(record: Row) -> list[str] | None:
    phrases = [k for k in record.get("keywords", []) if len(k.strip()) >= 2]
    return phrases if len(phrases) >= KNOWN_ITEM_MIN_PHRASES else None


def build_known_item(records: list[Row], dup_groups: dict[str, list[str]]) -> LabelledSet:
    kp = [r for r in records if source_name(r) in ("kppatent_tac", "kppatent_a") and r.get("keywords")]
    eligible = sorted((r for r in kp if keyphrase_query(r)), key=lambda r: r["id"])
    chosen = sorted(random.Random(SEED_KNOWN_ITEM).sample(eligible, KNOWN_ITEM_QUERIES), key=lambda r: r["id"])
    queries: list[Row] = []
    qrels: Qrels = {}
    verbatim = all_verbatim = dropped_short = 0
    n_phrases: list[int] = []
    twins: list[str] = []
    for qid, rec in zip(numbered("ki-zh-", len(chosen), 4), chosen, strict=True):
        phrases = keyphrase_query(rec) or []
        dropped_short += len(rec["keywords"]) - len(phrases)
        n_phrases.append(len(phrases))
        body = "\n".join(str(rec.get(k, "")) for k in ("title", "abstract", "claims"))
        hits = sum(p in body for p in phrases)
        verbatim += hits
        all_verbatim += hits == len(phrases)
        queries.append({"_id": qid, "text": " ".join(phrases), "lang": "zh", "source": source_name(rec),
                        "n_keyphrases": len(phrases)})
        qrels[qid] = {rec["id"]: 1}
        group = dup_groups[record_key(rec)]
        if len(group) > 1:
            twins.append(f"{rec['id']} = {', '.join(i for i in group if i != rec['id'])}")
    facts = {
        "kp_records": len(kp),
        "kp_by_source": dict(sorted(Counter(source_name(r) for r in kp).items())),
        "eligible": len(eligible),
        "eligible_by_source": dict(sorted(Counter(source_name(r) for r in eligible).items())),
        "chosen_by_source": dict(sorted(Counter(source_name(r) for r in chosen).items())),
        "phrases": describe(n_phrases),
        "phrases_total": sum(n_phrases),
        "dropped_short": dropped_short,
        "verbatim_share": round(verbatim / max(1, sum(n_phrases)), 3),
        "all_verbatim_share": round(all_verbatim / len(chosen), 3),
        "twins": twins,
        "seed": SEED_KNOWN_ITEM,
    }
    return LabelledSet("known_item_zh", queries, qrels, None, facts)


# ---------------------------------------------------------------- classification


def is_indexing(code: str) -> bool:
    m = _GROUP.match(code)
    return m is not None and int(m.group(1)) >= INDEXING_GROUP


def subclasses(codes: Iterable[str]) -> frozenset[str]:
    return frozenset(c[:4] for c in codes)


def full_codes(codes: Iterable[str]) -> frozenset[str]:
    """CPC classification codes at group/subgroup level (``G06F9/3842``); indexing codes left out."""
    return frozenset(c for c in codes if "/" in c and not is_indexing(c))


def grade_zh(query: frozenset[str], doc: frozenset[str]) -> int:
    """A CN title (IPC subclasses only) against a document's subclass set: identical set 2; at least half of
    the union shared (Jaccard >= 0.5) 1; else 0."""
    if doc == query:
        return 2
    shared = len(query & doc)
    return 1 if shared and 2 * shared >= len(query | doc) else 0


def grade_en(main: str, query: frozenset[str], doc: frozenset[str]) -> int:
    """A USPTO patent against a document's CPC codes: has the query's main (first) code 2; shares another
    classification code 1; else 0 (a shared main group or subclass alone is not enough)."""
    if main in doc:
        return 2
    return 1 if query & doc else 0


class CodeIndex:
    """The coded documents of a corpus with inverted lists by subclass and by full CPC code."""

    def __init__(self, docs: Iterable[Row]) -> None:
        self.subs: dict[str, frozenset[str]] = {}
        self.codes: dict[str, frozenset[str]] = {}
        self.by_sub: defaultdict[str, list[str]] = defaultdict(list)
        self.by_code: defaultdict[str, list[str]] = defaultdict(list)
        for d in docs:
            doc_id = d.get("_id") or d["id"]
            codes = d.get("ipc") or []
            if not codes:
                continue
            self.subs[doc_id] = subclasses(codes)
            self.codes[doc_id] = full_codes(codes)
            for s in self.subs[doc_id]:
                self.by_sub[s].append(doc_id)
            for c in self.codes[doc_id]:
                self.by_code[c].append(doc_id)
        # documents grouped by identical subclass set, for counting without visiting every document
        self.set_count: Counter[frozenset[str]] = Counter(self.subs.values())
        self.sets_by_sub: defaultdict[str, set[frozenset[str]]] = defaultdict(set)
        for s_set in self.set_count:
            for s in s_set:
                self.sets_by_sub[s].add(s_set)

    def zh_count(self, query: frozenset[str]) -> int:
        near: set[frozenset[str]] = set().union(*(self.sets_by_sub[s] for s in query))
        return sum(self.set_count[s_set] for s_set in near if grade_zh(query, s_set))

    def any_subclass_count(self, query: frozenset[str]) -> int:
        """Documents sharing at least one subclass with ``query`` (the broad rule this set does not use)."""
        near: set[frozenset[str]] = set().union(*(self.sets_by_sub[s] for s in query))
        return sum(self.set_count[s_set] for s_set in near)

    def zh_grades(self, query: frozenset[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for doc_id in sorted({i for s in query for i in self.by_sub[s]}):
            g = grade_zh(query, self.subs[doc_id])
            if g:
                out[doc_id] = g
        return out

    def en_grades(self, main: str, query: frozenset[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for doc_id in sorted({i for c in query for i in self.by_code[c]}):
            g = grade_en(main, query, self.codes[doc_id])
            if g:
                out[doc_id] = g
        return out


def broad_rules(universe: CodeIndex, zh_pool: list[Row], en_pool: list[Row], by_id: dict[str, Row]) -> dict[str, Any]:
    """Median relevant-set sizes under the broad rules (one shared subclass; shared main group), for the card."""
    memo: dict[frozenset[str], int] = {}

    def any_sub(codes: list[str]) -> int:
        key = subclasses(codes)
        if key not in memo:
            memo[key] = universe.any_subclass_count(key)
        return memo[key] - 1  # not the query itself

    main_groups = Counter(g for codes in universe.codes.values() for g in {c.split("/")[0] for c in codes})
    top = max(universe.by_sub, key=lambda s: (len(universe.by_sub[s]), s))
    top_langs = Counter(by_id[i]["language"] for i in universe.by_sub[top])
    return {
        "zh_any_subclass": statistics.median(any_sub(r["ipc"]) for r in zh_pool),
        "en_any_subclass": statistics.median(any_sub(r["ipc"]) for r in en_pool),
        "en_main_group": statistics.median(main_groups[r["ipc"][0].split("/")[0]] - 1 for r in en_pool),
        "top_subclass": [top, top_langs["zh"], top_langs["en"]],
    }


def build_classification(records: list[Row], dup_groups: dict[str, list[str]]) -> LabelledSet:
    by_id = {r["id"]: r for r in records}
    coded = [r for r in records if r.get("ipc")]
    universe = CodeIndex(coded)
    zh_pool = [r for r in coded if source_name(r) == "cn_ipc_titles" and r.get("title")]
    en_pool = [r for r in coded if r.get("language") == "en" and r.get("title") and r.get("abstract")
               and full_codes(r["ipc"])]

    def twins(rec: Row) -> list[str]:
        return dup_groups[record_key(rec)]

    # how many *other* coded documents each candidate query would have as relevant (its exact duplicates,
    # which leave the corpus with it, do not count)
    zh_sizes: dict[str, int] = {}
    for r in zh_pool:
        q = subclasses(r["ipc"])
        own = sum(1 for i in twins(r) if i in universe.subs and grade_zh(q, universe.subs[i]))
        zh_sizes[r["id"]] = universe.zh_count(q) - own
    en_sizes: dict[str, int] = {}
    for r in en_pool:
        q, main = full_codes(r["ipc"]), r["ipc"][0]
        grades = universe.en_grades(main, q)
        en_sizes[r["id"]] = len(set(grades) - set(twins(r)))

    def eligible(sizes: dict[str, int]) -> list[str]:
        return sorted(i for i, n in sizes.items() if 1 <= n <= CLASS_MAX_RELEVANT)

    zh_ok, en_ok = eligible(zh_sizes), eligible(en_sizes)
    broad = broad_rules(universe, zh_pool, en_pool, by_id)
    zh_chosen = sorted(random.Random(SEED_CLASS_ZH).sample(zh_ok, CLASS_ZH_QUERIES))
    en_chosen = sorted(random.Random(SEED_CLASS_EN).sample(en_ok, CLASS_EN_QUERIES))

    excluded = {i for qid in zh_chosen + en_chosen for i in twins(by_id[qid])}
    corpus = sorted((corpus_doc(r) for r in coded if r["id"] not in excluded), key=lambda d: d["_id"])
    index = CodeIndex(corpus)

    queries: list[Row] = []
    qrels: Qrels = {}
    dropped: list[str] = []
    for lang, chosen in (("zh", zh_chosen), ("en", en_chosen)):
        for qid, doc_id in zip(numbered(f"cls-{lang}-", len(chosen), 3), chosen, strict=True):
            rec = by_id[doc_id]
            if lang == "zh":
                grades = index.zh_grades(subclasses(rec["ipc"]))
                text = rec["title"]
            else:
                grades = index.en_grades(rec["ipc"][0], full_codes(rec["ipc"]))
                text = f"{rec['title']}\n{rec['abstract']}"
            if not grades:  # every relevant document was another query's (left the corpus)
                dropped.append(doc_id)
                continue
            qrels[qid] = grades
            queries.append({"_id": qid, "text": text, "lang": lang, "query_doc": doc_id, "query_codes": rec["ipc"],
                            "n_relevant": len(grades), "n_grade2": sum(g == 2 for g in grades.values())})

    queries.sort(key=lambda q: q["_id"])

    def pool_facts(pool: list[Row], sizes: dict[str, int], ok: list[str], sampled: int) -> dict[str, Any]:
        return {"pool": len(pool), "eligible": len(ok), "none": sum(n == 0 for n in sizes.values()),
                "sampled": sampled,
                "over_cap": sum(n > CLASS_MAX_RELEVANT for n in sizes.values()),
                "pool_sizes": describe(sorted(sizes.values()))}

    def lang_facts(lang: str) -> dict[str, Any]:
        qs = [q for q in queries if q["lang"] == lang]
        grades = Counter(g for q in qs for g in qrels[q["_id"]].values())
        rel_lang = Counter(by_id[d]["language"] for q in qs for d in qrels[q["_id"]])
        lengths = sorted(len(q["text"]) for q in qs)
        titles = {d["_id"]: d["title"] for d in corpus}
        same_title = sum(any(titles[d] == by_id[q["query_doc"]]["title"] for d in qrels[q["_id"]]) for q in qs)
        return {"queries": len(qs), "grades": dict(sorted(grades.items(), reverse=True)),
                "length_p10_p50_p90": [lengths[len(lengths) // 10], lengths[len(lengths) // 2],
                                       lengths[len(lengths) * 9 // 10]] if lengths else [0, 0, 0],
                "same_title": same_title,
                "relevant": describe([len(qrels[q["_id"]]) for q in qs]),
                "grade2": describe([q["n_grade2"] for q in qs]),
                "relevant_language": dict(sorted(rel_lang.items())),
                "queries_with_en_relevant": sum(any(by_id[d]["language"] == "en" for d in qrels[q["_id"]])
                                                for q in qs)}

    def top_share(pool_ids: Iterable[str], chosen_ids: Iterable[str], key: str) -> list[tuple[str, float, float]]:
        def groups(doc_id: str) -> set[str]:
            codes = by_id[doc_id]["ipc"]
            return set(subclasses(codes)) if key == "subclass" else {c.split("/")[0] for c in full_codes(codes)}

        pool_l, chosen_l = list(pool_ids), list(chosen_ids)
        pool_c = Counter(g for i in pool_l for g in groups(i))
        chosen_c = Counter(g for i in chosen_l for g in groups(i))
        return [(g, round(n / len(pool_l), 3), round(chosen_c[g] / max(1, len(chosen_l)), 3))
                for g, n in sorted(pool_c.items(), key=lambda kv: (-kv[1], kv[0]))[:6]]

    kept = {q["query_doc"] for q in queries}
    facts = {
        "zh": {**pool_facts(zh_pool, zh_sizes, zh_ok, len(zh_chosen)), **lang_facts("zh"),
               "top": top_share([r["id"] for r in zh_pool], sorted(kept & set(zh_chosen)), "subclass")},
        "en": {**pool_facts(en_pool, en_sizes, en_ok, len(en_chosen)), **lang_facts("en"),
               "top": top_share([r["id"] for r in en_pool], sorted(kept & set(en_chosen)), "main group")},
        "dropped": dropped,
        "broad": broad,
        "coded": len(coded),
        "coded_by_source": dict(sorted(Counter(source_name(r) for r in coded).items())),
        "uncoded_by_source": dict(sorted(Counter(source_name(r) for r in records if not r.get("ipc")).items())),
        "excluded": len(excluded),
        "excluded_twins": len(excluded) - len(zh_chosen) - len(en_chosen),
        "corpus_by_source": dict(sorted(Counter(source_name(by_id[d["_id"]]) for d in corpus).items())),
        "cap": CLASS_MAX_RELEVANT,
        "seeds": [SEED_CLASS_ZH, SEED_CLASS_EN],
    }
    return LabelledSet("classification", queries, qrels, corpus, facts)


# ---------------------------------------------------------------- crosslingual


def build_crosslingual(records: list[Row], dup_groups: dict[str, list[str]], written: Path) -> LabelledSet:
    by_id = {r["id"]: r for r in records}
    queries: list[Row] = []
    qrels: Qrels = {}
    per_file: dict[str, dict[str, Any]] = {}
    twins: list[str] = []
    for name in WRITTEN_FILES:
        rows = read_jsonl(written / name)
        stem = name.removesuffix(".jsonl")
        targets: Counter[str] = Counter()
        for row in rows:
            qid = row["qid"]
            if qid in qrels:
                raise ValueError(f"{name}: duplicate qid {qid}")
            missing = [d for d in row["relevant"] if d not in by_id]
            if missing or not row["relevant"]:
                raise ValueError(f"{name}: {qid}: relevant ids not in the bundled corpus: {missing}")
            queries.append({"_id": qid, "text": row["text"], "lang": row["lang"], "written_from": stem})
            qrels[qid] = {d: 1 for d in row["relevant"]}
            for d in row["relevant"]:
                targets[f"{source_name(by_id[d])} ({by_id[d]['language']})"] += 1
                group = dup_groups[record_key(by_id[d])]
                if len(group) > 1:
                    twins.append(f"{d} = {', '.join(i for i in group if i != d)}")
        per_file[stem] = {
            "queries": len(rows),
            "lang": dict(sorted(Counter(r["lang"] for r in rows).items())),
            "targets": dict(sorted(targets.items())),
            "dev": sum(is_dev(r["qid"]) for r in rows),
            "test": sum(not is_dev(r["qid"]) for r in rows),
            "read_field": sorted({k for r in rows for k in r if k.startswith("read_")}),
            "words": describe([len(r["text"].split()) if r["lang"] == "en" else len(r["text"]) for r in rows]),
        }
    queries.sort(key=lambda q: q["_id"])
    facts = {"files": per_file, "twins": twins,
             "by_lang": dict(sorted(Counter(q["lang"] for q in queries).items()))}
    return LabelledSet("crosslingual", queries, qrels, None, facts)


# ---------------------------------------------------------------- the whole build


def record_key(record: Row) -> str:
    return dedup_key(record.get("title", ""), record.get("abstract", ""))


def build(out: Path, sample: Path = SAMPLE, written: Path = WRITTEN) -> dict[str, Any]:
    """Write every set under ``out``; returns the numbers printed and used in the cards."""
    records = sorted(read_jsonl(sample / "patents.jsonl.gz"), key=lambda r: r["id"])
    dup_groups: dict[str, list[str]] = defaultdict(list)
    for r in records:
        dup_groups[record_key(r)].append(r["id"])

    bundled = [corpus_doc(r) for r in records]
    bundled_gz = gzip_bytes(jsonl_bytes(bundled))
    write_bytes(out / BUNDLED, bundled_gz)
    by_lang = Counter(d["language"] for d in bundled)
    same_text = sum(len(g) - 1 for g in dup_groups.values())
    corpus_facts = {"docs": len(bundled), "bytes": len(bundled_gz), "by_lang": dict(sorted(by_lang.items())),
                    "by_source": dict(sorted(Counter(source_name(r) for r in records).items())),
                    "same_text": same_text}

    sets = [
        build_known_item(records, dup_groups),
        build_classification(records, dup_groups),
        build_crosslingual(records, dup_groups, written),
    ]
    summary: dict[str, Any] = {"corpus": corpus_facts, "sets": {}}
    for s in sets:
        folder = out / s.name
        if s.corpus is None:
            write_symlink(folder / "corpus.jsonl.gz", BUNDLED_LINK)
            corpus_info = {"docs": corpus_facts["docs"], "bytes": corpus_facts["bytes"], "own": False}
        else:
            data = gzip_bytes(jsonl_bytes(s.corpus))
            write_bytes(folder / "corpus.jsonl.gz", data)
            corpus_info = {"docs": len(s.corpus), "bytes": len(data), "own": True}
        write_bytes(folder / "queries.jsonl", jsonl_bytes(s.queries))
        write_bytes(folder / "qrels" / "dev.tsv", qrels_tsv(s.qrels, s.split_ids(dev=True)))
        write_bytes(folder / "qrels" / "test.tsv", qrels_tsv(s.qrels, s.split_ids(dev=False)))
        info = {**s.summary(), "corpus": corpus_info, "facts": s.facts}
        write_bytes(folder / "CARD.md", cards.render(s.name, info, corpus_facts).encode("utf-8"))
        summary["sets"][s.name] = info
    write_bytes(out / "README.md", cards.readme(summary).encode("utf-8"))
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eval.datasets.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "datasets",
                        help="folder to write the sets into (default: eval/datasets)")
    args = parser.parse_args(argv)
    summary = build(args.out)
    c = summary["corpus"]
    print(f"corpus/bundled.jsonl.gz: {c['docs']} documents, {c['bytes'] / 1e6:.2f} MB")
    for name, info in summary["sets"].items():
        own = f"own corpus {info['corpus']['docs']} docs, {info['corpus']['bytes'] / 1e6:.2f} MB" \
            if info["corpus"]["own"] else "bundled corpus"
        print(f"{name}: {info['queries']} queries (dev {info['dev']['queries']}, test {info['test']['queries']}), "
              f"grades {info['grades']}, {own}")


if __name__ == "__main__":
    main()
