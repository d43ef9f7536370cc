"""Shared fixtures: the bundled real sample (read once per session), a temporary vector cache for the whole
session, a factory of indexed workspaces (built once per session and name), and the session's one real server.

Tiers (markers, registered in pyproject.toml): ``e2e`` runs a subprocess, a real server or a notebook; ``model``
loads a real embedding model (e5-small, use-m3); ``data`` runs over the whole bundled sample or an evaluation set.
``make test`` runs everything; ``make test-fast`` runs the rest.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from matcher.full_build import build_snapshot
from matcher.records import Demand, Patent
from matcher.store import Store
from matcher.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"


def read_sample(kind: str) -> list[dict]:
    with gzip.open(SAMPLE / f"{kind}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def sample_patents() -> list[Patent]:
    return [Patent.model_validate(r) for r in read_sample("patents")]


@pytest.fixture(scope="session")
def sample_demands() -> list[Demand]:
    return [Demand.model_validate(r) for r in read_sample("demands")]


@pytest.fixture(scope="session", autouse=True)
def vector_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test embeds through one temporary vector cache (never the developer's): shared within the session,
    so a text embedded by one test is not embedded again by the next. A test may still point it elsewhere."""
    path = tmp_path_factory.mktemp("vector-cache") / "vectors.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PMATCH_VECTOR_CACHE", str(path))
        yield path


IndexedWorkspace = Callable[[str, Sequence[Patent], Sequence[Demand]], Workspace]


@pytest.fixture(scope="session")
def indexed_workspace(tmp_path_factory: pytest.TempPathFactory) -> IndexedWorkspace:
    """``indexed_workspace(name, patents, demands, dense_model="static-64")``: a workspace with both kinds stored
    and indexed, built once per session for each ``name`` (later calls with that name return it as it is)."""
    built: dict[str, Workspace] = {}

    def make(name: str, patents: Sequence[Patent], demands: Sequence[Demand],
             dense_model: str | None = "static-64") -> Workspace:
        if name not in built:
            ws = Workspace(tmp_path_factory.mktemp(f"ws-{name}") / "home")
            with Store(ws.store_path) as store:
                store.write_batch("patents", list(patents), "test")
                store.write_batch("demands", list(demands), "test")
            for kind in ("patents", "demands"):
                build_snapshot(ws, kind, dense_model=dense_model)  # type: ignore[arg-type]
            built[name] = ws
        return built[name]

    return make


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, sample_patents: list[Patent],
                sample_demands: list[Demand]) -> Iterator[object]:
    """The session's one real server (``pmatch serve`` in a subprocess): (ApiServer, API key)."""
    from api_server import corpus, running_server

    indexed, _ = corpus(sample_patents)
    with running_server(tmp_path_factory.mktemp("live"), indexed, sample_demands[:120]) as pair:
        yield pair
