"""Standing matches in the store: match events, the pending work that produces them, and saved searches.

Tables (their own schema version, ``meta.events_schema_version``, migrated by ``ensure_schema``):

- ``pending_work``: one row per record written and not yet matched (kind, id, the write, the data version the write
  produced). ``enqueue_written`` adds rows *inside the write's transaction*, so a write and its pending work land
  together; a row is deleted in the same transaction that records its events, so a crash (kill -9) at any point
  loses nothing and repeats nothing.
- ``match_events``: one row per (patent, demand) pair found above the floor, or per (saved search, record) found
  new. ``superseded_by`` is the write that replaced it (the record changed or was deleted); at most one *live*
  (not superseded) event per pair, enforced by a partial unique index. The integer ``id`` only grows, and SQLite
  has one writer at a time, so an event with a larger id is committed later: an id cursor has no gaps or repeats.
- ``saved_searches``: a stored query + filters of an enterprise (over patents) or a holder (over demands).

This module is only the store side (no searching): ``matcher.standing`` runs the matching, ``matcher.feeds`` reads.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, Protocol

Collection = Literal["patents", "demands"]  # as matcher.store.Collection (the store imports this module)


class Store(Protocol):
    """What this module needs of ``matcher.store.Store``: its connection and its transactions."""

    _db: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

EVENTS_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_work (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, record_id TEXT NOT NULL, write_id INTEGER,
    data_version INTEGER NOT NULL, enqueued_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, UNIQUE (kind, record_id));
CREATE TABLE IF NOT EXISTS match_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, patent TEXT, demand TEXT, saved_search INTEGER,
    enterprise TEXT, score REAL NOT NULL, evidence TEXT NOT NULL, direction TEXT NOT NULL,
    explanation TEXT NOT NULL, created_at TEXT NOT NULL, write_id INTEGER, patent_hash TEXT,
    demand_hash TEXT, capped INTEGER NOT NULL DEFAULT 0, superseded_by INTEGER, superseded_at TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS match_events_live_pair ON match_events (patent, demand)
    WHERE superseded_by IS NULL AND saved_search IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS match_events_live_saved
    ON match_events (saved_search, coalesce(patent, ''), coalesce(demand, ''))
    WHERE superseded_by IS NULL AND saved_search IS NOT NULL;
CREATE INDEX IF NOT EXISTS match_events_by_patent ON match_events (patent);
CREATE INDEX IF NOT EXISTS match_events_by_demand ON match_events (demand);
CREATE INDEX IF NOT EXISTS match_events_by_enterprise ON match_events (enterprise, id);
CREATE TABLE IF NOT EXISTS saved_searches (
    id INTEGER PRIMARY KEY, owner_type TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL,
    kind TEXT NOT NULL, query TEXT NOT NULL, filters TEXT NOT NULL, min_score REAL,
    created_at TEXT NOT NULL, created_version INTEGER NOT NULL, UNIQUE (owner_type, owner, name));
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create (or migrate) the standing-match tables; call inside the store's migration transaction."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    row = db.execute("SELECT value FROM meta WHERE key='events_schema_version'").fetchone()
    if row is None:
        db.execute("INSERT INTO meta VALUES ('events_schema_version', ?)", (str(EVENTS_SCHEMA_VERSION),))
    elif int(row[0]) > EVENTS_SCHEMA_VERSION:
        raise RuntimeError(f"match events schema v{row[0]}, this build reads v{EVENTS_SCHEMA_VERSION}")


def record_hash(body: str) -> str:
    """The version of a stored record: a hash of its stored JSON (an unchanged re-ingest keeps it)."""
    return hashlib.sha1(body.encode("utf-8")).hexdigest()[:16]


def enqueue_written(store: Store, kind: Collection, ids: Sequence[str], write_id: int | None) -> None:
    """Record that ``ids`` of ``kind`` were written (inserted or changed) by write ``write_id``: their standing
    matches are computed once a snapshot with this data version is served. Call inside the write's transaction."""
    if not ids:
        return
    db = store._db
    version = int(db.execute("SELECT value FROM meta WHERE key='data_version'").fetchone()[0])
    now = _now()
    db.executemany(
        "INSERT INTO pending_work (kind, record_id, write_id, data_version, enqueued_at) VALUES (?,?,?,?,?) "
        "ON CONFLICT (kind, record_id) DO UPDATE SET write_id=excluded.write_id, "
        "data_version=excluded.data_version, enqueued_at=excluded.enqueued_at, attempts=0, last_error=NULL",
        [(kind, doc_id, write_id, version, now) for doc_id in ids])


