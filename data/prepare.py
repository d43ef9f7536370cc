"""Convert the real source data (``../shared/data``) into the bundled sample in ``data/sample``.

Run from the repository root::

    python data/prepare.py                      # --shared ../shared/data --out data/sample
    python data/prepare.py --shared DIR --out DIR --userdict FILE

Writes, deterministically (same input -> byte-identical output):

- ``patents.jsonl.gz``  every ``matcher.records.Patent``: KPPatent TAC, KPPatent A, CN IPC titles,
  Zhibei technology offers, USPTO NVIDIA grants;
- ``demands.jsonl.gz``  every ``matcher.records.Demand``: Zhibei technology demands;
- ``prepare_report.json``  counts per source (read / written / duplicates / merges), fields filled, kinds,
  input and output checksums;
- ``LICENSES/<source>.txt``  the licence of each source, copied next to the data;
- ``indexes/resources/userdict_patent_zh.txt`` (``--userdict``)  the jieba user dictionary built from the
  KPPatent human keyphrases.

Both JSONL files hold one JSON object per line, sorted by ``id`` (code-point order), each validated with
``Patent.model_validate`` / ``Demand.model_validate``; unknown fields are left out (never invented).
``data/NOTICE.md`` documents every source and conversion rule.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import logging
import re
import shutil
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `python data/prepare.py` puts data/ first on the path, not the repo
    sys.path.insert(0, str(REPO_ROOT))

from matcher.derive import derive  # noqa: E402
from matcher.records import Demand, Patent, is_valid_code, normalize_code  # noqa: E402
from matcher.texts import CJK  # noqa: E402

# ---------------------------------------------------------------------------------------------------------
# Sources, in processing order. The order decides which copy of an exact duplicate is kept (the first).
# ---------------------------------------------------------------------------------------------------------
KP_TAC = "kppatent_zh/test_data_TAC.json"
KP_A = "kppatent_zh/data_A.json"
CN_IPC = "cn_ipc_titles/oof_predictions.csv"
ZB_OFFERS = tuple(f"zhibei_market/technical_achievements_data_source_part_{p}.json" for p in (1, 2, 3))
US_PATENT = "uspto_nvidia/nvidia_patent.csv"
US_ABSTRACT = "uspto_nvidia/nvidia_patent_abstract.csv"
US_CPC = "uspto_nvidia/nvidia_cpc.csv"
US_ASSIGNEE = "uspto_nvidia/nvidia_assignee.csv"
ZB_DEMANDS = "zhibei_market/technical_requirements_data_source_part_1.json"

# report name -> input files (a record's ``source`` is ``<one of these files>#<row>``)
SOURCES: dict[str, tuple[str, ...]] = {
    "kppatent_tac": (KP_TAC,),
    "kppatent_a": (KP_A,),
    "cn_ipc_titles": (CN_IPC,),
    "zhibei_offers": ZB_OFFERS,
    "uspto_nvidia": (US_PATENT, US_ABSTRACT, US_CPC, US_ASSIGNEE),
    "zhibei_demands": (ZB_DEMANDS,),
}
SOURCE_FILE = {  # report name -> the files named in the records' ``source`` field
    "kppatent_tac": (KP_TAC,),
    "kppatent_a": (KP_A,),
    "cn_ipc_titles": (CN_IPC,),
    "zhibei_offers": ZB_OFFERS,
    "uspto_nvidia": (US_PATENT,),
    "zhibei_demands": (ZB_DEMANDS,),
}

# Licence files copied to <out>/LICENSES/ (target name -> source path); uspto_nvidia ships none (see below).
LICENSE_FILES = {
    "kppatent_zh.txt": "kppatent_zh/LICENSE",
    "zhibei_market.txt": "zhibei_market/REPO_LICENSE.txt",
    "cn_ipc_titles.txt": "cn_ipc_titles/LICENSE",
    "cn_ipc_titles.DATA_NOTICE.md": "cn_ipc_titles/DATA_NOTICE.md",
}
USPTO_LICENSE = """\
uspto_nvidia: US granted patents assigned to NVIDIA, PatentsView tables
(github Qin717/nvidia_analytics, data_cleaned/: nvidia_patent.csv, nvidia_patent_abstract.csv,
nvidia_cpc.csv, nvidia_assignee.csv; nvidia_inventor.csv is not used).

