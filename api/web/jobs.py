"""Runs that take longer than a request (event shortlists, portfolio pushes): started from a form, computed in a
background thread one at a time, their progress read by the job's page (which refreshes itself until done).

A job's id is a random token, so its page and downloads can be shared by link but not guessed. The last
``KEEP`` jobs are kept in memory (a restart forgets them; the results are downloads, not records).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from matcher.chains import ChainError
from matcher.i18n import LocalisedError

KEEP = 20
State = Literal["queued", "running", "done", "failed"]
Progress = Callable[[str, int, int], None]


@dataclass
class Job:
    id: str
    kind: str  # shortlist | push
    label: str
    state: State = "queued"
    stage: str = ""
    done: int = 0
    total: int = 0
    error: str | None = None  # why it failed, in English (logs)
    failure: LocalisedError | ChainError | None = None  # the same, for the page to say in its language
    result: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    seconds: float | None = None

    def error_text(self, lang: str) -> str | None:
        """Why the job failed, in ``lang`` when the error is a catalogue message."""
        return self.failure.message(lang) if self.failure is not None else self.error

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


class Jobs:
    def __init__(self, keep: int = KEEP) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Semaphore(1)  # runs share the CPU with searches: never two at once
        self.keep = keep

    def submit(self, kind: str, label: str, run: Callable[[Progress], Any], params: dict[str, Any]) -> Job:
        job = Job(secrets.token_urlsafe(12), kind, label, params=params)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
        threading.Thread(target=self._run, args=(job, run), name=f"pmatch-web-{kind}", daemon=True).start()
        return job

    def get(self, job_id: str, kind: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.kind == kind else None

    def _run(self, job: Job, run: Callable[[Progress], Any]) -> None:
        def progress(stage: str, done: int, total: int) -> None:
            job.stage, job.done, job.total = stage, done, total

        with self._one_at_a_time:
            job.state = "running"
            started = time.perf_counter()
            try:
                job.result = run(progress)
                job.state = "done"
            except Exception as exc:
                job.error = str(exc) or type(exc).__name__
                job.failure = exc if isinstance(exc, LocalisedError | ChainError) else None
                job.state = "failed"
            job.seconds = round(time.perf_counter() - started, 1)
