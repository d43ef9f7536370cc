"""Standing matches: every record written is matched against the other side of the market once it is searchable.

A write (``Store.write_batch``, any path: CLI, HTTP, page) leaves pending work in the store, in the same
transaction (``matcher.match_events.enqueue_written``). ``run_pending`` takes the pending work whose write a served
snapshot already contains (``served_versions``) and, per record:

- a patent is the query against the demands *active on the matching date* (posted on or before it, not expired:
  ``StandingSettings.as_of``, default today, UTC); a demand is the query against every patent;
- each result above the absolute floor becomes a match event: the calibrated relevance (``Result.relevance``, the
  learned fusion's) against ``min_relevance``; a new patent's pair must also hold from the demand's side
  (``confirm``: the patent in the demand's own top results above the floor), and its score is that demand ->
  patent relevance, the direction the ranker was calibrated on (the patent -> demand one reads 18 of 40 sampled
  bundled pairs as bad); without one, the dense cosine against ``min_dense_cosine`` (the
  push floor judged on eval/datasets/shortlist_pairs), else the BM25 score against ``min_bm25``;
- a pair that clears those floors is then read by the pair model (``matcher.pair_model``, fitted on the judged
  matchmaking pairs): the event's score becomes its pair confidence and a pair below ``min_confidence`` is not
  recorded. The relevance alone did not separate good events from bad ones on ``eval/datasets/standing_pairs``;
  a design patent (外观设计) is never matched (``evidence.answers_a_need``);
- saved searches over that kind are run once per round; a record written in the round that enters a saved search's
  top ``saved_search_k`` above its floor is a new result of that search.

Events, supersession and the pending row's removal land in one transaction per record (``match_events.complete``),
so a kill -9 at any point loses no pending work and records nothing twice. ``StandingWorker`` is the server's
background thread: bounded (``batch`` records per round, ``pause_s`` between rounds), woken by ``notify_published``
from the publish point, and it resumes whatever is pending when the server starts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from matcher import match_events as ev
from matcher.evidence import answers_a_need
from matcher.filters import DemandFilters, PatentFilters
from matcher.matching import demand_query, enterprise_key, patent_query
from matcher.pair_model import PairJudge, shipped_judge
from matcher.records import Demand, Patent
from matcher.results import Result
from matcher.search import NotIndexed, Searcher
from matcher.store import Collection, Store
from matcher.workspace import Workspace

log = logging.getLogger("pmatch.standing")


class StandingSettings(BaseSettings):
    """How standing matches are made and how many reach a feed: ``PMATCH_STANDING_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="PMATCH_STANDING_", extra="ignore")

    as_of: date | None = Field(default=None, description="The matching date (demands active on it); default today "
                                                         "(UTC). Historical data is matched as of its own date.")
    per_record: int = Field(default=20, ge=1, le=1000, description="Results fetched per record before the floor.")
    min_relevance: float = Field(default=0.5, ge=0.0, le=1.0, description=(
        "Floor on the calibrated relevance: 0.5 = the ranker judges the pair more likely relevant than not."))
    min_dense_cosine: float = Field(default=0.45, ge=-1.0, le=1.0, description=(
        "Floor when there is no calibrated relevance: the dense cosine (push's judged min_fit for use-m3)."))
    min_bm25: float = Field(default=15.0, ge=0.0, description="Floor in the BM25-only mode (raw BM25 score).")
    cap_per_enterprise: int | None = Field(default=20, ge=1, description=(
        "Feed-visible events per enterprise per cap_period; more are recorded but marked capped."))
    cap_period: Literal["day", "week", "month"] = "week"
    saved_search_k: int = Field(default=50, ge=1, le=1000, description="A saved search's depth: its top k.")
    batch: int = Field(default=100, ge=1, le=10_000, description="Records taken per round.")
    pause_s: float = Field(default=0.0, ge=0.0, description="Pause between rounds (and items) of the background "
                                                            "worker, so it yields to searches.")
    item_pause_s: float = Field(default=0.0, ge=0.0, description="Pause after each record.")
    yield_max_s: float = Field(default=5.0, ge=0.0, description=(
        "The background worker waits while searches are in flight, at most this long before each record, so the "
        "matching of a bulk load never slows the searches people are waiting for (and still advances under "
        "sustained load)."))
    explain: bool = Field(default=True, description="Record matched terms and the closest sentence per event.")
    confirm: bool = Field(default=True, description=(
        "A new patent's pair must hold from the demand's side too: the patent in the demand's top per_record above "
        "the floor. The recorded score is then the demand -> patent one, the direction the ranker is calibrated on."))
    background: bool = Field(default=True, description="A server runs the worker in the background.")
    pair_model: bool = Field(default=True, description=(
        "Judge each pair that clears the relevance floor with the pair model (matcher.pair_model, fitted on judged "
        "matchmaking pairs): the event's score is its pair confidence, and a pair below min_confidence is not "
        "recorded."))
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0, description=(
        "Floor on the pair confidence; None: the shipped model's own floor (chosen on its training pairs)."))


