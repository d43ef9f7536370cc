"""One way to write a folder atomically: ``atomic_dir(target)`` yields a temporary sibling folder to fill; when the
block ends without an error, the folder's files and the folder are fsynced and it is renamed into place (an
existing ``target`` is renamed aside first and removed after: a directory cannot be renamed over another), then
the parent is fsynced. A reader sees the old folder or the new one, never a half-written one (one opening it
between the two renames may find it missing for that instant). On an error the temporary folder is removed and
``target`` is left as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_dir(target: str | os.PathLike[str], mode: int | None = None) -> Iterator[Path]:
    """Write into the yielded folder; it replaces ``target`` when the block succeeds (``mode``: its permissions,
    e.g. 0o755 for a shared cache; ``mkdtemp`` makes it 0o700)."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        if mode is not None:
            tmp.chmod(mode)
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file():
                _fsync(path)
        _fsync(tmp)
        old: Path | None = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
        _fsync(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when it was renamed into place
