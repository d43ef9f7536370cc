"""The batch jobs, partitioned for an engine (``matcher.engine``) and resumable (``matcher.jobs``).

Each job calls the project's own functions on one partition at a time and changes nothing about what they compute:

- **embed** (``embed_job``): texts missing from the vector cache, ``PARTITION_TEXTS`` a partition, each encoded
  with ``Embedder.encode_documents`` (``EmbedWorker``: the model is loaded once per worker). Once every partition
  is done the vectors go into the vector cache, so an index build that follows embeds nothing.
- **index build** (``build_index``): with ``--engine ray`` the embed job fills the cache first (dense texts, then
  titles: ``embed_titles``); the snapshot is
  then built by ``matcher.full_build.build_snapshot`` as always (the same index files).
- **shortlist** (``shortlist_job``): the chain is selected on the driver (``select_chain``); the selected demands
  are scored ``PARTITION_DEMANDS`` a partition by ``matcher.shortlist.score_pairs`` (``ScoreWorker``: a searcher
  over the published snapshot, opened once per worker); assignment and explanations follow on the driver, in
  ``build_shortlist``, which takes this module's scorer through its ``scorer`` hook.
- **push** (``push_job``): the portfolio's patents are matched ``PARTITION_PATENTS`` a partition by
  ``matcher.matching.match_patent`` (``PortfolioWorker``), through ``build_push``'s ``matches`` hook.

A partition's result is plain data (float32 vectors as ``.npy``, candidates as JSON: floats round-trip exactly), so
the assembled result equals an uninterrupted local run: same ids, scores within float tolerance (the Ray workers'
one-thread BLAS may sum in another order than the driver's).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexes.embedders import load_embedder
from indexes.vector_cache import VectorCache, text_hash
from matcher.chains import Chain
from matcher.config import RankerConfig
from matcher.engine import EngineSpec, EngineUnavailable, OnResult, Payload, WorkerSpec
from matcher.filters import DemandFilters
from matcher.full_build import build_snapshot
from matcher.jobs import PartitionJob
from matcher.matching import match_patent
from matcher.push import Push, PushOptions, build_push
from matcher.records import Demand, Patent
from matcher.results import Result
from matcher.search import Searcher
from matcher.shortlist import Candidate, Selection, Shortlist, ShortlistOptions, build_shortlist
from matcher.shortlist import score_pairs as shortlist_score_pairs
from matcher.store import COLLECTIONS, Collection
from matcher.texts import dense_text, title_text
from matcher.workspace import Workspace

PARTITION_TEXTS = 256  # = the vector cache's own chunk, so a local job encodes exactly the batches a build would
PARTITION_DEMANDS = 32
PARTITION_PATENTS = 16
Progress = Callable[[str, int, int], None]


def jobs_root(workspace: Workspace) -> Path:
    return workspace.home / "jobs"


def _digest(items: Sequence[Any]) -> str:
    return hashlib.sha1(json.dumps(list(items), ensure_ascii=False).encode("utf-8")).hexdigest()


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


@dataclass
class JobReport:
    """What a batch job did: its partitions (resumed from an earlier run, computed now) and where."""

    what: str
    engine: dict[str, Any]
    job: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, **self.engine, **self.job, "seconds": round(self.seconds, 3), **self.details}


def ray_engine() -> Any:
    """``matcher.ray_engine``, imported only when a job asks for Ray (an optional extra)."""
    import matcher.ray_engine

    return matcher.ray_engine


def run_partitions(spec: EngineSpec, job: PartitionJob, worker: WorkerSpec, payload: Payload,
                   on_result: OnResult | None = None) -> None:
    """Compute every partition of ``job`` not done yet with ``worker``, recording each in ``job`` (and telling
    ``on_result``) as it finishes. Finished partitions are never computed again."""
    pending = job.pending()
    if not pending:
        return

    def record(part: int, result: Any, by: str) -> None:
        job.write(part, result, by)
        if on_result:
            on_result(part, result)

    if spec.name == "ray":
        ray_engine().run_on_ray(spec, pending, worker, payload, record)
        return
    instance = worker.build()
    by = f"local:{os.getpid()}"
    for part in pending:
        record(part, instance(payload(part)), by)


# --- embedding --------------------------------------------------------------------------------------------
class EmbedWorker:
    """Encodes partitions of document texts with one loaded model (checked against the driver's fingerprint)."""

    def __init__(self, model: str, fingerprint: str) -> None:
        self.embedder = load_embedder(model)
        if self.embedder.fingerprint != fingerprint:
            raise EngineUnavailable("engine.model_differs", model=model, found=self.embedder.fingerprint,
                                    expected=fingerprint)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.encode_documents(texts), dtype=np.float32)