@dataclass
class RunReport:
    processed: int = 0
    events: int = 0
    waiting: int = 0  # pending, but not yet in a served snapshot
    failed: int = 0
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"processed": self.processed, "events": self.events, "waiting": self.waiting, "failed": self.failed,
                "seconds": round(self.seconds, 3), "by_kind": self.by_kind}


def matching_date(settings: StandingSettings) -> date:
    return settings.as_of or datetime.now(UTC).date()


def is_active(demand: Demand, on: date) -> bool:
    """Posted on or before ``on`` (or no posting date) and not expired on it."""
    return (demand.posted_date is None or demand.posted_date <= on) and \
        (demand.expiry_date is None or demand.expiry_date >= on)


def pair_score(result: Result, settings: StandingSettings) -> tuple[float, str, float]:
    """(score, evidence, floor): the calibrated relevance when the ranker has one, else the dense cosine, else BM25."""
    if result.relevance is not None:
        return float(result.relevance), "relevance", settings.min_relevance
    dense = result.retrievers.get("dense")
    if dense is not None and dense.get("score") is not None:
        return float(dense["score"]), "dense_cosine", settings.min_dense_cosine
    bm25 = result.retrievers.get("bm25") or {}
    if dense is None and bm25.get("score") is not None:
        return float(bm25["score"]), "bm25", settings.min_bm25
    return 0.0, "none", 1.0  # dense mode without a score for it, or BM25 abstained: no evidence


def served_versions(workspace: Workspace) -> dict[str, int]:
    """Collection -> data version of the served snapshot: pending work at or below it is searchable."""
    out = {}
    for kind in ("patents", "demands"):
        manifest = workspace.current_manifest(kind)  # type: ignore[arg-type]
        if manifest is not None:
            out[kind] = int(manifest.data_version)
    return out


