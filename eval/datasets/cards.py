"""The dataset cards (``<set>/CARD.md``) and ``README.md``, written by ``build.py`` with the numbers of the build.

Every number in a card comes from the build that wrote it, so a rebuild never leaves a stale count behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Info = dict[str, Any]


def n(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}".removesuffix(".0")


def pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def grades(g: dict[int, int]) -> str:
    return ", ".join(f"grade {k}: {n(v)}" for k, v in sorted(g.items(), reverse=True)) or "none"


def spread(d: dict[str, float]) -> str:
    return f"median {n(d['median'])}, mean {n(d['mean'])}, min {n(d['min'])}, max {n(d['max'])}"


def counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {n(v)}" for k, v in d.items())


def split_table(info: Info) -> str:
    rows = ["| split | queries | qrels lines | grades | relevant docs per query |", "|---|---|---|---|---|"]
    for split in ("dev", "test"):
        s = info[split]
        rows.append(f"| {split} | {n(s['queries'])} | {n(s['qrels'])} | {grades(s['grades'])} | "
                    f"{spread(s['relevant_per_query'])} |")
    return "\n".join(rows)


def corpus_line(info: Info) -> str:
    c = info["corpus"]
    if c["own"]:
        return f"`corpus.jsonl.gz` (this set's own file): {n(c['docs'])} documents, {mb(c['bytes'])}."
    return (f"`corpus.jsonl.gz` -> `../corpus/bundled.jsonl.gz` (symlink): the whole bundled sample, "
            f"{n(c['docs'])} documents, {mb(c['bytes'])}.")


JACCARD_EXAMPLES = "`{A}` vs `{A, X}`, `{A, B}` vs `{A}`, `{A, B, C}` vs `{A, B, D}`"

FILES = """Files: `queries.jsonl` (all queries: `_id`, `text` and the extra fields below), `qrels/dev.tsv` and
`qrels/test.tsv` (`query-id<TAB>corpus-id<TAB>score`, with a header line; integer grades), `corpus.jsonl.gz`.
Split: a query is **dev** if `int(sha1(query_id).hexdigest(), 16) % 10 < 3` (~30%), else **test**; each qrels file
lists only its own queries. Tune on dev, report on test."""

REBUILD = """Rebuild: `python -m eval.datasets.build` (deterministic: the same `data/sample` and written queries give
byte-identical files; this card is written by the same run)."""


# ---------------------------------------------------------------- known_item_zh


def known_item(info: Info, corpus: Info) -> str:
    f = info["facts"]
    twins = "\n".join(f"  - {t}" for t in f["twins"]) or "  - none"
    return f"""# known_item_zh: Chinese keyphrase queries, one known item each

**Task**: given the human keyphrases of a Chinese patent, find that patent in the mixed bundled corpus.
**Queries**: {n(info['queries'])} (dev {n(info['dev']['queries'])}, test {n(info['test']['queries'])}), all Chinese.
**Relevant documents per query**: exactly 1 (grade 1).
**Corpus**: {corpus_line(info)}

## How the labels were made

1. Source: the KPPatent-ZH records of the bundled sample, the only records with human keyphrases
   (`keywords`): {n(f['kp_records'])} ({counts(f['kp_by_source'])}). `kppatent_tac` records are CNIPA invention
   applications with title, abstract and claims; `kppatent_a` records are abstracts only (no title).
2. Query text = the record's keyphrases **in their published order**, joined by single spaces, after dropping
   keyphrases of one character (`冷`, `管` ...). Only records left with at least 3 keyphrases are used:
   {n(f['eligible'])} ({counts(f['eligible_by_source'])}).
3. {n(info['queries'])} of them were drawn with `random.Random({f['seed']}).sample` over the eligible records sorted
   by id ({counts(f['chosen_by_source'])}); query ids `ki-zh-0001`... follow the target ids' order.