def embed_job(workspace: Workspace, model: str, texts: Sequence[str], spec: EngineSpec, source: dict[str, Any],
              partition_size: int = PARTITION_TEXTS, progress: Progress | None = None) -> JobReport:
    """Put the vectors of every text of ``texts`` missing from the vector cache into it, as a resumable job.
    ``source`` says what the texts are (kind and store version, or a file), for the job's manifest."""
    started = time.perf_counter()
    embedder = load_embedder(model)
    hashes = [text_hash(t) for t in texts]
    unique = dict(zip(hashes, texts, strict=True))
    with VectorCache(workspace.vector_cache_path) as cache:
        have = cache.get_many(embedder.fingerprint, list(unique))
    missing = [h for h in unique if h not in have]
    plan = _chunks(missing, partition_size)
    arguments = {"job": "embed", "model": model, "fingerprint": embedder.fingerprint, "source": source,
                 "partition_size": partition_size, "missing": _digest(missing)}
    job = PartitionJob.open(jobs_root(workspace), "embed", arguments, plan)
    done = [sum(len(job.plan[i]) for i in job.resumed)]
    if progress:
        progress("embed", done[0], len(missing))

    def tick(part: int, _result: Any) -> None:
        done[0] += len(job.plan[part])
        if progress:
            progress("embed", done[0], len(missing))

    worker = WorkerSpec(EmbedWorker, {"model": model, "fingerprint": embedder.fingerprint})
    run_partitions(spec, job, worker, lambda part: [unique[h] for h in job.plan[part]], tick)
    with VectorCache(workspace.vector_cache_path) as cache:
        for part, vectors in enumerate(job.results()):
            cache.put_many(embedder.fingerprint, job.plan[part], vectors)
    report = JobReport("embed", spec.describe(), job.summary(), time.perf_counter() - started,
                       {"model": model, "fingerprint": embedder.fingerprint, "texts": len(texts),
                        "unique": len(unique), "cached": len(unique) - len(missing), "embedded": len(missing)})
    job.finish()
    return report


def store_texts(workspace: Workspace, kind: Collection, chars: int | None) -> tuple[list[str], dict[str, Any]]:
    """The dense texts of every stored record of ``kind`` (what ``build_snapshot`` embeds), or with ``chars`` None
    their titles (``title_text``, what it embeds for the title channel), and their source."""
    with workspace.open_store() as store:
        version = store.data_version
        texts = [dense_text(record, chars) if chars is not None else title_text(record)
                 for record in store.iter_records(kind)]
    return texts, {"kind": kind, "store": str(workspace.store_path.resolve()), "data_version": version,
                   "text_chars": chars, "texts": "dense" if chars is not None else "titles"}


def file_texts(records: Sequence[Patent | Demand], path: Path, chars: int) -> tuple[list[str], dict[str, Any]]:
    data = path.read_bytes()
    return [dense_text(r, chars) for r in records], {"file": str(path.resolve()), "sha1": hashlib.sha1(data)
                                                     .hexdigest(), "text_chars": chars}


def embed_collection(workspace: Workspace, kind: Collection, model: str, chars: int, spec: EngineSpec,
                     progress: Progress | None = None) -> JobReport | None:
    """Fill the vector cache with the dense texts of every stored record of ``kind`` (None when there are none), so
    that an index build (full or incremental) that follows embeds nothing."""
    texts, source = store_texts(workspace, kind, chars)
    return embed_job(workspace, model, texts, spec, source, progress=progress) if texts else None


def embed_titles(workspace: Workspace, kind: Collection, model: str, spec: EngineSpec,
                 progress: Progress | None = None) -> JobReport | None:
    """Fill the vector cache with the titles of every stored record of ``kind`` embedded by ``model`` (the title
    channel's; None when there are none), so that an index build that follows embeds nothing."""
    texts, source = store_texts(workspace, kind, None)
    return embed_job(workspace, model, texts, spec, source, progress=progress) if texts else None


