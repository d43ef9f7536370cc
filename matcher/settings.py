"""The environment variables the matching engine reads, as one pydantic-settings class (``EngineSettings``).

Each field is ``PMATCH_<FIELD>``; an empty value counts as unset. Like ``indexes.settings.IndexSettings`` (model
cache and threads) they are read when asked for (``engine_settings()``), so a test or a caller that sets a
variable is seen; a bad value is an error naming the variable. The HTTP service's own settings are
``api.http.settings.ServiceSettings`` (``PMATCH_API_*``). The README's settings table lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from indexes.settings import PmatchSettings, SettingsError, read_settings

__all__ = ["EngineSettings", "SettingsError", "engine_settings"]


class EngineSettings(PmatchSettings):
    """Where the data lives and which operator files extend the shipped configuration."""

    home: Path = Field(default=Path(".pmatch"), description="Data folder: store, indexes, ranker config "
                                                            "(``--home`` overrides).")
    vector_cache: Path | None = Field(default=None, description="Vector cache file (default: vectors.sqlite in "
                                                                "the model cache).")
    ranker_config: Path | None = Field(default=None, description="A ranker config JSON used instead of "
                                                                 "HOME/ranker.json.")
    ingest_vocabulary: Path | None = Field(default=None, description="An ingest vocabulary (header aliases, value "
                                                                     "labels) read after the shipped one.")
    applicant_rules: str = Field(default="", description="Applicant-type rule files, separated by the path "
                                                         "separator (':'), tried before the shipped ones.")
    test_pause_at: str = Field(default="", description="Tests only: an index build stops at this named point "
                                                       "(``matcher.pause_points``) so a test can kill it there.")

    def applicant_rule_files(self) -> list[str]:
        """``applicant_rules`` as file names, in order."""
        return [p for p in self.applicant_rules.split(os.pathsep) if p.strip()]


def engine_settings() -> EngineSettings:
    """The engine's settings as the environment holds them now."""
    return read_settings(EngineSettings)