- Patent text (titles, abstracts) and bibliographic data published by the United States Patent and
  Trademark Office are in the public domain in the United States (17 U.S.C. 105).
- The PatentsView data tables (patent, abstract, CPC, assignee disambiguation) are released by
  PatentsView (USPTO Office of the Chief Economist) under the Creative Commons Attribution 4.0
  International licence (CC BY 4.0): https://creativecommons.org/licenses/by/4.0/
  Attribution: "Source: PatentsView (www.patentsview.org), U.S. Patent and Trademark Office."
- The source repository ships no licence file of its own; this note was written for patent-match.

Changes made by patent-match: tables joined on patent_id, reduced to the fields of matcher.records.Patent
(see data/NOTICE.md and data/prepare.py).
"""

PUBNO = re.compile(r"CN\d+[A-Z]\d?")
_CN_ID = re.compile(r"^CN\d+[A-Z]\d?$")
_US_ID = re.compile(r"^US[A-Z]{0,2}\d+[A-Z]\d?$")
_TAC_INPUT = re.compile(r"^标题：(?P<title>.*?)\n摘要：(?P<abstract>.*?)\n权利声明：(?P<claims>.*)$", re.S)
# PDF page headers that the KPPatent text extraction left in the text: "CN113914863A权利要求书2/3页" starts a
# claims page, "CN113914863A说明书1/4页" starts the description (after the last claim).
_PAGE_MARKER = re.compile(r"CN\d+[A-Z]\d?(?=权利要求书|说明书)")
_DESCRIPTION_START = re.compile(r"CN\d+[A-Z]\d?(?=说明书)")
_CLAIMS_PAGE = re.compile(r"CN\d+[A-Z]\d?权利要求书\d+/\d+页")
_TRAILING_PUBNO = re.compile(r"CN\d+[A-Z]\d?\s*$")
_WS = re.compile(r"\s+")
_ISO_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")

# Zhibei offers: cooperationMethod concatenates these values without separators (every value seen in the data).
OFFER_COOPERATION_VOCAB = ("完全转让", "许可转让", "技术入股", "合作生产", "其他")
# PatentsView assignee_type (2-9; 12-19 are the same with "part interest"): organisations and people.
US_ASSIGNEE_TYPE: dict[int, str | None] = {
    1: None,  # unassigned
    2: "company",  # US company or corporation
    3: "company",  # foreign company or corporation
    4: "individual",  # US individual
    5: "individual",  # foreign individual
    6: None,  # US federal government
    7: None,  # foreign government
    8: None,  # US county government
    9: None,  # US state government
}
_INSTITUTE = re.compile(r"institute|laborator|research cent|研究院|研究所", re.I)
_UNIVERSITY = re.compile(r"universit|college|大学|学院", re.I)


# ---------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------
def norm_ws(text: str) -> str:
    return _WS.sub(" ", text).strip()


def unquote(text: str) -> str:
    """Strip surrounding whitespace and one pair of wrapping ASCII double quotes (a scraping artifact)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"' and '"' not in text[1:-1]:
        text = text[1:-1].strip()
    return text


def split_keywords(output: str) -> list[str]:
    """KPPatent ``output``: a comma-separated keyphrase list -> stripped, non-empty, first occurrence kept."""
    out: list[str] = []
    for part in output.split(","):
        word = part.strip()
        if word and word not in out:
            out.append(word)
    return out


def split_by_vocab(value: str, vocab: Iterable[str]) -> list[str]:
    """Split a value that concatenates vocabulary items with no separator ("完全转让许可转让" -> 2 items)."""
    items = sorted(vocab, key=len, reverse=True)
    out: list[str] = []
    rest = value.strip()
    while rest:
        for item in items:
            if rest.startswith(item):
                if item not in out:
                    out.append(item)
                rest = rest[len(item) :].lstrip()
                break
        else:
            raise ValueError(f"cooperation mode {value!r}: cannot split {rest!r} with the known vocabulary")
    return out


