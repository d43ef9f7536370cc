"""Shared fixtures: the bundled real sample, read once per session."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from matcher.records import Demand, Patent

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