def _bodies(store: Store, kind: Collection, ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" for _ in chunk)
        out.update(store._db.execute(f"SELECT id, record FROM {kind} WHERE id IN ({marks})", chunk).fetchall())
    return out


def _explanation(result: Result, direction: str) -> dict[str, Any]:
    out: dict[str, Any] = {"direction": direction, "retrievers": result.retrievers}
    if result.explanation:
        ex = result.explanation
        out["matched"] = {k: ex[k] for k in ("terms", "fields", "closest_sentence") if k in ex}
    return out


class _Round:
    """One round of pending work: the searcher, the date, and the saved searches' results (run once per round)."""

    def __init__(self, searcher: Searcher, store: Store, settings: StandingSettings) -> None:
        self.searcher, self.store, self.settings = searcher, store, settings
        self.on = matching_date(settings)
        self._saved: dict[str, list[tuple[ev.SavedSearch, dict[str, tuple[float, str, Result]]]]] = {}
        self._reverse: dict[str, dict[str, tuple[float, str, Result]]] = {}
        self.judge: PairJudge | None = shipped_judge(searcher.vector_cache()) if settings.pair_model else None
        day = self.on.isoformat()
        self.active_demands = int(store._db.execute(
            "SELECT COUNT(*) FROM demands WHERE (posted_date IS NULL OR posted_date <= ?) "
            "AND (expiry_date IS NULL OR expiry_date >= ?)", (day, day)).fetchone()[0])

    def other_side_ready(self, kind: Collection) -> bool | None:
        """True: searchable; None: the other side is empty (nothing to match); False: not yet indexed."""
        other: Collection = "demands" if kind == "patents" else "patents"
        try:
            self.searcher.snapshot(other)
            return True
        except NotIndexed:
            return None if self.store.count(other) == 0 else False

    def demand_side(self, demand: Demand) -> dict[str, tuple[float, str, Result]]:
        """Patent id -> (score, evidence, result) for the patents the demand finds above the floor (once a round)."""
        if demand.id not in self._reverse:
            # not explained: the event keeps the patent side's explanation (explaining 20 patents per candidate
            # demand would cost more than the match)
            results = self.searcher.search_patents(demand_query(demand), self.settings.per_record)
            found = {}
            for r in results:
                score, evidence, floor = pair_score(r, self.settings)
                if score >= floor:
                    found[r.id] = (score, evidence, r)
            self._reverse[demand.id] = found
        return self._reverse[demand.id]

    def saved_results(self, kind: Collection) -> list[tuple[ev.SavedSearch, dict[str, tuple[float, str, Result]]]]:
        if kind not in self._saved:
            found = []
            for saved in ev.saved_searches(self.store, kind=kind):
                try:
                    results = _saved_search_results(self.searcher, saved, self.settings)
                except (NotIndexed, ValueError) as exc:
                    log.warning("saved search %s: %s", saved.id, exc)
                    continue
                found.append((saved, results))
            self._saved[kind] = found
        return self._saved[kind]


def _saved_search_results(searcher: Searcher, saved: ev.SavedSearch, settings: StandingSettings
                          ) -> dict[str, tuple[float, str, Result]]:
    """Id -> (score, evidence, result) for a saved search's top k that clear its floor."""
    if saved.kind == "patents":
        results = searcher.search_patents(saved.query, settings.saved_search_k,
                                          PatentFilters.model_validate(saved.filters))
    else:
        results = searcher.search_demands(saved.query, settings.saved_search_k,
                                          DemandFilters.model_validate(saved.filters))
    out = {}
    for r in results:
        score, evidence, floor = pair_score(r, settings)
        if saved.min_score is not None and evidence == "relevance":
            floor = saved.min_score
        if score >= floor:
            out[r.id] = (score, evidence, r)
    return out


def judged(rnd: _Round, events: list[ev.NewEvent], pairs: list[tuple[Demand, Patent]]) -> list[ev.NewEvent]:
    """The events whose pair the pair model finds at or above the floor, scored by its confidence (the relevance
    that let them through kept in the explanation); all of them, unchanged, without the model."""
    if rnd.judge is None or not events:
        return events
    out = []
    for i, confidence in rnd.judge.passing(pairs, rnd.settings.min_confidence):
        e = events[i]
        e.explanation = {**e.explanation, "relevance": round(e.score, 6), "relevance_evidence": e.evidence,
                         "pair_confidence": round(confidence, 6)}
        e.score, e.evidence = confidence, "pair_confidence"
        out.append(e)
    return out


def match_record(rnd: _Round, item: ev.PendingItem) -> tuple[str | None, list[ev.NewEvent]]:
    """(the stored record's version hash or None if it is gone, the events it makes)."""
    searcher, store, settings = rnd.searcher, rnd.store, rnd.settings
    body = _bodies(store, item.kind, [item.record_id]).get(item.record_id)
    if body is None:
        return None, []
    mine = ev.record_hash(body)
    events: list[ev.NewEvent] = []
    pairs: list[tuple[Demand, Patent]] = []  # events[i]'s records, for the pair model
    ready = rnd.other_side_ready(item.kind)
    if item.kind == "patents":
        patent = Patent.model_validate_json(body)
        # no demand is active on the date: nothing to search; a design patent answers no need (``evidence``)
        if ready and rnd.active_demands and answers_a_need(patent):
            results = searcher.search_demands(patent_query(patent, searcher.config.dense_text_chars),
                                              settings.per_record, DemandFilters(active_on=rnd.on),
                                              explain=settings.explain)
            hashes = {k: ev.record_hash(v) for k, v in _bodies(store, "demands", [r.id for r in results]).items()}
            for r in results:
                demand = r.record
                assert isinstance(demand, Demand)
                score, evidence, floor = pair_score(r, settings)
                if score < floor or not is_active(demand, rnd.on) or r.id not in hashes:
                    continue
                explanation = _explanation(r, "patent->demands")
                if settings.confirm:
                    confirmed = rnd.demand_side(demand).get(patent.id)
                    if confirmed is None:
                        continue  # the demand does not find this patent: a one-sided match is not recorded
                    explanation = {**explanation, "confirmed_by": {
                        "direction": "demand->patents", "score": round(confirmed[0], 6), "evidence": confirmed[1],
                        "retrievers": confirmed[2].retrievers}, "found_score": round(score, 6)}
                    score, evidence = confirmed[0], confirmed[1]
                events.append(ev.NewEvent(patent.id, demand.id, score, evidence, "patent->demands", explanation,
                                          mine, hashes[r.id], enterprise=enterprise_key(demand)))
                pairs.append((demand, patent))
    else:
        demand = Demand.model_validate_json(body)
        if ready and is_active(demand, rnd.on):
            results = searcher.search_patents(demand_query(demand), settings.per_record, explain=settings.explain)
            hashes = {k: ev.record_hash(v) for k, v in _bodies(store, "patents", [r.id for r in results]).items()}
            for r in results:
                score, evidence, floor = pair_score(r, settings)
                assert isinstance(r.record, Patent)
                if score < floor or r.id not in hashes or not answers_a_need(r.record):
                    continue
                events.append(ev.NewEvent(r.id, demand.id, score, evidence, "demand->patents",
                                          _explanation(r, "demand->patents"), hashes[r.id], mine,
                                          enterprise=enterprise_key(demand)))
                pairs.append((demand, r.record))
    events = judged(rnd, events, pairs)
    for saved, found in rnd.saved_results(item.kind):
        if item.record_id not in found or item.data_version <= saved.created_version:
            continue  # not in its results, or there when it was saved (not new to it)
        score, evidence, r = found[item.record_id]
        patent_id, demand_id = (item.record_id, None) if item.kind == "patents" else (None, item.record_id)
        events.append(ev.NewEvent(patent_id, demand_id, score, evidence, "saved_search",
                                  {**_explanation(r, "saved_search"), "query": saved.query},
                                  mine if item.kind == "patents" else None,
                                  mine if item.kind == "demands" else None,
                                  enterprise=saved.owner if saved.owner_type == "enterprise" else None,
                                  saved_search=saved.id))
    return mine, events


def run_pending(searcher: Searcher, settings: StandingSettings | None = None, limit: int | None = None,
                stop: threading.Event | None = None, progress: Callable[[int, int], None] | None = None,
                before_item: Callable[[], None] | None = None) -> RunReport:
    """Match pending records that a served snapshot contains, in rounds of ``settings.batch``; returns what it did.
    ``limit`` bounds the records processed (None: until nothing searchable is pending); ``before_item`` is called
    before each record (the server's worker waits there while searches are in flight)."""
    settings = settings or StandingSettings()
    with searcher.workspace.open_store() as store:  # its own connection: the searcher's serves reads elsewhere
        return _run_pending(searcher, store, settings, limit, stop, progress, before_item)


def _run_pending(searcher: Searcher, store: Store, settings: StandingSettings, limit: int | None,
                 stop: threading.Event | None, progress: Callable[[int, int], None] | None,
                 before_item: Callable[[], None] | None = None) -> RunReport:
    report = RunReport()
    started = time.perf_counter()
    while limit is None or report.processed < limit:
        if stop is not None and stop.is_set():
            break
        ready = served_versions(searcher.workspace)
        size = settings.batch if limit is None else min(settings.batch, limit - report.processed)
        items = ev.pending(store, ready_versions=ready, limit=size)
        if not items:
            break
        rnd = _Round(searcher.pinned([k for k in ("patents", "demands") if k in ready]),  # type: ignore[misc]
                     store, settings)
        progressed = False
        for item in items:
            if before_item is not None:
                before_item()
            if stop is not None and stop.is_set():
                break
            try:
                if rnd.other_side_ready(item.kind) is False:
                    report.waiting += 1
                    continue
                mine, events = match_record(rnd, item)
                n = ev.complete(store, item, mine, events, settings.cap_per_enterprise, settings.cap_period)
            except Exception as exc:  # one bad record must not stop the others: counted, retried, then left
                log.exception("standing match of %s %s failed", item.kind, item.record_id)
                ev.fail(store, item, f"{type(exc).__name__}: {exc}")
                report.failed += 1
                progressed = True
                continue
            progressed = True
            report.processed += 1
            report.events += n
            report.by_kind[item.kind] = report.by_kind.get(item.kind, 0) + 1
            if progress:
                progress(report.processed, report.processed + sum(ev.pending_count(store).values()))
            if settings.item_pause_s:
                time.sleep(settings.item_pause_s)
        if not progressed:
            break
        if settings.pause_s:
            time.sleep(settings.pause_s)
    report.seconds = time.perf_counter() - started
    return report


class StandingWorker:
    """The server's background thread for standing matches: drains pending work at start, then whenever a snapshot
    is published (``notify_published``), and every ``poll_s`` in case another process wrote or published."""

    def __init__(self, searcher: Searcher, settings: StandingSettings | None = None, poll_s: float = 30.0,
                 busy: Callable[[], bool] | None = None) -> None:
        self.searcher = searcher
        self.settings = settings or StandingSettings()
        self.poll_s = poll_s
        self.busy = busy  # True while searches are in flight: the worker yields to them (``yield_max_s``)
        self.yielded_s = 0.0  # time spent waiting for searches to finish
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: RunReport | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pmatch-standing", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _yield(self) -> None:
        """Wait while searches are in flight (at most ``yield_max_s``): people waiting for answers come first."""
        if self.busy is None:
            return
        started = time.monotonic()
        deadline = started + self.settings.yield_max_s
        while self.busy() and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.02)
        self.yielded_s += time.monotonic() - started

    def notify_published(self, kind: Collection | None = None) -> None:
        """A snapshot was published: what its writes left pending can be matched now."""
        self._wake.set()

    def status(self) -> dict[str, Any]:
        last = self.last.to_dict() if self.last else None
        return {"pending": ev.pending_count(self.searcher.store), "last_run": last, "last_error": self.last_error}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.last = run_pending(self.searcher, self.settings, stop=self._stop, before_item=self._yield)
                self.last_error = None
            except Exception as exc:
                log.exception("standing matches failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
            self._wake.wait(self.poll_s)
            self._wake.clear()


def notify_published(worker: StandingWorker | None, kind: Collection) -> None:
    """The publish point's one call: wake the worker (if this process runs one)."""
    if worker is not None:
        worker.notify_published(kind)
