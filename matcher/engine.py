"""Where a batch job's partitions are computed: in this process (``local``) or on a Ray cluster (``ray``).

A job (``matcher.jobs.PartitionJob``) is cut into partitions; a *worker* turns one partition's input into its
result. The worker is the same class on both engines (``WorkerSpec``: a class and its constructor arguments):
the local engine builds one in this process and calls it partition after partition; the Ray engine builds one
per Ray worker (an actor of a Ray Data ``map_batches`` actor pool, so a model or a snapshot is loaded once per
worker, not once per partition) and streams the results back, each written to the job's folder as it arrives.
Either way the result of a partition is what the project's own functions compute: the engines only decide where.

Ray is an optional extra (``pip install '.[ray]'``, ``make ray``). Asking for ``--engine ray`` without it, or for
an ``--address`` nothing answers at, is an ``EngineUnavailable`` with the message in Chinese and English.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from matcher.i18n import LocalisedError

EngineName = Literal["local", "ray"]
ENGINES: tuple[EngineName, ...] = ("local", "ray")
Payload = Callable[[int], Any]  # partition number -> the worker's input for it
OnResult = Callable[[int, Any], None]  # partition number, result: called in this process as each one finishes
Record = Callable[[int, Any, str], None]  # partition number, result, which worker computed it


class EngineUnavailable(LocalisedError, RuntimeError):
    """The engine asked for cannot run here: Ray is not installed, or its cluster cannot be reached. The message
    is a catalogue key (``matcher/messages/engine.yaml``): ``message(lang)`` gives it in Chinese or English."""


@dataclass(frozen=True)
class EngineSpec:
    """``name``: local or ray; ``address``: an existing Ray cluster (``host:port``, ``auto``), else Ray starts one on
    this machine; ``workers``: Ray workers (actors) at once, default one per CPU of the cluster."""

    name: EngineName = "local"
    address: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.name!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.address and self.name != "ray":
            raise ValueError("--address needs --engine ray")

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "address": self.address, "workers": self.workers}


@dataclass
class WorkerSpec:
    """A worker class and its constructor's keyword arguments (picklable: they are sent to every Ray worker).
    ``local``: an already built instance the local engine uses instead (e.g. one sharing this process's searcher)."""

    cls: type
    kwargs: dict[str, Any] = field(default_factory=dict)
    local: Any = None

    def build(self) -> Any:
        return self.local if self.local is not None else self.cls(**self.kwargs)


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def require_ray() -> None:
    if not ray_installed():
        raise EngineUnavailable("engine.ray_missing")