def clean_tac(raw_abstract: str, raw_claims: str) -> tuple[str, str]:
    """Abstract and claims of a KPPatent TAC record, with the PDF page artifacts removed.

    The extraction sometimes runs the claims (and even the description) into the abstract: everything from
    the first page header in the abstract belongs to the claims, which it precedes. The claims end where the
    description starts (``CN…说明书1/N页``); claims-page headers inside the claims are dropped.
    """
    marker = _PAGE_MARKER.search(raw_abstract)
    cut = marker.start() if marker else len(raw_abstract)
    abstract, overflow = raw_abstract[:cut], raw_abstract[cut:]
    claims = overflow + raw_claims
    description = _DESCRIPTION_START.search(claims)
    if description:
        claims = claims[: description.start()]
    claims = _CLAIMS_PAGE.sub("", claims)
    claims = _TRAILING_PUBNO.sub("", claims)
    return abstract.strip(), claims.strip()


def parse_date(value: str) -> date | None:
    match = _ISO_DATE.match(value.strip())
    return date.fromisoformat(match.group(1)) if match else None


def compact(record: Patent | Demand) -> dict[str, Any]:
    """JSON-ready dict without unknown fields (None, "" and [] are the schema's "unknown")."""
    return {k: v for k, v in record.model_dump(mode="json").items() if v not in (None, "", [], {})}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_json(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array")
    return data


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------------------
@dataclass
class SourceStats:
    read: int = 0
    written: int = 0
    duplicates_dropped: int = 0
    same_text_kept: int = 0  # records with their own publication number whose text repeats an earlier record
    merged_into_existing: int = 0
    dropped_no_title: int = 0
    notes: dict[str, int] = field(default_factory=dict)


@dataclass
class Collector:
    """Validates records, drops exact duplicates (first occurrence wins) and keeps per-source statistics."""

    records: dict[str, Patent | Demand] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # id -> report source name
    seen_text: dict[tuple[str, str], str] = field(default_factory=dict)  # normalized (title, text) -> first id
    stats: dict[str, SourceStats] = field(default_factory=lambda: defaultdict(SourceStats))
    duplicates: list[dict[str, str]] = field(default_factory=list)

    def add(self, source: str, record: Patent | Demand, *, has_publication_number: bool) -> None:
        stats = self.stats[source]
        if isinstance(record, Patent):  # what the id, numbers and names imply: the same code as ingest
            record = derive(record)
        if record.id in self.records:
            raise ValueError(f"duplicate id {record.id!r} ({source} and {self.origin[record.id]})")
        text = record.abstract if isinstance(record, Patent) else record.description
        key = (norm_ws(record.title), norm_ws(text))
        first = self.seen_text.get(key)
        if first is not None:
            if not has_publication_number:
                stats.duplicates_dropped += 1
                self.duplicates.append({"dropped": record.id, "kept": first, "source": record.source or ""})
                return
            # A distinct publication (continuation, divisional, same-titled patent of another applicant) is a
            # different legal document: kept, and counted.
            stats.same_text_kept += 1
        else:
            self.seen_text[key] = record.id
        self.records[record.id] = record
        self.origin[record.id] = source
        stats.written += 1


def convert_kppatent(shared: Path, col: Collector) -> list[str]:
    """Both KPPatent files; returns every keyphrase seen (for the jieba user dictionary)."""
    keyphrases: list[str] = []
    stats = col.stats["kppatent_tac"]
    for i, row in enumerate(read_json(shared / KP_TAC)):
        stats.read += 1
        match = _TAC_INPUT.match(row["input"])
        if match is None:
            raise ValueError(f"{KP_TAC}#{i}: input is not 标题/摘要/权利声明")
        numbers = PUBNO.findall(row["input"])
        record_id = numbers[-1] if numbers else f"KPZH-TAC-{i:04d}"
        abstract, claims = clean_tac(match.group("abstract"), match.group("claims"))
        keywords = split_keywords(row["output"])
        keyphrases.extend(keywords)
        patent = Patent.model_validate(
            {
                "id": record_id,
                "title": match.group("title").strip(),
                "abstract": abstract,
                "claims": claims,
                "keywords": keywords,
                "language": "zh",
                "source": f"{KP_TAC}#{i}",
            }
        )
        col.add("kppatent_tac", patent, has_publication_number=bool(numbers))
        if numbers:
            stats.notes["id_from_publication_number"] = stats.notes.get("id_from_publication_number", 0) + 1

    stats = col.stats["kppatent_a"]
    for i, row in enumerate(read_json(shared / KP_A)):
        stats.read += 1
        text = row["input"]
        if not text.startswith("摘要："):
            raise ValueError(f"{KP_A}#{i}: input does not start with 摘要：")
        keywords = split_keywords(row["output"])
        keyphrases.extend(keywords)
        patent = Patent.model_validate(
            {
                "id": f"KPZH-A-{i:04d}",
                "abstract": text.removeprefix("摘要：").strip(),
                "keywords": keywords,
                "language": "zh",
                "source": f"{KP_A}#{i}",
            }
        )
        col.add("kppatent_a", patent, has_publication_number=False)
    return keyphrases


def convert_cn_ipc(shared: Path, col: Collector, merges: list[dict[str, Any]]) -> None:
    stats = col.stats["cn_ipc_titles"]
    for row in read_csv(shared / CN_IPC):
        stats.read += 1
        pubno = row["publication_numbers"].strip()
        if not _CN_ID.match(pubno):
            raise ValueError(f"{CN_IPC}#{row['dataset_row']}: not a CN publication number: {pubno!r}")
        codes = [c.strip() for c in row["true_subclasses_all"].split("|") if c.strip()]
        source = f"{CN_IPC}#{row['dataset_row']}"
        existing = col.records.get(pubno)
        if existing is not None:
            assert isinstance(existing, Patent)
            merged = Patent.model_validate({**existing.model_dump(), "ipc": [*existing.ipc, *codes]})
            col.records[pubno] = merged
            stats.merged_into_existing += 1
            merges.append(
                {
                    "id": pubno,
                    "into": existing.source or "",
                    "from": source,
                    "added": "ipc",
                    "titles_equal": norm_ws(existing.title) == norm_ws(row["patent_title"]),
                }
            )
            continue
        patent = Patent.model_validate(
            {
                "id": pubno,
                "title": row["patent_title"].strip(),
                "ipc": codes,
                "language": "zh",
                "source": source,
            }
        )
        col.add("cn_ipc_titles", patent, has_publication_number=True)


def convert_zhibei_offers(shared: Path, col: Collector) -> None:
    stats = col.stats["zhibei_offers"]
    for part, path in enumerate(ZB_OFFERS, start=1):
        for i, row in enumerate(read_json(shared / path)):
            stats.read += 1
            patent = Patent.model_validate(
                {
                    "id": f"ZB-O{part}-{i:04d}",
                    "title": unquote(row["name"]),
                    "abstract": unquote(row["context"]),
                    "kind": row["zlxx"],
                    "maturity": row["maturity"],
                    "price": row["price"],
                    "industry": row["classification"],
                    "tech_area": row["industry"],
                    "cooperation_modes": split_by_vocab(row["cooperationMethod"], OFFER_COOPERATION_VOCAB),
                    "language": "zh",
                    "source": f"{path}#{i}",
                }
            )
            col.add("zhibei_offers", patent, has_publication_number=False)


def _applicant_type(type_code: str, name: str) -> str | None:
    code = int(type_code)
    if code >= 10:  # 12-19: the same types with a part interest
        code -= 10
    kind = US_ASSIGNEE_TYPE.get(code)
    if kind is None and code in (6, 7, 8, 9):  # government: only a name that says so makes it an institute
        if _UNIVERSITY.search(name):
            return "university"
        if _INSTITUTE.search(name):
            return "institute"
    return kind


def convert_uspto(shared: Path, col: Collector) -> None:
    stats = col.stats["uspto_nvidia"]
    abstracts = {row["patent_id"]: row["patent_abstract"] for row in read_csv(shared / US_ABSTRACT)}
    cpc_rows: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in read_csv(shared / US_CPC):
        cpc_rows[row["patent_id"]].append((int(row["cpc_sequence"]), row["cpc_group"]))
    assignees: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for row in read_csv(shared / US_ASSIGNEE):
        name = row["disambig_assignee_organization"].strip() or " ".join(
            p
            for p in (
                row["disambig_assignee_individual_name_first"].strip(),
                row["disambig_assignee_individual_name_last"].strip(),
            )
            if p
        )
        assignees[row["patent_id"]].append((int(row["assignee_sequence"]), name, row["assignee_type"].strip()))

    dropped_codes: Counter[str] = Counter()
    for i, row in enumerate(read_csv(shared / US_PATENT)):
        stats.read += 1
        patent_id = row["patent_id"].strip()
        codes: list[str] = []
        for _, code in sorted(cpc_rows.get(patent_id, [])):
            norm = normalize_code(code)
            if not is_valid_code(norm):
                dropped_codes[norm[:4]] += 1  # Y-section tagging codes (Y02D, Y10T, ...): outside A-H
                continue
            if norm not in codes:
                codes.append(norm)
        people = sorted(assignees.get(patent_id, []))
        names = [name for _, name, _ in people if name]
        applicant_type = _applicant_type(people[0][2], people[0][1]) if people and people[0][2] else None
        withdrawn = row["withdrawn"].strip() == "1"
        if withdrawn:
            stats.notes["withdrawn_marked_invalid"] = stats.notes.get("withdrawn_marked_invalid", 0) + 1
        if not codes:
            stats.notes["without_valid_cpc"] = stats.notes.get("without_valid_cpc", 0) + 1
        patent = Patent.model_validate(
            {
                "id": f"US{patent_id}{row['wipo_kind'].strip()}",
                "title": row["patent_title"].strip(),
                "abstract": abstracts.get(patent_id, "").strip(),
                "ipc": codes,
                "applicants": names,
                "applicant_type": applicant_type,
                # A grant says nothing about the current status; a patent withdrawn from issue never took effect.
                "legal_status": "invalid" if withdrawn else None,
                "granted": False if withdrawn else None,  # else derived from the kind code (B1, B2, S1, E1)
                "publication_date": row["patent_date"].strip(),
                "kind": f"US {row['patent_type'].strip()} patent {row['wipo_kind'].strip()}",
                "language": "en",
                "source": f"{US_PATENT}#{i}",
            }
        )
        col.add("uspto_nvidia", patent, has_publication_number=True)
    stats.notes["cpc_rows_dropped_not_a_to_h"] = sum(dropped_codes.values())


def convert_demands(shared: Path, col: Collector) -> None:
    stats = col.stats["zhibei_demands"]
    for i, row in enumerate(read_json(shared / ZB_DEMANDS)):
        stats.read += 1
        title = unquote(row["name"])
        if not title:  # a Demand needs a title; the one such row in the source is empty in every field
            stats.dropped_no_title += 1
            continue
        _, _, until = row["time"].partition("至")
        demand = Demand.model_validate(
            {
                "id": f"ZB-D-{i:04d}",
                "title": title,
                "description": unquote(row["context"]),
                "industry": row["classification"],
                "cooperation_modes": [m.strip() for m in row["cooperationMethod"].split(",") if m.strip()],
                "posted_date": parse_date(row["postTime"]),
                "expiry_date": parse_date(until),
                "language": "zh",
                "source": f"{ZB_DEMANDS}#{i}",
            }
        )
        col.add("zhibei_demands", demand, has_publication_number=False)


# ---------------------------------------------------------------------------------------------------------
# jieba user dictionary
# ---------------------------------------------------------------------------------------------------------
def build_userdict(keyphrases: Iterable[str]) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """Keyphrases (2+ characters, with CJK) that jieba's own dictionary lacks, each with its frequency.

    Entries are normalised as the analyzer normalises text (NFKC, traditional -> simplified). Words jieba
    already knows are left out: a user entry would *replace* their frequency and demote common words
    (中国 -> 中/国有). Each new word gets the smallest frequency that makes jieba keep it whole when it stands
    alone (``Tokenizer.suggest_freq(word, tune=False)`` against the default dictionary): enough to join its
    characters, not enough to override real words around it (a fixed 10 cut 石墨 out of 石墨烯 via 墨烯).
    """
    import jieba
    import opencc

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    t2s = opencc.OpenCC("t2s")
    distinct = {k.strip() for k in keyphrases if k.strip()}
    candidates: set[str] = set()
    for word in distinct:
        normalized = t2s.convert(unicodedata.normalize("NFKC", word)).strip()
        if len(normalized) >= 2 and CJK.search(normalized) and not _WS.search(normalized):
            candidates.add(normalized)
    known = {w for w in candidates if tokenizer.FREQ.get(w)}
    entries = [(w, int(tokenizer.suggest_freq(w, False))) for w in sorted(candidates - known)]
    stats = {
        "distinct_keyphrases": len(distinct),
        "candidates_2plus_chars_with_cjk": len(candidates),
        "left_out_already_in_jieba_dictionary": len(known),
        "written": len(entries),
    }
    return entries, stats


# ---------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------
def write_jsonl_gz(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        for row in rows:
            gz.write((json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
            count += 1
    return count


FIELDS_PATENT = tuple(Patent.model_fields)
FIELDS_DEMAND = tuple(Demand.model_fields)


def build_report(col: Collector, shared: Path, dumped: dict[str, dict[str, Any]]) -> dict[str, Any]:
    sources: dict[str, Any] = {}
    for name, files in SOURCES.items():
        stats = col.stats[name]
        ids = [rid for rid, src in col.origin.items() if src == name]
        fields = FIELDS_DEMAND if name == "zhibei_demands" else FIELDS_PATENT
        filled = {f: sum(1 for rid in ids if f in dumped[rid]) for f in fields}
        kinds = Counter(str(dumped[rid].get("kind", "(none)")) for rid in ids)
        sources[name] = {
            "files": list(files),
            "record_source_files": list(SOURCE_FILE[name]),
            "record_type": "Demand" if name == "zhibei_demands" else "Patent",
            "output": "demands.jsonl.gz" if name == "zhibei_demands" else "patents.jsonl.gz",
            "read": stats.read,
            "written": stats.written,
            "duplicates_dropped": stats.duplicates_dropped,
            "same_text_kept": stats.same_text_kept,
            "merged_into_existing": stats.merged_into_existing,
            "dropped_no_title": stats.dropped_no_title,
            **dict(sorted(stats.notes.items())),
            "fields_filled": {f: n for f, n in filled.items() if n},
            "fields_absent": [f for f, n in filled.items() if not n],
            "kinds": dict(sorted(kinds.items())),
        }
    patents = [r for r in col.records.values() if isinstance(r, Patent)]
    derived: Counter[tuple[str, str]] = Counter()
    for r in patents:
        derived.update(r.derived.items())
    return {
        "generated_by": "data/prepare.py",
        "order": "each file sorted by id (Unicode code point order)",
        "dedup_rule": (
            "exact duplicate = same whitespace-normalized (title, abstract|description); the first record in "
            "processing order (kppatent_tac, kppatent_a, cn_ipc_titles, zhibei_offers, uspto_nvidia; demands "
            "separately) is kept. Records identified by a publication number are never dropped (distinct "
            "legal documents) and are counted as same_text_kept instead."
        ),
        "inputs": {p: sha256(shared / p) for files in SOURCES.values() for p in files},
        "sources": sources,
        "totals": {
            "patents": len(patents),
            "demands": len(col.records) - len(patents),
            "patent_kinds": dict(sorted(Counter(r.kind or "(none)" for r in patents).items())),
            "patent_languages": dict(sorted(Counter(r.language for r in patents).items())),
            "derived": {f"{field} <- {rule}": n for (field, rule), n in sorted(derived.items())},
            "inferred": dict(sorted(Counter(f for r in patents for f in r.inferred).items())),
            "applicant_types": dict(sorted(Counter(
                r.applicant_type + (" (inferred)" if "applicant_type" in r.inferred else "")
                for r in patents if r.applicant_type).items())),
        },
    }


def run(shared: Path, out: Path, userdict: Path) -> dict[str, Any]:
    shared = shared.resolve()
    if not (shared / KP_TAC).is_file():
        raise SystemExit(f"{shared} does not look like the shared data folder (no {KP_TAC})")
    col = Collector()
    merges: list[dict[str, Any]] = []
    keyphrases = convert_kppatent(shared, col)
    convert_cn_ipc(shared, col, merges)
    convert_zhibei_offers(shared, col)
    convert_uspto(shared, col)
    convert_demands(shared, col)

    dumped = {rid: compact(rec) for rid, rec in col.records.items()}
    for rid, row in dumped.items():  # round trip: what we write must read back as the same record
        model = Demand if isinstance(col.records[rid], Demand) else Patent
        if model.model_validate(row) != col.records[rid]:
            raise AssertionError(f"{rid}: record does not survive the JSON round trip")

    out.mkdir(parents=True, exist_ok=True)
    patent_ids = sorted(rid for rid, rec in col.records.items() if isinstance(rec, Patent))
    demand_ids = sorted(rid for rid, rec in col.records.items() if isinstance(rec, Demand))
    write_jsonl_gz(out / "patents.jsonl.gz", (dumped[rid] for rid in patent_ids))
    write_jsonl_gz(out / "demands.jsonl.gz", (dumped[rid] for rid in demand_ids))

    licenses = out / "LICENSES"
    licenses.mkdir(exist_ok=True)
    for target, source in LICENSE_FILES.items():
        shutil.copyfile(shared / source, licenses / target)
    (licenses / "uspto_nvidia.txt").write_text(USPTO_LICENSE, encoding="utf-8")

    entries, userdict_stats = build_userdict(keyphrases)
    userdict.parent.mkdir(parents=True, exist_ok=True)
    userdict.write_text("".join(f"{w} {f}\n" for w, f in entries), encoding="utf-8")

    report = build_report(col, shared, dumped)
    report["merged"] = merges
    report["duplicates"] = sorted(col.duplicates, key=lambda d: d["dropped"])
    report["userdict"] = {"file": "indexes/resources/userdict_patent_zh.txt", **userdict_stats}
    report["outputs"] = {
        name: {"records": n, "sha256": sha256(out / name)}
        for name, n in (("patents.jsonl.gz", len(patent_ids)), ("demands.jsonl.gz", len(demand_ids)))
    }
    (out / "prepare_report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--shared",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "data",
        help="the shared real-data folder (default: ../shared/data from the repo root)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "data" / "sample", help="output folder (default: data/sample)"
    )
    parser.add_argument(
        "--userdict",
        type=Path,
        default=REPO_ROOT / "indexes" / "resources" / "userdict_patent_zh.txt",
        help="jieba user dictionary to write (default: indexes/resources/userdict_patent_zh.txt)",
    )
    args = parser.parse_args(argv)
    report = run(args.shared, args.out, args.userdict)
    for name, src in report["sources"].items():
        print(
            f"{name:15s} read {src['read']:6,d}  written {src['written']:6,d}  "
            f"duplicates dropped {src['duplicates_dropped']:4d}  same text kept {src['same_text_kept']:4d}"
        )
    totals = report["totals"]
    print(
        f"patents {totals['patents']:,}  demands {totals['demands']:,}  "
        f"userdict {report['userdict']['written']:,} words -> {args.userdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
