"""Progress of the long commands (push, match portfolio, shortlist, eval) with counts and an ETA.

``StageProgress`` is a context manager whose ``tick(stage, done, total)`` is the matcher's progress callback. On
a terminal it draws a rich bar per stage (description, bar, done/total, elapsed, remaining); otherwise (a pipe, a
log file, CI) it writes plain lines to stderr: one when a stage starts, then at most one a second, and one when it
ends, e.g. ``匹配专利组合：120/400（30%），已用 12s，预计剩余 28s``. Labels come from ``messages/cli.yaml``.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from matcher.i18n import DEFAULT_LANG, label, text

LINE_EVERY_S = 1.0


def _seconds(seconds: float) -> str:
    n = round(seconds)
    return f"{n // 60}m{n % 60:02d}s" if n >= 60 else f"{n}s"


class StageProgress:
    def __init__(self, lang: str = DEFAULT_LANG, console: Console | None = None) -> None:
        self.lang = lang
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self._bar: Progress | None = None
        self._tasks: dict[str, Any] = {}
        self._started: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._done: dict[str, int] = {}

    def label(self, stage: str) -> str:
        return label(f"cli.stage.{stage}", self.lang, stage)

    def __enter__(self) -> StageProgress:
        if self.live:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True)
            self._bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)

    def tick(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        first = stage not in self._started or done < self._done.get(stage, 0)  # a stage may run again (tune)
        self._done[stage] = done
        if first:
            self._started[stage] = now
            self._last.pop(stage, None)
        if self._bar is not None:
            if stage not in self._tasks:
                self._tasks[stage] = self._bar.add_task(self.label(stage), total=total or None)
            self._bar.update(self._tasks[stage], completed=done, total=total or None)
            return
        finished = total > 0 and done >= total
        if not (first or finished or now - self._last.get(stage, 0.0) >= LINE_EVERY_S):
            return
        if finished and self._last.get(stage) == -1.0:
            return  # the end was already reported
        self._last[stage] = -1.0 if finished else now
        elapsed = now - self._started[stage]
        eta = (elapsed / done * (total - done)) if done and total else None
        line = text("cli.progress.line", self.lang, stage=self.label(stage), done=done, total=total,
                    pct=round(100 * done / total) if total else 0, elapsed=_seconds(elapsed),
                    eta=_seconds(eta) if eta is not None else text("cli.progress.unknown_eta", self.lang))
        print(line, file=sys.stderr, flush=True)
