"""Named points inside an index flush, merge or full build where a test can stop the process and kill it there.

With ``PMATCH_TEST_PAUSE_AT`` (``EngineSettings.test_pause_at``) naming one of ``POINTS``, a process reaching that
point (the first time) writes its pid to ``indexes/.paused-<point>`` under the data folder and sleeps while that
file exists (at most ``MAX_PAUSE_S``), so ``tests/test_kill9.py`` can ``kill -9`` it exactly there instead of hoping
a timer lands inside a flush that takes a few milliseconds, or remove the file to let it go on (a race, made to
happen). Unset, as everywhere outside those tests, ``pause`` returns at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from matcher.settings import engine_settings

POINTS = (
    "segment-saved",  # a new segment's files written in its .building-* folder, not yet beside the others
    "segment-placed",  # the segment renamed into segments/, no snapshot names it yet
    "snapshot-written",  # the new snapshot folder complete, CURRENT still names the old one
    "published",  # CURRENT replaced, segments no snapshot uses not yet dropped
)
MAX_PAUSE_S = 120.0  # a test that forgot to kill its process does not hang for ever
_reached: set[str] = set()  # each point stops a process once


def pause(point: str, home: Path) -> None:
    """Stop here when the test setting names ``point`` (see the module docstring)."""
    if point in _reached or engine_settings().test_pause_at != point:
        return
    _reached.add(point)
    marker = home / "indexes" / f".paused-{point}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()), encoding="utf-8")
    deadline = time.monotonic() + MAX_PAUSE_S
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