4. The one relevant document is the record the keyphrases belong to (grade 1). Nothing else was judged.
5. The corpus has no `keywords` field: a system can find the target only through its title, abstract, claims and
   other metadata.

Query size: {spread(f['phrases'])} keyphrases ({n(f['phrases_total'])} in all; {n(f['dropped_short'])}
one-character keyphrases were dropped from these records). Extra query fields: `lang` (`zh`), `source`
(`kppatent_tac` / `kppatent_a`), `n_keyphrases`.

{split_table(info)}

## Biases: read before trusting a number

- **Known-item search rewards exact vocabulary.** {pct(f['verbatim_share'])} of the query keyphrases occur
  verbatim in their target's title + abstract + claims; only {pct(f['all_verbatim_share'])} of the queries have
  every keyphrase in the text. The rest are *absent* keyphrases (KPPatent is a keyphrase-generation benchmark),
  inventor names (`罗奕兵 刘志红`), fragments and OCR slips (`墨烯`, `丁笨`). Lexical ranking (BM25) is
  favoured: the keyphrases that are present are exact terms of the target. A semantic ranker gets little credit
  for finding similar patents, because only one document counts.
- **One relevant document per query under-counts.** Other patents or Zhibei offers on the same subject are
  scored as misses; absolute Recall@k / MRR are lower bounds. Use the set to compare systems, not as an
  absolute quality figure.
- **The jieba user dictionary is built from these same keyphrases.** `indexes/resources/userdict_patent_zh.txt`
  was made by `data/prepare.py` from the keyphrases of *all* KPPatent records (see `data/NOTICE.md`), these
  {n(info['queries'])} targets included, and tuned so that each keyphrase comes out as a token: in-sample, the
  share of the dictionary's keyphrases that occur in their record's text and come out of `cut_for_search` as a
  token rises from 75% to 93%. Any system using the
  project's Chinese analyzer is tested in-sample here; a comparison **with vs without the user dictionary on
  this set is biased in favour of the dictionary**. Measure that on `crosslingual`, `classification` or the
  judged demands instead.
- **Keyword-list queries**, not sentences: they resemble a search box, not an SME's description of a need.
  Dense encoders trained on sentences are at a disadvantage that real demands would not show.
- **Target mix**: {counts(f['chosen_by_source'])}. TAC targets are long (claims), A targets short (abstract only,
  no title), so length normalisation matters.
- **Exact duplicates.** These targets share normalised title + abstract with another record in the corpus:
{twins}
  The engine stores such a pair once (the other id becomes an alias, and the harness resolves the qrels through
  aliases), so it scores correctly; a generic BEIR tool counts the twin as a miss.

{FILES}

{REBUILD}
"""


# ---------------------------------------------------------------- classification


def classification(info: Info, corpus: Info) -> str:
    f = info["facts"]
    zh, en, b = f["zh"], f["en"], f["broad"]

    def bias_rows(rows: list[list[Any]]) -> str:
        return "\n".join(f"| {g} | {pct(p)} | {pct(q)} |" for g, p, q in rows)

    def pool_row(label: str, d: Info) -> str:
        return (f"| {label} | {n(d['pool'])} | {n(d['none'])} | {n(d['over_cap'])} | {n(d['eligible'])} | "
                f"{spread(d['pool_sizes'])} |")

    dropped = ", ".join(f["dropped"]) or "none"
    return f"""# classification: documents sharing a query document's IPC/CPC codes

**Task**: given a patent (a Chinese title, or an English title + abstract), rank the corpus documents of the same
technical classification first.
**Queries**: {n(info['queries'])} (dev {n(info['dev']['queries'])}, test {n(info['test']['queries'])}):
{n(zh['queries'])} Chinese (`cls-zh-*`), {n(en['queries'])} English (`cls-en-*`).
**Relevant documents per query**: {spread(info['relevant_per_query'])}; graded 2 / 1, never more than
{n(f['cap'])}.
**Corpus**: {corpus_line(info)}

## What the data has

