"""Reading an evaluation set in the BEIR layout, with errors that name the file, line and field.

    DIR/corpus.jsonl (or corpus.jsonl.gz)   {"_id", "title", "text", ...extra fields}
    DIR/queries.jsonl                       {"_id", "text", ...}
    DIR/qrels/<split>.tsv                   query-id <TAB> corpus-id <TAB> score   (a header line is optional)

Extra corpus fields named like ``Patent`` fields (``ipc``, ``language``, ``claims`` ...) are kept, so a set
can exercise filters and languages; other extras are ignored.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from matcher.texts import text_language


class DatasetError(ValueError):
    """A malformed evaluation set: the message says file:line: field: reason."""


@dataclass
class Dataset:
    path: Path
    corpus: list[dict[str, Any]]
    queries: dict[str, dict[str, Any]]
    qrels: dict[str, dict[str, int]]  # query id -> corpus id -> grade (the chosen split)
    split: str
    skipped_docs: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def evaluated_queries(self) -> dict[str, dict[str, Any]]:
        """The queries that have at least one judged document in this split."""
        return {qid: q for qid, q in self.queries.items() if qid in self.qrels}


def _open(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with _open(path) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise DatasetError(f"{path}:{line_no}: expected a JSON object")
                yield line_no, obj
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{path}: unreadable ({exc})") from None


def _text_field(path: Path, line: int, obj: dict[str, Any], key: str, required: bool) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise DatasetError(f"{path}:{line}: {key}: missing")
        return ""
    if not isinstance(value, str | int):
        raise DatasetError(f"{path}:{line}: {key}: expected a string, got {type(value).__name__}")
    return str(value)


def load_corpus(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    docs: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    skipped: list[str] = []
    for line, obj in _jsonl(path):
        doc_id = _text_field(path, line, obj, "_id", True).strip()
        if not doc_id:
            raise DatasetError(f"{path}:{line}: _id: empty")
        if doc_id in seen:
            raise DatasetError(f"{path}:{line}: _id: duplicate id {doc_id!r} (first at line {seen[doc_id]})")
        seen[doc_id] = line
        title = _text_field(path, line, obj, "title", False)
        text = _text_field(path, line, obj, "text", False)
        if not title.strip() and not text.strip():
            skipped.append(doc_id)  # nothing to retrieve it by
            continue
        docs.append({**obj, "_id": doc_id, "title": title, "text": text})
    if not docs:
        raise DatasetError(f"{path}: no documents")
    return docs, skipped


def load_queries(path: Path) -> dict[str, dict[str, Any]]:
    queries: dict[str, dict[str, Any]] = {}
    for line, obj in _jsonl(path):
        qid = _text_field(path, line, obj, "_id", True).strip()
        text = _text_field(path, line, obj, "text", True)
        if not qid:
            raise DatasetError(f"{path}:{line}: _id: empty")
        if not text.strip():
            raise DatasetError(f"{path}:{line}: text: empty query")
        if qid in queries:
            raise DatasetError(f"{path}:{line}: _id: duplicate query id {qid!r}")
        queries[qid] = {**obj, "_id": qid, "text": text}
    if not queries:
        raise DatasetError(f"{path}: no queries")
    return queries


def load_qrels(path: Path, queries: dict[str, Any], corpus_ids: set[str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except (UnicodeDecodeError, OSError) as exc:
        raise DatasetError(f"{path}: unreadable ({exc})") from None
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if line_no == 1 and cols[:2] == ["query-id", "corpus-id"]:
            continue
        if len(cols) == 4 and cols[1] in ("0", "Q0"):  # TREC qrels: qid iter docid grade
            cols = [cols[0], cols[2], cols[3]]
        if len(cols) != 3:
            raise DatasetError(f"{path}:{line_no}: expected 3 columns (query-id corpus-id score), got {len(cols)}")
        qid, doc_id, score = (c.strip() for c in cols)
        try:
            grade = int(score)
        except ValueError:
            raise DatasetError(f"{path}:{line_no}: score: not an integer: {score!r}") from None
        if qid not in queries:
            raise DatasetError(f"{path}:{line_no}: query-id: {qid!r} is not in queries.jsonl")
        if doc_id not in corpus_ids:
            raise DatasetError(f"{path}:{line_no}: corpus-id: {doc_id!r} is not in the corpus")
        qrels.setdefault(qid, {})[doc_id] = grade
    if not qrels:
        raise DatasetError(f"{path}: no judgments")
    return qrels


def load_dataset(directory: str | Path, split: str | None = None) -> Dataset:
    """Load a BEIR folder; ``split`` names ``qrels/<split>.tsv`` (default: test if present, else the only one)."""
    path = Path(directory)
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder")
    corpus_path = next((p for p in (path / "corpus.jsonl", path / "corpus.jsonl.gz") if p.exists()), None)
    if corpus_path is None:
        raise DatasetError(f"{path}: no corpus.jsonl or corpus.jsonl.gz")
    if not (path / "queries.jsonl").is_file():
        raise DatasetError(f"{path}: no queries.jsonl")
    splits = sorted(p.stem for p in (path / "qrels").glob("*.tsv")) if (path / "qrels").is_dir() else []
    if not splits:
        raise DatasetError(f"{path}: no qrels/*.tsv")
    if split is None:
        split = "test" if "test" in splits else splits[0] if len(splits) == 1 else ""
        if not split:
            raise DatasetError(f"{path}: several qrels files ({', '.join(splits)}): choose one with --split")
    if split not in splits:
        raise DatasetError(f"{path}: no qrels/{split}.tsv (have: {', '.join(splits)})")
    corpus, skipped = load_corpus(corpus_path)
    queries = load_queries(path / "queries.jsonl")
    ids = {d["_id"] for d in corpus} | set(skipped)
    qrels = load_qrels(path / "qrels" / f"{split}.tsv", queries, ids)
    return Dataset(path, corpus, queries, qrels, split, skipped)


def detect_language(text: str) -> str:
    return text_language(text)