def enqueue_deleted(store: Store, kind: Collection, ids: Sequence[str]) -> None:
    """Deleted records: their live events are superseded now, and any pending work for them is dropped (it would
    find nothing). Call inside the delete's transaction."""
    if not ids:
        return
    db = store._db
    column = "patent" if kind == "patents" else "demand"
    now = _now()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        marks = ",".join("?" for _ in chunk)
        db.execute(f"UPDATE match_events SET superseded_by=-1, superseded_at=? WHERE superseded_by IS NULL "
                   f"AND {column} IN ({marks})", (now, *chunk))
        db.execute(f"DELETE FROM pending_work WHERE kind=? AND record_id IN ({marks})", (kind, *chunk))


@dataclass
class PendingItem:
    id: int
    kind: Collection
    record_id: str
    write_id: int | None
    data_version: int
    attempts: int


@dataclass
class NewEvent:
    """An event to record: a (patent, demand) pair, or a saved search's new result (demand or patent)."""

    patent: str | None
    demand: str | None
    score: float
    evidence: str  # pair_confidence | relevance | dense_cosine | bm25
    direction: str  # patent->demands | demand->patents | saved_search
    explanation: dict[str, Any]
    patent_hash: str
    demand_hash: str | None
    enterprise: str | None = None
    saved_search: int | None = None


def pending(store: Store, kind: Collection | None = None, ready_versions: dict[str, int] | None = None,
            limit: int = 100, max_attempts: int = 3) -> list[PendingItem]:
    """Pending work, oldest first; with ``ready_versions`` (kind -> served data version) only what is searchable."""
    sql = "SELECT id, kind, record_id, write_id, data_version, attempts FROM pending_work WHERE attempts < ?"
    args: list[Any] = [max_attempts]
    if kind is not None:
        sql += " AND kind=?"
        args.append(kind)
    if ready_versions is not None:
        clauses = ["(kind=? AND data_version<=?)" for _ in ready_versions]
        if not clauses:
            return []
        sql += " AND (" + " OR ".join(clauses) + ")"
        for k, v in ready_versions.items():
            args += [k, v]
    sql += " ORDER BY id LIMIT ?"
    args.append(limit)
    return [PendingItem(*row) for row in store._db.execute(sql, args)]


def pending_count(store: Store) -> dict[str, int]:
    rows = store._db.execute("SELECT kind, COUNT(*) FROM pending_work GROUP BY kind")
    return {k: int(n) for k, n in rows}


def fail(store: Store, item: PendingItem, error: str) -> None:
    with store.transaction() as db:
        db.execute("UPDATE pending_work SET attempts=attempts+1, last_error=? WHERE id=? AND data_version=?",
                   (error[:2000], item.id, item.data_version))


def period_start(when: str, period: str) -> str:
    """The first instant (ISO, UTC) of the cap period (day | week | month) containing ``when``."""
    day = date.fromisoformat(when[:10])
    if period == "day":
        return day.isoformat()
    if period == "month":
        return day.replace(day=1).isoformat()
    return (day - timedelta(days=day.weekday())).isoformat()  # Monday of the ISO week


