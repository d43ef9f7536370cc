"""Feeds: an enterprise's or a patent holder's new match events since a cursor, page by page.

An enterprise's feed holds the events of its demands (a demand that names no enterprise is its own, keyed
``(demand ID)``, as push keys it) and the new results of its saved searches over patents. A holder's feed holds
the events of the patents it is an applicant of and the new results of its saved searches over demands. Names
are compared by their holder key (``matcher.holders.name_key``: width, case, punctuation and legal form do not
count), so ``华为技术`` reads the feed of ``华为技术有限公司`` and ``nvidia corp`` that of ``NVIDIA CORPORATION``.
Superseded events and events over the enterprise's cap are left out (``include_capped`` shows the latter).

The cursor is opaque to clients: the feed it belongs to and the last event id seen, base64url JSON. Event ids
only grow in commit order (``matcher.match_events``), so reading ``id > cursor`` page after page has no gaps and
no repeats, however many events are recorded meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from matcher.holders import name_key
from matcher.records import Demand, Patent
from matcher.store import Store

Owner = Literal["enterprise", "holder"]
MAX_PAGE = 500
CURSOR_VERSION = 1


class BadCursor(ValueError):
    pass


def encode_cursor(owner_type: Owner, name: str, last_id: int) -> str:
    raw = json.dumps({"v": CURSOR_VERSION, "o": owner_type, "n": name, "a": last_id}, ensure_ascii=False,
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, owner_type: Owner, name: str) -> int:
    """The last event id the cursor saw; a cursor of another feed or not one of ours is refused."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8"))
        last = data["a"]
        ok = data.get("v") == CURSOR_VERSION and isinstance(last, int) and last >= 0
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise BadCursor("not a feed cursor") from None
    if not ok:
        raise BadCursor("not a feed cursor")
    if data.get("o") != owner_type or data.get("n") != name:
        raise BadCursor("the cursor belongs to another feed")
    return int(last)


@dataclass
class FeedPage:
    owner_type: Owner
    name: str
    items: list[dict[str, Any]]
    next_cursor: str  # give it back to read on; when nothing is new it still marks where this page ended
    has_more: bool

    def to_dict(self) -> dict[str, Any]:
        return {"owner_type": self.owner_type, "name": self.name, "items": self.items,
                "next_cursor": self.next_cursor, "has_more": self.has_more}


_COLS = ("e.id, e.patent, e.demand, e.saved_search, e.enterprise, e.score, e.evidence, e.direction, e.explanation, "
         "e.created_at, e.write_id, e.capped")