def build_index(workspace: Workspace, kind: Collection, dense_model: str | None, dense_text_chars: int,
                spec: EngineSpec, progress: Progress | None = None, title_model: str | None = None
                ) -> tuple[Path, JobReport | None]:
    """``build_snapshot`` of ``kind``; on the Ray engine its texts (dense texts, and titles with ``title_model``)
    are embedded by the embed job first."""
    report = embed_collection(workspace, kind, dense_model, dense_text_chars, spec, progress) \
        if dense_model and spec.name == "ray" else None
    if title_model and spec.name == "ray":
        embed_titles(workspace, kind, title_model, spec, progress)
    path = build_snapshot(workspace, kind, dense_model=dense_model, dense_text_chars=dense_text_chars,
                          progress=progress, title_model=title_model)
    return path, report


# --- shortlist scoring ------------------------------------------------------------------------------------
def _snapshot_names(searcher: Searcher) -> dict[str, str]:
    return {kind: searcher.snapshot(kind).path.name for kind in COLLECTIONS}


def _pinned(searcher: Searcher, expected: dict[str, str]) -> Searcher:
    view = searcher.pinned(COLLECTIONS)
    for kind, name in expected.items():
        found = view.snapshot(kind).path.name  # type: ignore[arg-type]
        if found != name:
            raise EngineUnavailable("engine.snapshot_moved", kind=kind, expected=name, found=found)
    return view


def _searcher(home: str, config: dict[str, Any]) -> Searcher:
    """A worker's searcher: the driver's workspace and ranker config (which may not be the one on disk)."""
    return Searcher(Workspace(home), RankerConfig.model_validate(config))


class ScoreWorker:
    """Scores partitions of a shortlist's demands (index positions) with ``score_pairs``, over the snapshots the
    driver pinned: a worker opens them once (``home``), or shares the driver's searcher (``searcher``)."""

    def __init__(self, home: str, snapshots: dict[str, str], config: dict[str, Any], selection: Selection,
                 options: ShortlistOptions, searcher: Searcher | None = None) -> None:
        self.searcher = _pinned(searcher or _searcher(home, config), snapshots)
        self.selection = selection
        self.options = options

    def __call__(self, positions: list[int]) -> list[dict[str, Any]]:
        ids = self.searcher.snapshot("demands").bm25.ids
        records = self.searcher.store.get_many("demands", [ids[p] for p in positions])
        demands = {p: d for p in positions if isinstance(d := records.get(ids[p]), Demand)}
        return [asdict(c) for c in shortlist_score_pairs(self.searcher, self.selection, demands, self.options)]


class PartitionedScorer:
    """``build_shortlist``'s ``scorer``: ``score_pairs`` over the demands, a partition at a time, on ``spec``."""

    def __init__(self, spec: EngineSpec, partition_size: int = PARTITION_DEMANDS) -> None:
        self.spec = spec
        self.partition_size = partition_size
        self.job: PartitionJob | None = None

    def __call__(self, searcher: Searcher, selection: Selection, demands: dict[int, Demand],
                 options: ShortlistOptions, progress: Progress | None = None) -> list[Candidate]:
        snapshots = _snapshot_names(searcher)
        order = sorted(demands)
        plan = _chunks(order, self.partition_size)
        picks = [[sorted(p.patents), sorted(p.demands)] for p in selection.picks]
        config = searcher.config.model_dump(mode="json")
        arguments = {"job": "shortlist", "snapshots": snapshots, "home": str(searcher.workspace.home.resolve()),
                     "config": config, "selection": _digest(picks), "options": _options_key(options),
                     "partition_size": self.partition_size}
        job = self.job = PartitionJob.open(jobs_root(searcher.workspace), "shortlist", arguments, plan)
        done = [sum(len(job.plan[i]) for i in job.resumed)]

        def tick(part: int, _result: Any) -> None:
            done[0] += len(job.plan[part])
            if progress:
                progress("score", done[0], len(order))

        if progress:
            progress("score", done[0], len(order))
        home = str(searcher.workspace.home.resolve())
        worker = WorkerSpec(ScoreWorker, {"home": home, "snapshots": snapshots, "config": config,
                                          "selection": selection, "options": options})
        worker.local = ScoreWorker(home, snapshots, config, selection, options, searcher=searcher)
        run_partitions(self.spec, job, worker, lambda part: job.plan[part], tick)
        return [Candidate(**c) for part in job.results() for c in part]


def _options_key(options: Any) -> dict[str, Any]:
    out = {}
    for k, v in vars(options).items():
        out[k] = v.model_dump(mode="json") if hasattr(v, "model_dump") else v
    return out


