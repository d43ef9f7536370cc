"""API keys for the HTTP service, kept hashed in the workspace's SQLite file (table ``api_keys``).

A key reads ``pmk_<key id>_<secret>``: the id finds the row, the secret is checked against
``sha256(salt + secret)`` with a per-key random salt, compared in constant time. The secret is 32 random bytes,
so a fast hash is safe (nothing to brute-force); the plain key is shown once, at creation, and never stored.
The table lives beside the records, on its own connection: the record store does not know about it. It is
created with the first key, so a server that only reads never changes the workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from matcher.i18n import LocalisedError

PREFIX = "pmk"
_KEY = re.compile(rf"^{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
_NAME = re.compile(r"^[\w.@-]{1,64}$")
_SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, salt TEXT NOT NULL, hash TEXT NOT NULL,
    created_at TEXT NOT NULL, revoked_at TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
"""


class KeyRefused(LocalisedError, ValueError):
    """A key name that is malformed or already taken by an active key."""


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    created_at: str
    revoked_at: str | None


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class KeyStore:
    """Create, check, list and revoke keys. Thread-safe (one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows of a read; none while no key was ever created (the table does not exist yet)."""
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, name: str) -> str:
        """A new key for ``name`` (letters, digits, ``_.@-``; unique among active keys). Returns the plain key."""
        if not _NAME.match(name):
            raise KeyRefused("http.key_name_invalid", name=repr(name))
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        with self._lock:
            self._db.executescript(_SCHEMA)
            try:
                self._db.execute("INSERT INTO api_keys (key_id, name, salt, hash, created_at) VALUES (?,?,?,?,?)",
                                 (key_id, name, salt, _digest(salt, secret), _now()))
            except sqlite3.IntegrityError:
                raise KeyRefused("http.key_name_taken", name=repr(name)) from None
        return f"{PREFIX}_{key_id}_{secret}"

    def verify(self, key: str) -> str | None:
        """The name of the active key ``key``, or None."""
        m = _KEY.match(key.strip())
        if m is None:
            return None
        key_id, secret = m.groups()
        rows = self._rows("SELECT name, salt, hash FROM api_keys WHERE key_id=? AND revoked_at IS NULL", (key_id,))
        if not rows:
            return None
        name, salt, expected = (str(x) for x in rows[0])
        return name if hmac.compare_digest(_digest(salt, secret), expected) else None

    def revoke(self, name: str) -> bool:
        if not self._rows("SELECT 1 FROM api_keys WHERE name=? AND revoked_at IS NULL", (name,)):
            return False
        with self._lock:
            self._db.execute("UPDATE api_keys SET revoked_at=? WHERE name=? AND revoked_at IS NULL", (_now(), name))
        return True

    def list(self) -> list[KeyInfo]:
        rows = self._rows("SELECT key_id, name, created_at, revoked_at FROM api_keys ORDER BY created_at")
        return [KeyInfo(str(r[0]), str(r[1]), str(r[2]), None if r[3] is None else str(r[3])) for r in rows]

    def active_count(self) -> int:
        rows = self._rows("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
        return int(str(rows[0][0])) if rows else 0


def keys_create(home: str | Path | None, name: str) -> str:
    """Create an API key called ``name`` in the workspace at ``home``; returns the plain key (shown once)."""
    from matcher.workspace import Workspace

    with KeyStore(Workspace(home).store_path) as keys:
        return keys.create(name)


def keys_revoke(home: str | Path | None, name: str) -> bool:
    from matcher.workspace import Workspace

    with KeyStore(Workspace(home).store_path) as keys:
        return keys.revoke(name)


def keys_list(home: str | Path | None) -> list[dict[str, object]]:
    from matcher.workspace import Workspace

    with KeyStore(Workspace(home).store_path) as keys:
        return [vars(k) for k in keys.list()]
