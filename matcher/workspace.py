"""Where a patent-match installation keeps its data: one folder with the store and index snapshots.

    HOME/store.sqlite                  records, ingest batches, index manifests
    HOME/indexes/<kind>/CURRENT        name of the snapshot being served (replaced atomically)
    HOME/indexes/<kind>/<snapshot>/    manifest.json, bm25/, facets/, dense-<model>/

A new snapshot is built beside the served one (in ``.building-<pid>-<name>``) and published by replacing CURRENT
in one ``os.replace``, so a reader always opens a complete snapshot: the old one or the new one, never a mix.
A build killed half-way leaves its ``.building-*`` folder behind; the next build of the kind removes every one
whose process is gone.
HOME is ``--home``, else ``$PMATCH_HOME``, else ``./.pmatch``. Embedding vectors are cached apart from any one
HOME (``$PMATCH_VECTOR_CACHE``, else ``vectors.sqlite`` in the model cache folder), keyed by model and text,
so every workspace and every evaluation run reuses them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from indexes.settings import default_cache_dir
from matcher.settings import engine_settings
from matcher.snapshot import SnapshotFormatError, SnapshotManifest
from matcher.store import Collection, Store

KEEP_SNAPSHOTS = 2
LEGACY_LEFTOVER_SECONDS = 3600  # a .building-* folder that names no process is a leftover once this old
_OWNED = re.compile(r"^\.(?:building-|CURRENT\.)(\d+)(?:-|$)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def default_home() -> Path:
    """``PMATCH_HOME`` (``EngineSettings.home``), else ``./.pmatch``."""
    return engine_settings().home


class Workspace:
    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()

    @property
    def store_path(self) -> Path:
        return self.home / "store.sqlite"

    @property
    def vector_cache_path(self) -> Path:
        return engine_settings().vector_cache or default_cache_dir() / "vectors.sqlite"

    def exists(self) -> bool:
        """Whether HOME holds a workspace (a store). Read commands refuse one that does not, rather than create it."""
        return self.store_path.is_file()

    def open_store(self) -> Store:
        return Store(self.store_path)

    def index_root(self, kind: Collection) -> Path:
        return self.home / "indexes" / kind

    def current_snapshot(self, kind: Collection) -> Path | None:
        pointer = self.index_root(kind) / "CURRENT"
        if not pointer.is_file():
            return None
        path = self.index_root(kind) / pointer.read_text("utf-8").strip()
        return path if (path / "manifest.json").is_file() else None

    def current_manifest(self, kind: Collection) -> SnapshotManifest | None:
        """The served snapshot's manifest; None when there is none, or it is of a format this build cannot read
        (a full rebuild replaces it)."""
        snapshot = self.current_snapshot(kind)
        if snapshot is None:
            return None
        try:
            return SnapshotManifest.read(snapshot)
        except SnapshotFormatError:
            return None

    def building_dir(self, kind: Collection, name: str) -> Path:
        """Where this process builds snapshot ``name`` before publishing it (the pid says whose it is)."""
        return self.index_root(kind) / f".building-{os.getpid()}-{name}"

    def prune_leftovers(self, kind: Collection) -> list[Path]:
        """Remove what killed builds left: ``.building-*`` folders and ``.CURRENT.*`` files of processes that are
        gone (and unowned ``.building-*`` folders over an hour old). Returns what was removed."""
        root = self.index_root(kind)
        if not root.is_dir():
            return []
        removed = []
        for path in root.iterdir():
            if not path.name.startswith((".building-", ".CURRENT.")):
                continue
            owner = _OWNED.match(path.name)
            if owner:
                if int(owner.group(1)) == os.getpid() or _alive(int(owner.group(1))):
                    continue
            elif time.time() - path.stat().st_mtime < LEGACY_LEFTOVER_SECONDS:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        return removed

    def publish(self, kind: Collection, snapshot: Path) -> None:
        """Make ``snapshot`` the served one (atomic), then drop all but the newest few old snapshots."""
        root = self.index_root(kind)
        tmp = root / f".CURRENT.{os.getpid()}"
        tmp.write_text(snapshot.name, encoding="utf-8")
        os.replace(tmp, root / "CURRENT")
        snapshots = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                            and (p / "manifest.json").is_file()),
                           key=lambda p: p.stat().st_mtime)
        for old in snapshots[:-KEEP_SNAPSHOTS]:
            if old != snapshot:
                shutil.rmtree(old, ignore_errors=True)