def shortlist_job(searcher: Searcher, chain: Chain, options: ShortlistOptions, spec: EngineSpec,
                  progress: Progress | None = None, partition_size: int = PARTITION_DEMANDS) -> tuple[Shortlist,
                                                                                                      JobReport]:
    """``build_shortlist`` with its scoring partitioned on ``spec`` and resumable; every search sees one snapshot."""
    started = time.perf_counter()
    view = searcher.pinned(COLLECTIONS)
    scorer = PartitionedScorer(spec, partition_size)
    result = build_shortlist(view, chain, options, progress, scorer=scorer)
    job = scorer.job
    report = JobReport("shortlist", spec.describe(), job.summary() if job else {}, time.perf_counter() - started)
    result.summary["engine"] = report.to_dict()
    if job is not None:
        job.finish()
    return result, report


# --- portfolio push -------------------------------------------------------------------------------------
def _result_json(r: Result) -> dict[str, Any]:
    return {"id": r.id, "rank": r.rank, "score": r.score, "record": r.record.model_dump(mode="json"),
            "retrievers": r.retrievers, "relevance": r.relevance, "duplicates": r.duplicates}


def _result(data: dict[str, Any], kind: Collection) -> Result:
    model = Patent if kind == "patents" else Demand
    return Result(data["id"], data["rank"], data["score"], model.model_validate(data["record"]), data["retrievers"],
                  relevance=data["relevance"], duplicates=data["duplicates"])


class PortfolioWorker:
    """Matches partitions of a portfolio's patents to demands with ``match_patent``, over the pinned snapshots."""

    def __init__(self, home: str, snapshots: dict[str, str], config: dict[str, Any], per_patent: int,
                 filters: dict[str, Any], mode: str | None, searcher: Searcher | None = None) -> None:
        self.searcher = _pinned(searcher or _searcher(home, config), snapshots)
        self.per_patent = per_patent
        self.filters = DemandFilters.model_validate(filters)
        self.mode = mode

    def __call__(self, patent_ids: list[str]) -> list[dict[str, Any]]:
        out = []
        for patent_id in patent_ids:
            patent, results = match_patent(self.searcher, patent_id, self.per_patent, self.filters,
                                           self.mode)  # type: ignore[arg-type]
            out.append({"patent": patent.model_dump(mode="json"), "results": [_result_json(r) for r in results]})
        return out


def push_job(searcher: Searcher, applicant: str | None, ids: list[str] | None, options: PushOptions,
             spec: EngineSpec, progress: Progress | None = None,
             partition_size: int = PARTITION_PATENTS) -> tuple[Push, JobReport]:
    """``build_push`` with the per-patent matching partitioned on ``spec`` and resumable."""
    started = time.perf_counter()
    view = searcher.pinned(COLLECTIONS)
    snapshots = _snapshot_names(view)
    home = str(view.workspace.home.resolve())
    filters = options.filters.model_dump(mode="json")
    config = view.config.model_dump(mode="json")
    jobs: list[PartitionJob] = []

    def matches(patent_ids: list[str]) -> Iterator[tuple[Patent, list[Result]]]:
        plan = _chunks(patent_ids, partition_size)
        arguments = {"job": "push", "snapshots": snapshots, "home": home, "config": config,
                     "patents": _digest(patent_ids),
                     "per_patent": options.per_patent, "filters": filters, "mode": options.mode,
                     "partition_size": partition_size}
        job = PartitionJob.open(jobs_root(view.workspace), "push", arguments, plan)
        jobs.append(job)
        worker = WorkerSpec(PortfolioWorker, {"home": home, "snapshots": snapshots, "config": config,
                                              "per_patent": options.per_patent, "filters": filters,
                                              "mode": options.mode})
        worker.local = PortfolioWorker(home, snapshots, config, options.per_patent, filters, options.mode,
                                       searcher=view)
        done = [sum(len(job.plan[i]) for i in job.resumed)]

        def tick(part: int, _result: Any) -> None:  # the portfolio's progress moves as partitions finish
            done[0] += len(job.plan[part])
            if progress:
                progress("match", done[0], len(patent_ids))

        run_partitions(spec, job, worker, lambda part: job.plan[part], tick)
        for part in job.results():
            for item in part:
                yield (Patent.model_validate(item["patent"]), [_result(r, "demands") for r in item["results"]])

    result = build_push(view, applicant, ids, options, progress, matches=matches)
    report = JobReport("push", spec.describe(), jobs[0].summary() if jobs else {}, time.perf_counter() - started)
    result.summary["engine"] = report.to_dict()
    for job in jobs:
        job.finish()
    return result, report
