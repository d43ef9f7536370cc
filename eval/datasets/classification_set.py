"""The ``classification`` set: CN patent titles and USPTO patents as queries, graded by the IPC/CPC codes the
documents share with them (indexing codes left out), with the broad-code rules and the facts its card reports."""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from eval.datasets.labelled import (
    LabelledSet,
    Qrels,
    Row,
    corpus_doc,
    describe,
    numbered,
    record_key,
    source_name,
)

# Fixed seeds: changing one changes the sample (and so every number in the cards).
SEED_CLASS_ZH = 20_240_602
SEED_CLASS_EN = 20_240_603

CLASS_ZH_QUERIES = 300
CLASS_EN_QUERIES = 200
CLASS_MAX_RELEVANT = 100  # a classification query is used only if 1..100 corpus documents are relevant to it
INDEXING_GROUP = 2_000  # CPC groups numbered 2000+ are indexing codes (G06T2207/10016), not classification
_GROUP = re.compile(r"^[A-H]\d{2}[A-Z](\d+)")


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


