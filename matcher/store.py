"""The SQLite store: patents, demands, ingest batches and index manifests, in one embedded database file.

Each record is kept whole as JSON (the source of truth) plus the columns filters and facets read. List
fields (IPC codes, applicants, cooperation modes) go to one ``record_values`` table, indexed for lookups.
A batch is written in one transaction: it lands whole or not at all.

Upsert is by id. An *exact duplicate* (same normalised title + abstract/description as a record under
another id, e.g. a US continuation) is not stored again: the batch report names it and the id it duplicates,
and the duplicate's id is kept as an alias, so looking it up finds the stored record.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from indexes.analyzer import nfkc
from matcher import match_events
from matcher.holders import name_key
from matcher.records import FIELDS, Demand, Patent, fields_where
from matcher.texts import body_text

SCHEMA_VERSION = 1
# Which records: the stock patents (and technology offers) or the SME demands. Parameters holding one are still
# called ``kind`` (``--kind`` on the CLI, ``kind`` in API bodies and responses); the type says what it is.
Collection = Literal["patents", "demands"]
COLLECTIONS: tuple[Collection, ...] = ("patents", "demands")
MODELS: dict[Collection, type[Patent] | type[Demand]] = {"patents": Patent, "demands": Demand}

# Fields the record field table marks ``column`` (matcher.records.FIELDS): scalars are copied into columns of the
# record's table, lists into record_values, for filtering and counting in SQL.
SCALARS: dict[Collection, tuple[str, ...]] = {
    kind: tuple(f for f in fields_where(kind, column=True) if FIELDS[kind][f].type != "list") for kind in COLLECTIONS}
LISTS: dict[Collection, tuple[str, ...]] = {kind: fields_where(kind, column=True, type="list") for kind in COLLECTIONS}

# Derived lookup values kept beside a list field, under their own field name: each applicant's holder key
# (``matcher.holders.name_key``), so a holder's feed finds every spelling of one name by index.
KEYED: dict[Collection, dict[str, tuple[str, Callable[[str], str]]]] = {
    "patents": {"applicants": ("applicant_key", name_key)}}

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def dedup_key(title: str, body: str) -> str:
    """Hash of the normalised title + body: case, width, spacing and punctuation do not count."""
    text = nfkc(f"{title}\n{body}").lower()  # exactly NFKC, ~2x faster on Chinese text (indexes.analyzer)
    return hashlib.sha1(_PUNCT.sub("", text).encode("utf-8")).hexdigest()


def record_dedup_key(record: Patent | Demand) -> str:
    return dedup_key(record.title, body_text(record))


@dataclass
class BatchReport:
    """What one ingest batch did."""

    kind: Collection
    file: str
    batch_id: int | None = None
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (id, id it duplicates)
    rejected: int = 0
    rejects_file: str | None = None
    normalised: list[str] = field(default_factory=list)  # "file:line: field: what was normalised"
    written: list[str] = field(default_factory=list)  # ids inserted or changed (not in to_dict: for standing matches)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "file": self.file, "batch_id": self.batch_id, "read": self.read,
            "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
            "duplicates": [{"id": a, "duplicate_of": b} for a, b in self.duplicates],
            "rejected": self.rejected, "rejects_file": self.rejects_file, "normalised": self.normalised,
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ingest_batches (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, file TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL, report TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS record_values (
    kind TEXT NOT NULL, rid INTEGER NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, pos INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS record_values_by_rid ON record_values (kind, rid);
CREATE INDEX IF NOT EXISTS record_values_by_value ON record_values (kind, field, value);
CREATE TABLE IF NOT EXISTS aliases (
    kind TEXT NOT NULL, id TEXT NOT NULL, canonical_id TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS deletions (kind TEXT NOT NULL, id TEXT NOT NULL, data_version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS deletions_by_version ON deletions (kind, data_version);
"""


def _table_sql(kind: Collection) -> str:
    cols = ", ".join(f"{c} INTEGER" if FIELDS[kind][c].type == "flag" else f"{c} TEXT" for c in SCALARS[kind])
    return f"""
CREATE TABLE IF NOT EXISTS {kind} (
    rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, dedup_key TEXT NOT NULL UNIQUE, {cols},
    record TEXT NOT NULL, batch_id INTEGER, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS {kind}_by_batch ON {kind} (batch_id);
"""


