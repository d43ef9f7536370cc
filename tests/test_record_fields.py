"""The record field table (matcher.records.FIELDS) describes the models exactly, and every user reads it."""

from __future__ import annotations

import sqlite3
import typing
from datetime import date

import pytest

from matcher.facet_index import facet_spec
from matcher.ingest import DATE_FIELDS, LIST_FIELDS
from matcher.records import DERIVABLE, FIELDS, Demand, Patent, fields_where
from matcher.store import Store

MODELS = {"patents": Patent, "demands": Demand}


def _python_type(annotation: object) -> set[object]:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _python_type(args[0])
    if args and origin not in (list, dict):  # a union or a Literal
        return set().union(*(_python_type(a) if not isinstance(a, str) else {str} for a in args))
    return {origin or annotation}


TYPE_OF = {"id": {str}, "text": {str}, "category": {str}, "list": {list}, "date": {date}, "flag": {bool},
           "number": {int}, "rules": {dict}}


@pytest.mark.parametrize("collection", ["patents", "demands"])
def test_the_table_is_the_model(collection: str) -> None:
    model = MODELS[collection]
    assert list(FIELDS[collection]) == list(model.model_fields)  # same fields, same order
    for name, use in FIELDS[collection].items():
        assert _python_type(model.model_fields[name].annotation) - {type(None)} == TYPE_OF[use.type], name
        assert not (use.facet and not use.filter), f"{name}: a facet is counted from the filter arrays"


def test_only_derivable_fields_are_marked_not_from_a_source() -> None:
    derived_only = set(fields_where("patents", source=False))
    assert derived_only <= set(DERIVABLE) | {"derived", "inferred"}
    assert not fields_where("demands", source=False)


def test_store_columns_and_filter_arrays_follow_the_table(tmp_path) -> None:
    Store(tmp_path / "store.db").close()
    db = sqlite3.connect(tmp_path / "store.db")
    for collection in ("patents", "demands"):
        columns = {row[1]: row[2] for row in db.execute(f"PRAGMA table_info({collection})")}
        for name in fields_where(collection, column=True):
            if FIELDS[collection][name].type != "list":
                assert columns[name] == ("INTEGER" if FIELDS[collection][name].type == "flag" else "TEXT"), name
        assert set(facet_spec(collection)) == set(fields_where(collection, filter=True))
    assert "keywords" in LIST_FIELDS and "application_numbers" not in LIST_FIELDS
    assert {"application_date", "publication_date", "posted_date", "expiry_date"} == DATE_FIELDS