def complete(store: Store, item: PendingItem, record_hash_now: str | None, events: Sequence[NewEvent],
             cap: int | None = None, cap_period: str = "week") -> int:
    """In one transaction: supersede the record's live events made from an older version of it, record ``events``
    (a pair that already has a live event is kept as it is), and drop the pending row. Returns events recorded.
    ``cap``: at most this many feed-visible events per enterprise per ``cap_period``; more are recorded as capped.
    """
    column, hash_column = ("patent", "patent_hash") if item.kind == "patents" else ("demand", "demand_hash")
    now = _now()
    written = 0
    with store.transaction() as db:
        still = db.execute("SELECT data_version FROM pending_work WHERE id=?", (item.id,)).fetchone()
        if still is None or int(still[0]) != item.data_version:
            return 0  # written again meanwhile: the newer pending row does the work
        if record_hash_now is None:
            db.execute(f"UPDATE match_events SET superseded_by=?, superseded_at=? WHERE superseded_by IS NULL "
                       f"AND {column}=?", (item.write_id or -1, now, item.record_id))
        else:
            db.execute(f"UPDATE match_events SET superseded_by=?, superseded_at=? WHERE superseded_by IS NULL "
                       f"AND {column}=? AND {hash_column}<>?",
                       (item.write_id or -1, now, item.record_id, record_hash_now))
        since = period_start(now, cap_period)
        counts: dict[str, int] = {}
        for e in events:
            capped = 0
            if cap is not None and e.enterprise is not None:
                if e.enterprise not in counts:
                    counts[e.enterprise] = int(db.execute(
                        "SELECT COUNT(*) FROM match_events WHERE enterprise=? AND capped=0 AND created_at>=?",
                        (e.enterprise, since)).fetchone()[0])
                capped = int(counts[e.enterprise] >= cap)
            cur = db.execute(
                "INSERT OR IGNORE INTO match_events (patent, demand, saved_search, enterprise, score, evidence, "
                "direction, explanation, created_at, write_id, patent_hash, demand_hash, capped) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (e.patent, e.demand, e.saved_search, e.enterprise, round(e.score, 6), e.evidence, e.direction,
                 json.dumps(e.explanation, ensure_ascii=False), now, item.write_id, e.patent_hash, e.demand_hash,
                 capped))
            if cur.rowcount:
                written += 1
                if e.enterprise is not None and not capped and e.enterprise in counts:
                    counts[e.enterprise] += 1
        db.execute("DELETE FROM pending_work WHERE id=?", (item.id,))
    return written


# --- saved searches --------------------------------------------------------------------------------------
@dataclass
class SavedSearch:
    id: int
    owner_type: str  # enterprise | holder
    owner: str
    name: str
    kind: Collection  # what it searches: patents (an enterprise's) or demands (a holder's)
    query: str
    filters: dict[str, Any]
    min_score: float | None
    created_at: str
    created_version: int  # the data version when saved: records written after it are new to it

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "owner_type": self.owner_type, "owner": self.owner, "name": self.name,
                "kind": self.kind, "query": self.query, "filters": self.filters, "min_score": self.min_score,
                "created_at": self.created_at}


_SAVED_COLS = "id, owner_type, owner, name, kind, query, filters, min_score, created_at, created_version"


def _saved(row: tuple[Any, ...]) -> SavedSearch:
    return SavedSearch(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8], row[9])


def save_search(store: Store, owner_type: str, owner: str, name: str, kind: Collection, query: str,
                filters: dict[str, Any], min_score: float | None) -> SavedSearch:
    """Store a search (replacing one of the same owner and name). Results present now are the baseline: only
    records written after it count as new."""
    with store.transaction() as db:
        version = int(db.execute("SELECT value FROM meta WHERE key='data_version'").fetchone()[0])
        db.execute(
            "INSERT INTO saved_searches (owner_type, owner, name, kind, query, filters, min_score, created_at, "
            "created_version) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (owner_type, owner, name) DO UPDATE SET "
            "kind=excluded.kind, query=excluded.query, filters=excluded.filters, min_score=excluded.min_score, "
            "created_version=excluded.created_version",
            (owner_type, owner, name, kind, query, json.dumps(filters, ensure_ascii=False), min_score, _now(),
             version))
        row = db.execute(f"SELECT {_SAVED_COLS} FROM saved_searches WHERE owner_type=? AND owner=? AND name=?",
                         (owner_type, owner, name)).fetchone()
    return _saved(row)


def saved_searches(store: Store, kind: Collection | None = None, owner_type: str | None = None,
                   owner: str | None = None) -> list[SavedSearch]:
    sql, args = f"SELECT {_SAVED_COLS} FROM saved_searches WHERE 1=1", []
    for column, value in (("kind", kind), ("owner_type", owner_type), ("owner", owner)):
        if value is not None:
            sql += f" AND {column}=?"
            args.append(value)
    return [_saved(r) for r in store._db.execute(sql + " ORDER BY id", args)]


def delete_saved_search(store: Store, search_id: int) -> bool:
    with store.transaction() as db:
        gone = db.execute("DELETE FROM saved_searches WHERE id=?", (search_id,)).rowcount
        db.execute("UPDATE match_events SET superseded_by=-1, superseded_at=? WHERE saved_search=? "
                   "AND superseded_by IS NULL", (_now(), search_id))
    return bool(gone)