- **Chinese titles** (`cn_ipc_titles`, {n(zh['pool'])} records): a title and *every* IPC subclass of the patent
  (`H01M`, `B01D|C02F`), nothing finer, listed alphabetically, so the main subclass is unknown.
- **USPTO patents** (`uspto_nvidia`, {n(en['pool'])} with title, abstract and a classification code): CPC codes at
  group/subgroup level (`G06F9/3842`), main code first (`cpc_sequence` order). Groups numbered 2000+
  (`G06T2207/10016`, `G09G2360/...`) are CPC *indexing* codes (tags), ignored below.
- Every other record has no code ({counts(f['uncoded_by_source'])}) and cannot be labelled.

## How the labels were made

Chinese title queries: the document's subclass set (a CN title: its subclasses; a USPTO patent: the subclasses of
all its CPC codes) is compared with the query's:

| grade | rule |
|---|---|
| 2 | identical subclass set |
| 1 | not identical, but at least half of the union shared (Jaccard >= 0.5): {JACCARD_EXAMPLES} |

English USPTO queries (text = title, newline, abstract):

| grade | rule |
|---|---|
| 2 | the document has the query's main (first) CPC code |
| 1 | the document shares another classification code (group/subgroup, indexing codes ignored) |

Why not "one shared subclass = 1" and "shared main group = 2": measured on this corpus, a Chinese title shares at
least one subclass with a median of {n(b['zh_any_subclass'])} other documents ({b['top_subclass'][0]} alone is on
{n(b['top_subclass'][1])} Chinese and {n(b['top_subclass'][2])} English documents), and a USPTO patent shares its main
code's main group (`G06F9` for `G06F9/3842`) with a median of {n(b['en_main_group'])} and a subclass with
{n(b['en_any_subclass'])} (the USPTO part is one company's GPU portfolio: nearly all of it is G06F/G06T). Such sets
mean "the same broad field", not a retrieval target. The finer rules above keep the relevant sets to documents
that really share the classification; a shared subclass or main group alone counts as not relevant.

English queries can only have English (USPTO) relevant documents: CN titles carry subclasses only, which the
English rule does not use. Chinese queries can have USPTO documents as relevant (same subclass set across
languages): {n(zh['relevant_language'].get('en', 0))} of their {n(sum(zh['grades'].values()))} judgments, in
{n(zh['queries_with_en_relevant'])} of {n(zh['queries'])} queries.

**Cap (which queries are used).** For each candidate query the relevant documents were counted among all *other*
coded documents (its exact-text twins excluded). Only candidates with **1 to {n(f['cap'])}** relevant documents
were eligible:

| | candidates | 0 relevant | more than {n(f['cap'])} | eligible | relevant per candidate (before the cap) |
|---|---|---|---|---|---|
{pool_row("Chinese titles", zh)}
{pool_row("USPTO", en)}

{n(zh['sampled'])} Chinese and {n(en['sampled'])} English queries were drawn from the eligible ones with
`random.Random(seed).sample` (seeds {f['seeds'][0]}, {f['seeds'][1]}) over ids in sorted order. The query
documents and their exact-text twins then left the corpus, and the grades were computed against what remains.
Queries whose relevant documents were all other query documents were dropped: {dropped}.

**What Recall@100 means here**: every query has at most {n(f['cap'])} relevant documents, so Recall@100 is a true
recall (a perfect ranking scores 1.0): the share of all same-classification documents in the top 100. Recall@10
cannot reach 1.0 for queries with more than 10 relevant documents (most of them): for top-of-list quality use
nDCG@10, which uses the grades.

| | queries | judgments | relevant per query | grade-2 per query |
|---|---|---|---|---|
| Chinese | {n(zh['queries'])} | {grades(zh['grades'])} | {spread(zh['relevant'])} | {spread(zh['grade2'])} |
| English | {n(en['queries'])} | {grades(en['grades'])} | {spread(en['relevant'])} | {spread(en['grade2'])} |

{split_table(info)}

Extra query fields: `lang`, `query_doc` (the bundled id of the query document; it is *not* in this corpus),
`query_codes` (its codes), `n_relevant`, `n_grade2`.

## Corpus: why this set has its own, smaller file

The query documents must not be in the corpus (each would be its own perfect match), so the set needs its own
file. It holds only the **coded** documents, {n(f['coded'])} ({counts(f['coded_by_source'])}), minus the
{n(f['excluded'])} query documents and exact-text twins ({n(f['excluded_twins'])} twins, US continuations with
the same title and abstract): {n(info['corpus']['docs'])} documents ({counts(f['corpus_by_source'])}), same fields as
the bundled corpus. The uncoded KPPatent, Zhibei and code-less USPTO records were left out on purpose: nothing can
label them, so in a mixed corpus every on-topic uncoded document a system found would be scored as a miss; leaving
them out also keeps this second copy at {mb(info['corpus']['bytes'])} instead of ~4 MB. The price: this corpus has
no long Chinese documents (the Chinese side is titles only) and no technology offers.

## Biases: read before trusting a number

- **A code is not relevance.** Examiners assign codes for claimed subject matter; two patents in one subgroup can
  solve different problems, and two that solve the same problem can sit in different classes. Nobody read these
  pairs.
- **The cap skews the topics.** Crowded classes rarely have 100 or fewer relevant documents, so they are
  under-represented; the set measures retrieval in small and mid-sized classification neighbourhoods.
  Share of candidates vs share of queries having the code:

| Chinese: subclass | candidates | queries |
|---|---|---|
{bias_rows(zh['top'])}

| USPTO: main group | candidates | queries |
|---|---|---|
{bias_rows(en['top'])}

- **Short Chinese side**: Chinese queries and Chinese documents are titles (query length: 10% up to
  {zh['length_p10_p50_p90'][0]}, median {zh['length_p10_p50_p90'][1]}, 90% up to {zh['length_p10_p50_p90'][2]}
  characters) with templated wording (`一种...装置及方法`); generic words match across classes, and a class
  must be told from a few words.
- **Long English queries from one portfolio**: a whole abstract (median {n(en['length_p10_p50_p90'][1])}
  characters) against the patents of one company, which share boilerplate. Patent families whose abstracts differ
  slightly (not exact twins) stay in the corpus with the same codes: in {n(en['same_title'])} of
  {n(en['queries'])} English queries a relevant document even has the query's exact title. Easy hits for any
  ranker.
- **Unequal halves**: English queries only have English relevant documents; Chinese queries mostly Chinese ones.

{FILES}

{REBUILD}
"""


# ---------------------------------------------------------------- crosslingual

_HOW_WRITTEN = {
    "written_en_from_tac": (
        "English, written by reading a Chinese KPPatent TAC patent (the Chinese title read is kept in the source "
        "file as `read_title_zh`) and phrasing what it solves as a company's need, in the "
        "company's words (\"we run a VoIP service and get fraudulent calls...; want...\"), not as a translation of "
        "the title. Target: that patent."
    ),
    "written_en_from_abstracts": (
        "English, written the same way from a KPPatent abstract-only record (`KPZH-A-*`, no title: the need is "
        "phrased from the abstract alone). Target: that record."
    ),
    "written_zh_from_uspto": (
        "Chinese, written by reading an English NVIDIA USPTO patent (title and abstract; the title read is kept as "
        "`read_title_en`) and phrasing its problem as a Chinese company's need (\"我们的多GPU分布式训练集群里...，"
        "希望...\"). Target: that patent."
    ),
}


def crosslingual(info: Info, corpus: Info) -> str:
    f = info["facts"]
    file_rows = []
    for stem, d in f["files"].items():
        unit = "words" if "en" in d["lang"] else "characters"
        file_rows.append(f"| `{stem}.jsonl` | {counts(d['lang'])} | {counts(d['targets'])} | {n(d['dev'])} | "
                         f"{n(d['test'])} | {spread(d['words'])} {unit} |")
    how = "\n".join(f"- `{stem}.jsonl` ({n(f['files'][stem]['queries'])}): {text}"
                    for stem, text in _HOW_WRITTEN.items() if stem in f["files"])
    en_q = f["by_lang"].get("en", 0)
    zh_q = f["by_lang"].get("zh", 0)
    twins = "\n".join(f"  - {t}" for t in f["twins"]) or "  - none"
    return f"""# crosslingual: a need written in one language, the patent in the other

**Task**: given a technology need written in English (Chinese), find the Chinese (English) patent it was written
from, in the **mixed-language** bundled corpus.
**Queries**: {n(info['queries'])} (dev {n(info['dev']['queries'])}, test {n(info['test']['queries'])}):
{n(en_q)} English -> Chinese patent, {n(zh_q)} Chinese -> English patent.
**Relevant documents per query**: exactly 1 (grade 1).
**Corpus**: {corpus_line(info)} Chinese and English documents together ({counts(corpus['by_lang'])}).

## How the queries were written

Hand-written for this project, one need per patent; the source lines are kept unchanged beside this card
(`written_*.jsonl`: `qid`, `text`, `lang`, `relevant`, the title read, and a one-line English `note` on what the
patent does).

{how}

This build copies `qid` to `_id`, `text`, `lang`, and adds `written_from` (the file); the qrels give the
`relevant` id grade 1. The notes and titles read are not copied into `queries.jsonl`.

| file | query language | target (source, language) | dev | test | query length |
|---|---|---|---|---|---|
{chr(10).join(file_rows)}

{split_table(info)}

## Biases: read before trusting a number

- **One relevant document per query.** Any other document that would answer the need (another NVIDIA patent of
  the same family, a Chinese offer on the same process) is scored as a miss, so Recall@k and MRR are lower
  bounds. The Chinese -> English direction is hit hardest: the NVIDIA portfolio has many close patents per topic.
  These targets also have exact-text twins (same normalised title + abstract) in the corpus:
{twins}
  The engine stores each such group once and resolves the qrels through aliases, so it scores them correctly; a
  generic BEIR tool counts a twin ranked first as a miss.
- **Written by someone who had just read the target.** Although phrased as a need, the queries paraphrase the
  target's abstract concept by concept; real demands are vaguer and mix several needs. Scores are optimistic.
- **Mixed corpus.** A query competes with the {n(corpus['by_lang'].get('en', 0))} English and
  {n(corpus['by_lang'].get('zh', 0))} Chinese documents; documents in the query's own language are distractors a
  monolingual lexical ranker prefers. Purely lexical systems can only match through shared Latin tokens in
  Chinese text (`VoIP`, `HDR`, `GPU`, chemical formulas), so this set mostly measures the dense / cross-lingual
  side of a system.
- **Two different topic worlds**: English queries target Chinese patents of all fields (chemistry, machinery,
  telecoms...); Chinese queries target GPU and computing patents only. Report the two directions separately
  (`lang` field) when they differ.
- **Small**: with {n(info['test']['queries'])} test queries, a 0-1 metric near 0.5 has a 95% interval of about
  +/-0.1; compare systems with the harness's paired significance test, not by eye.

{FILES}

{REBUILD}
"""


RENDERERS: dict[str, Callable[[Info, Info], str]] = {
    "known_item_zh": known_item,
    "classification": classification,
    "crosslingual": crosslingual,
}


def render(name: str, info: Info, corpus: Info) -> str:
    return RENDERERS[name](info, corpus)


# ---------------------------------------------------------------- README

_HOW = {
    "known_item_zh": "automatic: a KPPatent patent's human keyphrases -> that patent",
    "classification": "automatic: shared IPC subclass set (zh titles) / CPC codes (USPTO), capped at 100 relevant",
    "crosslingual": "hand-written needs, each from reading one patent in the other language -> that patent",
}


def readme(summary: Info) -> str:
    c = summary["corpus"]
    rows = []
    for name, info in summary["sets"].items():
        rel = info["relevant_per_query"]
        rel_s = "1" if rel["max"] == 1 else f"{n(rel['min'])}-{n(rel['max'])} (median {n(rel['median'])}), graded"
        corpus_s = (f"own: {n(info['corpus']['docs'])} ({mb(info['corpus']['bytes'])})" if info["corpus"]["own"]
                    else f"bundled: {n(info['corpus']['docs'])}")
        rows.append(f"| [`{name}/`]({name}/CARD.md) | {n(info['dev']['queries'])} / {n(info['test']['queries'])} | "
                    f"{rel_s} | {corpus_s} | {_HOW[name]} |")
    table = "\n".join(rows)
    return f"""# Evaluation sets

Labelled sets in the [BEIR](https://github.com/beir-cellar/beir) layout, for `eval/` (the harness reads any such
folder). Every set has a `CARD.md` saying how its labels were made and what biases them: read it before quoting a
number.

| set | queries dev / test | relevant docs per query | corpus (documents) | how labelled |
|---|---|---|---|---|
{table}

The judged demand set, `demands/` (real Zhibei enterprise demands, candidates pooled from several rankers and
graded 0/1/2 by reading them, see `demands/JUDGING.md`), is built from human judgments by its own script,
`demands/build.py`, not by the build below; it uses the same bundled corpus. So is the judged needs set,
`needs/` (300 company needs written for this project, 150 in Chinese and 150 in English, each half answered half
in its own language and half in the other; pooled from four retrievers including BM25 on the translated query and
graded 0/1/2 by reading, split train/dev/test by id hash, see [`needs/CARD.md`](needs/CARD.md)), built by
`needs/build.py`.

## Layout

```
corpus/bundled.jsonl.gz      the whole bundled sample as one corpus ({n(c['docs'])} documents, {mb(c['bytes'])})
<set>/queries.jsonl          {{"_id", "text", "lang", ...}}, all queries of the set
<set>/qrels/dev.tsv          query-id <TAB> corpus-id <TAB> score (header line, integer grades), dev queries only
<set>/qrels/test.tsv         the same for the test queries
<set>/corpus.jsonl.gz        symlink to ../corpus/bundled.jsonl.gz, or the set's own corpus
<set>/CARD.md                how the labels were made, counts, biases
```

`corpus/bundled.jsonl.gz` is `data/sample/patents.jsonl.gz` as BEIR documents, sorted by id: `_id`, `title`,
`text` (= the abstract), then every other `Patent` field under its own name (`claims`, `ipc`, `language`,
`applicants`, `applicant_type`, `legal_status`, dates, `price`, `maturity`, `cooperation_modes`, `kind`,
`industry`, `tech_area`, `source`), empty ones left out. **`keywords` is never included**: the known-item
queries are made of them. By language: {counts(c['by_lang'])}; by source: {counts(c['by_source'])}.
{n(c['same_text'])} documents share their normalised title + abstract with another one (mostly US continuations);
the engine stores each such group once and the harness maps qrels ids through the aliases.

Split: a query is **dev** if `int(sha1(query_id).hexdigest(), 16) % 10 < 3` (~30%), else **test**. Tune on dev,
report on test.

## Rebuilding

```
python -m eval.datasets.build                # writes corpus/, known_item_zh/, classification/, crosslingual/, README.md
python -m eval.datasets.build --out DIR      # somewhere else (the tests rebuild into a temporary folder)
```

The build reads only `data/sample/patents.jsonl.gz` and `crosslingual/written_*.jsonl`. It is deterministic
(fixed seeds, sorted rows, gzip with `mtime=0`): the same inputs give byte-identical files, cards and this README
included, which `tests/test_datasets.py` checks.
"""
