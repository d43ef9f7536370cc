"""Writing shortlists and push lists as CSV, XLSX or JSON (chosen by the file's extension).

* **XLSX**: one sheet per chain segment (a push has one sheet), named after the segment, with readable column
  names in Chinese (``lang="zh"``, the default) or English, a bold frozen header and an auto filter; a last
  sheet (运行信息 / Run info) holds the run's parameters, counts, timings and warnings.
* **CSV**: every row in one table (the segment is a column), UTF-8 with a byte-order mark so that Excel opens
  Chinese text correctly.
* **JSON**: the whole result, rows with their nested explanations and per-retriever scores; keys in English.

Files are written to a temporary name and renamed, so a failed export never leaves half a file.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from matcher.push import Push
from matcher.shortlist import Shortlist

Lang = Literal["zh", "en"]
FORMATS = ("csv", "xlsx", "json")
_SHEET_BAD = str.maketrans({c: "_" for c in "[]:*?/\\"})
MAX_SHEET = 31

# key -> (Chinese, English) column name. The order here is the column order.
COLUMNS: dict[str, tuple[str, str]] = {
    "chain": ("产业链", "Chain"),
    "segment": ("产业链环节", "Segment"),
    "enterprise_rank": ("企业排名", "Enterprise rank"),
    "enterprise_key": ("企业", "Enterprise"),
    "enterprise_score": ("企业得分", "Enterprise score"),
    "demand_rank": ("企业内需求序号", "Demand rank"),
    "demand_score": ("需求得分", "Demand score"),
    "rank": ("推荐序号", "Rank"),
    "demand_id": ("需求编号", "Demand ID"),
    "demand_title": ("技术需求", "Demand"),
    "demand_industry": ("需求所属行业", "Demand industry"),
    "enterprise": ("需求企业", "Demand enterprise"),
    "patent_id": ("专利/成果编号", "Patent ID"),
    "patent_title": ("专利/成果名称", "Patent title"),
    "patent_kind": ("类型", "Kind"),
    "patent_language": ("语言", "Language"),
    "holder": ("权利人", "Holder"),
    "score": ("综合得分", "Fused score"),
    "fusion": ("融合方法", "Fusion"),
    "bm25_rank": ("关键词检索排名", "BM25 rank"),
    "bm25_score": ("关键词检索得分", "BM25 score"),
    "dense_rank": ("语义检索排名", "Dense rank"),
    "dense_score": ("语义相似度", "Dense similarity"),
    "shared_terms": ("共同词语", "Shared terms"),
    "snippet": ("命中片段", "Highlighted snippet"),
    "closest_sentence": ("语义最相近句子", "Closest sentence"),
    "closest_similarity": ("句子相似度", "Sentence similarity"),
    "open_licence": ("开放许可", "Open licence"),
    "price": ("价格", "Price"),
    "maturity": ("成熟度", "Maturity"),
    "offer_modes": ("成果合作方式", "Offer cooperation modes"),
    "demand_modes": ("需求合作方式", "Demand cooperation modes"),
    "compatible_modes": ("双方一致的合作方式", "Compatible cooperation modes"),
    "near_duplicates": ("近似重复专利(未列入)", "Near-duplicates (left out)"),
    "demand_selected_by": ("需求入选依据", "Demand selected by"),
    "patent_selected_by": ("专利入选依据", "Patent selected by"),
}
JSON_ONLY = ("explanation", "retrievers", "segment_id", "segment_en")
_BOOL = {"zh": ("是", "否"), "en": ("yes", "no")}
# run-info item -> Chinese label (English: the key itself)
INFO_ZH = {
    "chain": "产业链", "chain file": "产业链定义文件", "per_demand": "每个需求最多推荐专利数",
    "per_patent": "每个专利最多推荐给需求数", "per_holder": "每个权利人最多推荐行数", "min_score": "最低综合得分",
    "min_similarity": "最低语义相似度",
    "candidates": "每个需求参与评分的专利数", "duplicate_similarity": "近似重复判定阈值(余弦)", "method": "分配方法",
    "mode": "检索模式", "explain": "生成匹配解释", "patents_selected": "入选专利数", "demands_selected": "入选需求数",
    "candidate_pairs": "候选配对数", "rows": "推荐行数", "demands_served": "获得推荐的需求数",
    "distinct_patents": "推荐涉及的专利数", "total_score": "总得分", "greedy_total_score": "贪心算法总得分(对照)",
    "holder_rule": "权利人规则", "warning": "警告", "portfolio": "专利组合", "patents": "专利数", "k": "企业数上限",
    "per_enterprise": "每个企业最多需求数(及每个需求最多专利数)", "enterprises": "企业数", "demands": "需求数",
    "supporting_patents": "支撑专利数", "enterprise_rule": "企业规则", "demand filters": "需求筛选条件",
    "segment": "环节", "time": "耗时(秒)",
}
RULES_ZH = {
    "first applicant; a patent with no applicant is its own holder": "第一申请人；无申请人的专利各自视为一个权利人",
    "a demand with no enterprise stands alone, keyed '(demand ID)'": "未注明企业的需求单独列为一个企业",
}
_INFO = {"zh": ("运行信息", "项目", "值"), "en": ("Run info", "item", "value")}


@dataclass
class Table:
    """What an export writes: sheets of flat rows, run information, and the full document for JSON."""

    sheets: list[tuple[str, list[dict[str, Any]]]]
    columns: list[str]
    info: list[tuple[str, Any]]
    document: dict[str, Any]


def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown output format {suffix or '(none)'!r}: use .csv, .xlsx or .json")
    return suffix


def header(key: str, lang: Lang) -> str:
    names = COLUMNS.get(key)
    return key if names is None else names[0 if lang == "zh" else 1]


def cell(value: Any, lang: Lang) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _BOOL[lang][0 if value else 1]
    if isinstance(value, int | float | str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(k for k in row if k not in JSON_ONLY))
    return [k for k in COLUMNS if k in present] + [k for k in present if k not in COLUMNS]


def shortlist_table(shortlist: Shortlist, lang: Lang = "zh") -> Table:
    rows = [{**r, "segment": r["segment"] if lang == "zh" else r["segment_en"]} for r in shortlist.rows]
    sheets = [(seg.name if lang == "zh" else seg.label_en, [r for r in rows if r["segment_id"] == seg.id])
              for seg in shortlist.chain.segments]
    columns = _columns(rows) or [k for k in COLUMNS if k not in ("enterprise_rank", "enterprise_key",
                                                                 "enterprise_score", "demand_rank", "demand_score")]
    s = shortlist.summary
    options = vars(shortlist.options)
    info: list[tuple[str, Any]] = [
        ("chain", shortlist.chain.name if lang == "zh" else (shortlist.chain.name_en or shortlist.chain.name)),
        ("chain file", shortlist.chain.source),
        *options.items(),
        *((k, v) for k, v in s.items() if k not in ("segments", "warnings", "timings") and k not in options),
        *((f"segment {seg['id']}", f"{seg['patents']} patents, {seg['demands']} demands, {seg['rows']} rows, "
                                   f"{seg['demands_served']} demands served") for seg in s["segments"]),
        *((f"time {k}", v) for k, v in s["timings"].items()),
        *(("warning", w) for w in s["warnings"]),
    ]
    return Table(sheets, columns, _localised(info, lang), shortlist.to_dict())


def _localised(info: list[tuple[str, Any]], lang: Lang) -> list[tuple[str, Any]]:
    if lang != "zh":
        return info
    out = []
    for key, value in info:
        head, _, rest = key.partition(" ")
        label = INFO_ZH.get(key) or (f"{INFO_ZH[head]} {rest}" if head in INFO_ZH and rest else key)
        out.append((label, RULES_ZH.get(value, value) if isinstance(value, str) else value))
    return out


def push_table(push: Push, lang: Lang = "zh") -> Table:
    title = "推送清单" if lang == "zh" else "Push list"
    info: list[tuple[str, Any]] = [("portfolio", push.label), ("patents", len(push.portfolio)),
                                   *((k, v) for k, v in vars(push.options).items() if k != "filters"),
                                   ("demand filters", push.options.filters.model_dump_json(exclude_defaults=True)),
                                   *((k, v) for k, v in push.summary.items() if k not in ("timings", "portfolio",
                                                                                          "patents")),
                                   *((f"time {k}", v) for k, v in push.summary["timings"].items())]
    return Table([(title, push.rows)], _columns(push.rows), _localised(info, lang), push.to_dict())


# --- writers ----------------------------------------------------------------------------------------------
def write(table: Table, path: str | Path, lang: Lang = "zh") -> Path:
    """Write ``table`` to ``path`` in the format its extension names; returns the path."""
    path = Path(path)
    fmt = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        {"csv": _write_csv, "xlsx": _write_xlsx, "json": _write_json}[fmt](table, tmp, lang)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_json(table: Table, path: Path, lang: Lang) -> None:
    path.write_text(json.dumps(table.document, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")


def _write_csv(table: Table, path: Path, lang: Lang) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([header(k, lang) for k in table.columns])
        for _, rows in table.sheets:
            for row in rows:
                writer.writerow([cell(row.get(k), lang) for k in table.columns])


def sheet_title(name: str, taken: set[str]) -> str:
    """An Excel-safe, unique sheet name (<= 31 characters, none of []:*?/\\)."""
    base = name.translate(_SHEET_BAD).strip("'").strip() or "sheet"
    title, n = base[:MAX_SHEET], 2
    while title.casefold() in taken:
        suffix = f" ({n})"
        title, n = base[: MAX_SHEET - len(suffix)] + suffix, n + 1
    taken.add(title.casefold())
    return title


_WIDTHS = {"demand_title": 28, "patent_title": 36, "shared_terms": 30, "snippet": 60, "closest_sentence": 50,
           "segment": 18, "near_duplicates": 24, "demand_selected_by": 24, "patent_selected_by": 24}


def _write_xlsx(table: Table, path: Path, lang: Lang) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    taken: set[str] = set()
    bold = Font(bold=True)
    for name, rows in table.sheets:
        sheet = book.create_sheet(sheet_title(name, taken))
        sheet.append([header(k, lang) for k in table.columns])
        for row in rows:
            sheet.append([cell(row.get(k), lang) for k in table.columns])
        for i, key in enumerate(table.columns, 1):
            sheet.cell(row=1, column=i).font = bold
            sheet.column_dimensions[get_column_letter(i)].width = _WIDTHS.get(key, 12)
        for i, key in enumerate(table.columns, 1):
            if key in ("snippet", "closest_sentence", "shared_terms"):
                for (c,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                    c.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.freeze_panes = "A2"
        if table.columns:
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{max(1, len(rows) + 1)}"
    title, item, value = _INFO[lang]
    info = book.create_sheet(sheet_title(title, taken))
    info.append([item, value])
    info.cell(row=1, column=1).font = info.cell(row=1, column=2).font = bold
    for key, v in table.info:
        info.append([key, cell(v, lang)])
    info.column_dimensions["A"].width = 28
    info.column_dimensions["B"].width = 100
    book.save(path)