def read_feed(store: Store, owner_type: Owner, name: str, cursor: str | None = None, since: date | None = None,
              limit: int = 50, include_capped: bool = False, min_score: float | None = None) -> FeedPage:
    """One page of the feed after ``cursor`` (or from the start), oldest first."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be within 1..{MAX_PAGE}")
    after = decode_cursor(cursor, owner_type, name) if cursor else 0
    where = ["e.id > ?", "e.superseded_by IS NULL"]
    args: list[Any] = [after]
    key = name_key(name)
    if owner_type == "enterprise":  # its saved searches' events carry its name too
        spellings = [e for (e,) in store._db.execute("SELECT DISTINCT enterprise FROM match_events "
                                                    "WHERE enterprise IS NOT NULL") if _same(e, name, key)]
        where.append(f"e.enterprise IN ({','.join('?' for _ in spellings)})")
        args += spellings
    else:
        saved = [sid for sid, owner in store._db.execute(
            "SELECT id, owner FROM saved_searches WHERE owner_type='holder'") if _same(owner, name, key)]
        field, value = ("applicant_key", key) if key else ("applicants", name)
        where.append(
            "((e.saved_search IS NULL AND e.patent IN (SELECT p.id FROM record_values v JOIN patents p "
            f"ON p.rid = v.rid WHERE v.kind='patents' AND v.field=? AND v.value = ?)) "
            f"OR e.saved_search IN ({','.join('?' for _ in saved)}))")
        args += [field, value, *saved]
    if not include_capped:
        where.append("e.capped = 0")
    if since is not None:
        where.append("e.created_at >= ?")
        args.append(since.isoformat())
    if min_score is not None:
        where.append("e.score >= ?")
        args.append(min_score)
    sql = f"SELECT {_COLS} FROM match_events e WHERE {' AND '.join(where)} ORDER BY e.id LIMIT ?"
    rows = store._db.execute(sql, (*args, limit + 1)).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    items = _items(store, rows)
    last = rows[-1][0] if rows else after
    return FeedPage(owner_type, name, items, encode_cursor(owner_type, name, last), has_more)


def _same(stored: str, name: str, key: str) -> bool:
    """One owner: the same holder key, or the same name where the name has no key (nothing but a legal form)."""
    return name_key(stored) == key if key else stored == name


def _items(store: Store, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    patents = store.get_many("patents", sorted({r[1] for r in rows if r[1]}))
    demands = store.get_many("demands", sorted({r[2] for r in rows if r[2]}))
    saved_ids = sorted({r[3] for r in rows if r[3] is not None})
    saved: dict[int, dict[str, Any]] = {}
    if saved_ids:
        marks = ",".join("?" for _ in saved_ids)
        for sid, sname, query in store._db.execute(
                f"SELECT id, name, query FROM saved_searches WHERE id IN ({marks})", saved_ids):
            saved[sid] = {"id": sid, "name": sname, "query": query}
    out = []
    for (eid, pid, did, sid, enterprise, score, evidence, direction, explanation, created, write_id, capped) in rows:
        patent, demand = patents.get(pid) if pid else None, demands.get(did) if did else None
        out.append({
            "event_id": eid, "created_at": created, "score": score, "evidence": evidence, "direction": direction,
            "enterprise": enterprise, "write_id": write_id, "capped": bool(capped),
            "patent": _patent(pid, patent) if pid else None, "demand": _demand(did, demand) if did else None,
            "saved_search": saved.get(sid, {"id": sid}) if sid is not None else None,
            "explanation": json.loads(explanation),
        })
    return out


def _patent(pid: str, p: Patent | Demand | None) -> dict[str, Any]:
    if not isinstance(p, Patent):
        return {"id": pid}
    return {"id": pid, "title": p.title, "applicants": p.applicants, "open_licence": p.open_licence,
            "price": p.price, "kind": p.kind, "language": p.language}


def _demand(did: str, d: Patent | Demand | None) -> dict[str, Any]:
    if not isinstance(d, Demand):
        return {"id": did}
    return {"id": did, "title": d.title, "enterprise": d.enterprise, "region": d.region,
            "posted_date": d.posted_date.isoformat() if d.posted_date else None,
            "expiry_date": d.expiry_date.isoformat() if d.expiry_date else None}


def feed_owners(store: Store, owner_type: Owner, limit: int = 100) -> list[tuple[str, int]]:
    """Feeds with live, visible events: (name, events), most first (for the page's picker and the figures)."""
    if owner_type == "enterprise":
        # one row per name key, as read_feed reads them, named by its first spelling
        sql = ("SELECT enterprise, COUNT(*) n FROM match_events WHERE superseded_by IS NULL AND capped=0 "
               "AND enterprise IS NOT NULL GROUP BY enterprise ORDER BY enterprise")
        merged: dict[str, list[Any]] = {}
        for name, n in store._db.execute(sql):
            merged.setdefault(name_key(name) or name, [name, 0])[1] += n
        return sorted(((str(a), int(n)) for a, n in merged.values()), key=lambda r: (-r[1], r[0]))[:limit]
    # one row per holder key, named by one of its spellings
    sql = ("SELECT MIN(a.value), COUNT(DISTINCT e.id) n FROM match_events e JOIN patents p ON p.id = e.patent "
           "JOIN record_values k ON k.kind='patents' AND k.rid = p.rid AND k.field='applicant_key' "
           "JOIN record_values a ON a.kind='patents' AND a.rid = p.rid AND a.field='applicants' AND a.pos = k.pos "
           "WHERE e.superseded_by IS NULL AND e.saved_search IS NULL GROUP BY k.value ORDER BY n DESC, 1 LIMIT ?")
    return [(str(a), int(n)) for a, n in store._db.execute(sql, (limit,))]
