"""The post-publish hook: code that must react when written records become searchable (standing matches, feeds).

Register a callback with ``on_searchable(callback)``; it is called with a ``Searchable`` event in the process that
serves searches, after a snapshot holding the write was published and the searcher opened it (the server's
background indexer), or right after ``pmatch ingest`` published it. Callbacks run one after another in the
indexer's thread: keep them short (queue work elsewhere); an exception is logged and does not stop the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from matcher.store import Collection

log = logging.getLogger("pmatch.searchable")


@dataclass(frozen=True)
class Searchable:
    """Records of ``kind`` that became searchable (``added``: new or changed) or stopped being (``deleted``) in
    snapshot ``snapshot``. ``full``: a full build published it (``added`` is then empty: every record is new)."""

    kind: Collection
    snapshot: Path
    added: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    full: bool = False
    at: float = field(default_factory=time.time)  # when searches began to see it (epoch seconds)


Callback = Callable[[Searchable], None]
_callbacks: list[Callback] = []
_lock = threading.Lock()


def on_searchable(callback: Callback) -> Callback:
    """Call ``callback(event)`` whenever written records become searchable (usable as a decorator)."""
    with _lock:
        if callback not in _callbacks:
            _callbacks.append(callback)
    return callback


def remove_searchable_hook(callback: Callback) -> None:
    with _lock:
        if callback in _callbacks:
            _callbacks.remove(callback)


def notify_searchable(event: Searchable) -> None:
    """Run every registered callback with ``event`` (called by the indexers, not by hooks' owners)."""
    with _lock:
        callbacks = list(_callbacks)
    for callback in callbacks:
        try:
            callback(event)
        except Exception:
            log.exception("searchable hook %r failed for %s", callback, event.snapshot.name)
