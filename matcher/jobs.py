"""Resumable batch jobs: a job's work cut into numbered partitions, each written to a plain file as it finishes.

    HOME/jobs/<name>-<key>/manifest.json        what the job is (its arguments), how many partitions, which are done
    HOME/jobs/<name>-<key>/plan.json            the partitions' inputs, fixed when the job was created
    HOME/jobs/<name>-<key>/part-00007.json      a finished partition's result (JSON)
    HOME/jobs/<name>-<key>/part-00007.npy       ... or its array (embedding vectors, float32)

The folder is named by a hash of the job's arguments (model fingerprint, input identity, snapshot names, options,
partition size: never the engine), so a job killed half-way and started again with the same arguments finds its
folder, reads its plan, and computes only the partitions the manifest does not list as done; the local engine can
finish what the Ray engine began and the other way round. A partition's file is written first (to a temporary
name, then renamed) and the manifest after it, so a partition the manifest lists is always complete; one whose
file landed but whose manifest entry did not is simply computed again. Different arguments make a different job,
so stale partitions are never mixed in. The job folder is removed once its result is delivered (``finish``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

JOB_FORMAT = "patent-match/job"
JOB_FORMAT_VERSION = 1


class JobMismatch(ValueError):
    """A job folder exists for these arguments but holds another plan or format (a bug or a hand-edited folder)."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary sibling, fsync it, rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def job_key(arguments: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(arguments, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


class PartitionJob:
    """One resumable job: ``open`` creates it (writing its plan) or reopens the folder of the same arguments."""

    def __init__(self, path: Path, manifest: dict[str, Any], plan: list[Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.plan = plan
        self.resumed = sorted(manifest["done"])  # partitions finished before this process opened the job
        self.computed: list[int] = []  # partitions this process finished

    @classmethod
    def open(cls, root: Path, name: str, arguments: dict[str, Any], plan: list[Any]) -> PartitionJob:
        """The job for ``arguments`` under ``root``: reopened if its folder exists (its stored plan wins: the
        partitions must be the ones already done), else created with ``plan`` (one input per partition)."""
        path = root / f"{name}-{job_key(arguments)}"
        manifest_path = path / "manifest.json"
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text("utf-8"))
            if manifest.get("format") != JOB_FORMAT or manifest.get("format_version") != JOB_FORMAT_VERSION:
                raise JobMismatch(f"{manifest_path}: not a {JOB_FORMAT} folder of version {JOB_FORMAT_VERSION}")
            if manifest.get("arguments") != json.loads(json.dumps(arguments, ensure_ascii=False)):
                raise JobMismatch(f"{manifest_path}: made for other arguments (hash collision?)")
            stored = json.loads((path / "plan.json").read_text("utf-8"))
            return cls(path, manifest, stored)
        path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path / "plan.json", json.dumps(plan, ensure_ascii=False))
        manifest = {"format": JOB_FORMAT, "format_version": JOB_FORMAT_VERSION, "name": name,
                    "arguments": arguments, "partitions": len(plan), "done": [],
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        job = cls(path, manifest, plan)
        job._save_manifest()
        return job

    @property
    def partitions(self) -> int:
        return int(self.manifest["partitions"])

    def pending(self) -> list[int]:
        done = set(self.manifest["done"])
        return [i for i in range(self.partitions) if i not in done]

    def is_done(self, part: int) -> bool:
        return part in set(self.manifest["done"])

    def _file(self, part: int, suffix: str) -> Path:
        return self.path / f"part-{part:05d}{suffix}"

    def write(self, part: int, result: Any, by: str = "") -> None:
        """Record partition ``part`` as finished with ``result`` (a numpy array, ``.npy``, or JSON data), computed by
        worker ``by`` (``node:pid``, kept in the manifest)."""
        if not 0 <= part < self.partitions:
            raise IndexError(f"partition {part} of a job with {self.partitions}")
        if self.is_done(part):
            return  # a retried task delivering a finished partition twice: the first result stands
        if isinstance(result, np.ndarray):
            target = self._file(part, ".npy")
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as f:
                np.save(f, result, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        else:
            write_text_atomic(self._file(part, ".json"), json.dumps(result, ensure_ascii=False))
        self.manifest["done"] = sorted({*self.manifest["done"], part})
        self.manifest.setdefault("computed_by", {})[str(part)] = by
        self.computed.append(part)
        self._save_manifest()

    def read(self, part: int) -> Any:
        npy = self._file(part, ".npy")
        if npy.is_file():
            return np.load(npy, allow_pickle=False)
        return json.loads(self._file(part, ".json").read_text("utf-8"))

    def results(self) -> list[Any]:
        """Every partition's result, in partition order (all must be done)."""
        missing = self.pending()
        if missing:
            raise RuntimeError(f"{self.path}: partitions {missing[:5]} not done")
        return [self.read(i) for i in range(self.partitions)]

    def summary(self) -> dict[str, Any]:
        by = self.manifest.get("computed_by", {})
        return {"job": self.path.name, "partitions": self.partitions, "resumed": len(self.resumed),
                "computed": len(self.computed), "computed_by": sorted({by[str(p)] for p in self.computed})}

    def finish(self) -> None:
        """The result is delivered: remove the job's folder."""
        shutil.rmtree(self.path, ignore_errors=True)

    def _save_manifest(self) -> None:
        write_text_atomic(self.path / "manifest.json", json.dumps(self.manifest, ensure_ascii=False, indent=1))
