"""The environment variables the index layer reads, as one pydantic-settings class (``IndexSettings``).

Each field is ``PMATCH_<FIELD>``; an empty value counts as unset. Settings are read when asked for
(``index_settings()``), not at import, so a variable set at run time (``limit_threads`` sets
``PMATCH_EMBED_THREADS`` for the libraries and processes that start after it) is seen. A bad value is a
``SettingsError`` that names the variable: ``PMATCH_EMBED_THREADS must be a positive integer, got 'two'``.
The README's settings table lists every variable with the class field that reads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "PMATCH_"
Count = Annotated[int, Field(gt=0)]
S = TypeVar("S", bound=BaseSettings)


class SettingsError(ValueError):
    """A ``PMATCH_*`` variable holds a value its setting cannot take."""


_EXPECTED = {"int_parsing": "a positive integer", "greater_than": "a positive integer",
             "bool_parsing": "1 or 0 (true or false)", "path_type": "a path"}


def read_settings(cls: type[S]) -> S:
    """``cls()`` read from the environment now, with a bad value reported by its variable's name."""
    try:
        return cls()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = f"{PREFIX}{str(err['loc'][0]).upper()}" if err["loc"] else PREFIX
        expected = _EXPECTED.get(err["type"])
        reason = f"must be {expected}" if expected else f"is not valid ({err['msg']})"
        raise SettingsError(f"{name} {reason}, got {os.environ.get(name, '')!r}") from None


class PmatchSettings(BaseSettings):
    """The base of the ``PMATCH_<FIELD>`` settings classes (index layer, engine): the prefix, an empty value as
    unset, other variables ignored. Read them with ``read_settings``."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="ignore")


class IndexSettings(PmatchSettings):
    """Where models are cached and how many threads and processes the index layer uses."""

    cache: Path | None = Field(default=None, description="Model cache: the rebuilt e5-small, USE-m3's tokenizer "
                                                         "tables and weights, the parsed CC-CEDICT (default "
                                                         "~/.cache/patent-match).")
    embed_threads: Count | None = Field(default=None, description="Threads for query/document encoding (torch, "
                                                                  "USE's BLAS); default: the CPUs available.")
    faiss_threads: Count | None = Field(default=None, description="faiss's OpenMP threads; default: OpenMP's own "
                                                                  "(which honours OMP_NUM_THREADS).")
    index_workers: Count | None = Field(default=None, description="Processes tokenizing a large corpus for BM25; "
                                                                  "default: the CPUs available.")
    limit_torch: bool = Field(default=True, description="limit_threads also imports torch to limit it; false: "
                                                        "only if torch is already loaded.")


def index_settings() -> IndexSettings:
    """The index layer's settings as the environment holds them now."""
    return read_settings(IndexSettings)


def default_cache_dir() -> Path:
    """``PMATCH_CACHE`` (``IndexSettings.cache``), else ``~/.cache/patent-match``."""
    return (index_settings().cache or Path.home() / ".cache" / "patent-match").expanduser()