def _keyed_values(kind: Collection, rid: int, lists: dict[str, list[str]]) -> list[tuple[str, int, str, str, int]]:
    """record_values rows of the derived values of ``lists`` (field -> its values), at the source value's pos."""
    out = []
    for source, values in lists.items():
        target, derive = KEYED[kind][source]
        out += [(kind, rid, target, key, i) for i, v in enumerate(values) if (key := derive(v))]
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Store:
    """One SQLite database. Open it, read and write records, close it (or use ``with``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        self._db.close()

    def _backfill_keyed_values(self) -> None:
        """A store written before the derived values existed gets them once, in the opening transaction."""
        for kind, keyed in KEYED.items():
            for source, (target, derive) in keyed.items():
                rows = self._db.execute("SELECT rid, value, pos FROM record_values WHERE kind=? AND field=?",
                                        (kind, source)).fetchall()
                self._db.executemany(
                    "INSERT INTO record_values (kind, rid, field, value, pos) VALUES (?,?,?,?,?)",
                    [(kind, rid, target, key, pos) for rid, value, pos in rows if (key := derive(value))])
        self._db.execute("INSERT INTO meta VALUES ('keyed_values', '1')")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        with self.transaction():
            for statement in (_SCHEMA + "".join(_table_sql(k) for k in COLLECTIONS)).split(";"):
                if statement.strip():
                    self._db.execute(statement)
            match_events.ensure_schema(self._db)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self._db.execute("INSERT INTO meta VALUES ('data_version', '0')")
            elif int(row[0]) != SCHEMA_VERSION:
                raise RuntimeError(f"{self.path}: store schema v{row[0]}, this build reads v{SCHEMA_VERSION}")
            if self._db.execute("SELECT 1 FROM meta WHERE key='keyed_values'").fetchone() is None:
                self._backfill_keyed_values()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside land together or not at all (BEGIN IMMEDIATE takes the write lock up front)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # --- writing --------------------------------------------------------------------------------------
    def write_batch(
        self, kind: Collection, records: Sequence[Patent | Demand], file: str, rejected: int = 0,
        rejects_file: str | None = None, normalised: Sequence[str] = (),
    ) -> BatchReport:
        """Upsert ``records`` in one transaction and log the batch; exact duplicates are reported, not stored."""
        report = BatchReport(kind=kind, file=file, read=len(records) + rejected, rejected=rejected,
                             rejects_file=rejects_file, normalised=list(normalised))
        started = _now()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO ingest_batches (kind, file, started_at, finished_at, report) VALUES (?,?,?,?,?)",
                (kind, file, started, started, "{}"),
            )
            batch_id = int(cur.lastrowid or 0)
            report.batch_id = batch_id
            for record in records:
                self._upsert(db, kind, record, batch_id, report)
            db.execute(
                "UPDATE ingest_batches SET finished_at=?, report=? WHERE id=?",
                (_now(), json.dumps(report.to_dict(), ensure_ascii=False), batch_id),
            )
            if report.inserted or report.updated:
                self._bump_version(db)
                match_events.enqueue_written(self, kind, report.written, batch_id)  # standing matches, same commit
        return report

    def _upsert(self, db: sqlite3.Connection, kind: Collection, record: Patent | Demand, batch_id: int,
                report: BatchReport) -> None:
        key = record_dedup_key(record)
        body = record.model_dump_json(exclude_defaults=True)
        clash = db.execute(f"SELECT id FROM {kind} WHERE dedup_key=? AND id<>?", (key, record.id)).fetchone()
        if clash is not None:
            report.duplicates.append((record.id, clash[0]))
            if db.execute(f"SELECT 1 FROM {kind} WHERE id=?", (record.id,)).fetchone() is None:
                db.execute("INSERT OR REPLACE INTO aliases (kind, id, canonical_id) VALUES (?,?,?)",
                           (kind, record.id, clash[0]))
            return
        db.execute("DELETE FROM aliases WHERE kind=? AND id=?", (kind, record.id))
        existing = db.execute(f"SELECT rid, record FROM {kind} WHERE id=?", (record.id,)).fetchone()
        values = [_column_value(getattr(record, c)) for c in SCALARS[kind]]
        if existing is None:
            cols = ", ".join(SCALARS[kind])
            marks = ", ".join("?" for _ in SCALARS[kind])
            cur = db.execute(
                f"INSERT INTO {kind} (id, dedup_key, {cols}, record, batch_id, updated_at) "
                f"VALUES (?, ?, {marks}, ?, ?, ?)",
                (record.id, key, *values, body, batch_id, _now()),
            )
            rid = int(cur.lastrowid or 0)
            report.inserted += 1
            report.written.append(record.id)
        else:
            rid = int(existing[0])
            if existing[1] == body:
                report.unchanged += 1
                return
            sets = ", ".join(f"{c}=?" for c in SCALARS[kind])
            db.execute(
                f"UPDATE {kind} SET dedup_key=?, {sets}, record=?, batch_id=?, updated_at=? WHERE rid=?",
                (key, *values, body, batch_id, _now(), rid),
            )
            db.execute("DELETE FROM record_values WHERE kind=? AND rid=?", (kind, rid))
            report.updated += 1
            report.written.append(record.id)
        db.executemany(
            "INSERT INTO record_values (kind, rid, field, value, pos) VALUES (?,?,?,?,?)",
            [(kind, rid, f, v, i) for f in LISTS[kind] for i, v in enumerate(getattr(record, f))]
            + _keyed_values(kind, rid, {f: getattr(record, f) for f in KEYED.get(kind, {})}),
        )

    def delete(self, kind: Collection, ids: Sequence[str]) -> list[str]:
        """Delete records by id in one transaction; returns the ids that existed."""
        deleted: list[str] = []
        with self.transaction() as db:
            for doc_id in ids:
                row = db.execute(f"SELECT rid FROM {kind} WHERE id=?", (doc_id,)).fetchone()
                if row is None:
                    continue
                db.execute("DELETE FROM record_values WHERE kind=? AND rid=?", (kind, row[0]))
                db.execute(f"DELETE FROM {kind} WHERE rid=?", (row[0],))
                db.execute("DELETE FROM aliases WHERE kind=? AND canonical_id=?", (kind, doc_id))
                deleted.append(doc_id)
            if deleted:
                self._bump_version(db)
                db.executemany("INSERT INTO deletions (kind, id, data_version) VALUES (?,?,?)",
                               [(kind, doc_id, self.data_version) for doc_id in deleted])
                match_events.enqueue_deleted(self, kind, deleted)
        return deleted

    def _bump_version(self, db: sqlite3.Connection) -> None:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='data_version'")

    # --- reading --------------------------------------------------------------------------------------
    @property
    def data_version(self) -> int:
        """Goes up with every change to the records; index manifests record the version they were built from."""
        return int(self._db.execute("SELECT value FROM meta WHERE key='data_version'").fetchone()[0])

    def count(self, kind: Collection) -> int:
        return int(self._db.execute(f"SELECT COUNT(*) FROM {kind}").fetchone()[0])

    def get(self, kind: Collection, doc_id: str) -> Patent | Demand | None:
        """The record stored under ``doc_id``, or under the id it is an exact duplicate of."""
        canonical = self.resolve(kind, doc_id)
        if canonical is None:
            return None
        row = self._db.execute(f"SELECT record FROM {kind} WHERE id=?", (canonical,)).fetchone()
        return None if row is None else MODELS[kind].model_validate_json(row[0])

    def resolve(self, kind: Collection, doc_id: str) -> str | None:
        """The stored id for ``doc_id``: itself, the record it duplicates, or None if unknown."""
        if self._db.execute(f"SELECT 1 FROM {kind} WHERE id=?", (doc_id,)).fetchone() is not None:
            return doc_id
        row = self._db.execute("SELECT canonical_id FROM aliases WHERE kind=? AND id=?", (kind, doc_id)).fetchone()
        return None if row is None else str(row[0])

    def aliases(self, kind: Collection) -> dict[str, str]:
        """Every duplicate id -> the stored id it resolves to."""
        rows = self._db.execute("SELECT id, canonical_id FROM aliases WHERE kind=?", (kind,))
        return {a: c for a, c in rows}

    def get_many(self, kind: Collection, ids: Sequence[str]) -> dict[str, Patent | Demand]:
        out: dict[str, Patent | Demand] = {}
        model = MODELS[kind]
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" for _ in chunk)
            for doc_id, body in self._db.execute(f"SELECT id, record FROM {kind} WHERE id IN ({marks})", chunk):
                out[doc_id] = model.model_validate_json(body)
        return out

    def iter_records(self, kind: Collection, batch_size: int = 2000) -> Iterator[Patent | Demand]:
        """Every record of ``kind`` in insertion (rid) order."""
        model = MODELS[kind]
        last = 0
        while True:
            rows = self._db.execute(
                f"SELECT rid, record FROM {kind} WHERE rid > ? ORDER BY rid LIMIT ?", (last, batch_size)
            ).fetchall()
            if not rows:
                return
            for _rid, body in rows:
                yield model.model_validate_json(body)
            last = rows[-1][0]

    def ids_with_value(self, kind: Collection, field_name: str, contains: str) -> list[str]:
        """Ids of records with a list value (e.g. an applicant) containing ``contains``, case-insensitive."""
        if field_name not in LISTS[kind]:
            raise ValueError(f"{kind} have no list field {field_name!r}")
        sql = (f"SELECT DISTINCT r.id, r.rid FROM record_values v JOIN {kind} r ON r.rid = v.rid "
               "WHERE v.kind=? AND v.field=? AND instr(lower(v.value), lower(?)) > 0 ORDER BY r.rid")
        return [row[0] for row in self._db.execute(sql, (kind, field_name, contains))]

    def stamps(self, kind: Collection, after: int | None = None) -> dict[str, int]:
        """id -> the ingest batch that last changed the record (all records, or those changed in a batch after
        ``after``). Batch ids grow with every write, so an index that records the stamps it covered can find what
        changed since without reading the records."""
        sql = f"SELECT id, batch_id FROM {kind}" + ("" if after is None else " WHERE batch_id > ?")
        return {row[0]: int(row[1] or 0) for row in self._db.execute(sql, () if after is None else (after,))}

    def deleted_since(self, kind: Collection, data_version: int) -> list[str]:
        """Ids deleted after store version ``data_version`` and not stored again since, from the deletion log (a
        flush masks them without reading every id). Deletions made before the log existed are not in it."""
        rows = self._db.execute(f"SELECT DISTINCT d.id FROM deletions d LEFT JOIN {kind} r ON r.id = d.id "
                                "WHERE d.kind=? AND d.data_version > ? AND r.rid IS NULL ORDER BY d.id",
                                (kind, data_version))
        return [row[0] for row in rows]

    def forget_deletions(self, kind: Collection, data_version: int) -> None:
        """Drop the deletion log up to ``data_version`` (a published snapshot covers those deletions)."""
        with self.transaction() as db:
            db.execute("DELETE FROM deletions WHERE kind=? AND data_version <= ?", (kind, data_version))

    def ids(self, kind: Collection) -> list[str]:
        return [r[0] for r in self._db.execute(f"SELECT id FROM {kind} ORDER BY rid")]

    def facet_counts(self, kind: Collection, field_name: str, limit: int = 100) -> list[tuple[str, int]]:
        """Value -> record count for a scalar or list field, most common first."""
        if field_name in SCALARS[kind]:
            sql = (f"SELECT {field_name}, COUNT(*) n FROM {kind} WHERE {field_name} IS NOT NULL "
                   f"GROUP BY {field_name} ORDER BY n DESC, 1 LIMIT ?")
            return [(str(v), int(n)) for v, n in self._db.execute(sql, (limit,))]
        if field_name in LISTS[kind]:
            sql = ("SELECT value, COUNT(DISTINCT rid) n FROM record_values WHERE kind=? AND field=? "
                   "GROUP BY value ORDER BY n DESC, 1 LIMIT ?")
            return [(v, int(n)) for v, n in self._db.execute(sql, (kind, field_name, limit))]
        raise ValueError(f"{kind} have no field {field_name!r} to count")

    def batches(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT report FROM ingest_batches ORDER BY id DESC LIMIT ?", (limit,))
        return [json.loads(r[0]) for r in rows]


def _column_value(value: object) -> object:
    if value is None or isinstance(value, (str, int, float)):
        return int(value) if isinstance(value, bool) else value
    return str(value)  # dates -> ISO text
