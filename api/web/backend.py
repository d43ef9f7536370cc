"""The JSON API's own functions and state, as the pages use them: one search path, one ingest path.

The pages never call the service over HTTP: they take the ``Service`` from the application state and call the
functions behind ``/v1/search/patents``, ``/v1/match/*``, ``/v1/patents/{id}`` and ``/v1/ingest/*/file``, so a
page shows exactly what the JSON API answers. This module is the one place that knows where those live.
"""

from __future__ import annotations

from api.http.errors import ApiError
from api.http.language import speaking
from api.http.routes.ingest import _ingest_bytes, _safe_filename
from api.http.routes.match import match_demand, match_patent
from api.http.routes.records import _stored
from api.http.routes.search import _search_patents
from api.http.state import Service, get_service

__all__ = ["ApiError", "Service", "get_service", "ingest_bytes", "match_demand", "match_patent", "safe_filename",
           "search_patents", "speaking", "stored"]

search_patents = _search_patents
stored = _stored
ingest_bytes = _ingest_bytes
safe_filename = _safe_filename  # what the API writes an upload as: a bare name, with a known extension
