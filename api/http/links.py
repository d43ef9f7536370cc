"""OpenAPI links: which answer names the id another operation takes (a search result -> the record, a match;
an ingested record -> its lookup and its deletion). Clients and stateful testers (schemathesis) follow them.

Only links the server keeps are listed: an id in a search or match answer is a stored record's, and an id of an
ingested batch is stored once the answer is 200 (``wait`` or not: the record is in the store before the index).
"""

from __future__ import annotations

from typing import Any

FIRST_RESULT = "$response.body#/results/0/id"
FIRST_RECORD = "$request.body#/records/0/id"

# operation id -> {link name: (target operation id, parameters, request body)}
_LINKS: dict[str, dict[str, tuple[str, dict[str, str], dict[str, str] | None]]] = {
    "search_patents_post": {
        "GetFirstPatent": ("get_patent", {"patent_id": FIRST_RESULT}, None),
        "MatchFirstPatent": ("match_patent", {}, {"patent_id": FIRST_RESULT}),
    },
    "search_patents_get": {"GetFirstPatent": ("get_patent", {"patent_id": FIRST_RESULT}, None)},
    "search_demands": {
        "GetFirstDemand": ("get_demand", {"demand_id": FIRST_RESULT}, None),
        "MatchFirstDemand": ("match_demand", {}, {"demand_id": FIRST_RESULT}),
    },
    "match_demand": {"GetFirstPatent": ("get_patent", {"patent_id": FIRST_RESULT}, None)},
    "match_patent": {"GetFirstDemand": ("get_demand", {"demand_id": FIRST_RESULT}, None)},
    "ingest_patents": {
        "GetIngestedPatent": ("get_patent", {"patent_id": FIRST_RECORD}, None),
        "DeleteIngestedPatent": ("delete_patent", {"patent_id": FIRST_RECORD}, None),
    },
    "ingest_demands": {
        "GetIngestedDemand": ("get_demand", {"demand_id": FIRST_RECORD}, None),
        "DeleteIngestedDemand": ("delete_demand", {"demand_id": FIRST_RECORD}, None),
    },
}


def _operation_ids(schema: dict[str, Any]) -> dict[str, str]:
    """Short name -> the operation id FastAPI gave (``get_patent`` -> ``get_patent_v1_patents__patent_id__get``)."""
    out: dict[str, str] = {}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            full = operation.get("operationId", "")
            short = full.split("_v1_")[0]
            out[short] = full
            out[full] = full
    return out


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the links of ``_LINKS`` on each source operation's 200 answer."""
    ids = _operation_ids(schema)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            short = operation.get("operationId", "").split("_v1_")[0]
            for name, (target, parameters, body) in _LINKS.get(short, {}).items():
                link: dict[str, Any] = {"operationId": ids[target]}
                if parameters:
                    link["parameters"] = parameters
                if body is not None:
                    link["requestBody"] = body
                operation.setdefault("responses", {}).setdefault("200", {}).setdefault("links", {})[name] = link
    return schema
