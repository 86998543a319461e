"""predictionservice/datasets.py, the core's dataset operations, called with no Flask app against
the MongoDB wire server the fixtures start: listed, described, a schema inferred, exported and
dropped as the /datasets/ routes and the pages do. The document helpers are unit tests."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from bson import ObjectId

from dataparser import schema_from_documents
from predictionservice.datasets import (
    EXPORT_BATCH,
    Datasets,
    cell,
    field_kinds,
    flat,
    inert,
    kind_of,
    mongo_json,
)
from predictionservice.exceptions import InvalidRequest, NotFound
from predictionservice.mongotarget import MongoClients

ROWS = [{"age": 30 + i % 40, "job": "abc"[i % 3], "y": "yes" if i % 4 == 0 else "no"} for i in range(EXPORT_BATCH + 7)]


@pytest.fixture()
def datasets(mongo_uri):
    clients = MongoClients(5000)
    yield Datasets(clients, mongo_uri, schema_from_documents, 1000, 100)
    clients.close()


@pytest.fixture()
def loaded(mongo_db):
    """A dataset of this test's own, beside a load in progress and a collection of MongoDB's."""
    mongo_db["people"].insert_many([dict(row) for row in ROWS])
    mongo_db["__load_people"].insert_one({"half": "loaded"})
    return mongo_db.name


def test_the_listing_counts_each_dataset_and_hides_what_is_not_one(datasets, loaded):
    listed = {d["dataset"]: d for d in datasets.listing()}
    assert listed[f"{loaded}.people"] == {
        "dataset": f"{loaded}.people",
        "db": loaded,
        "collection": "people",
        "count": len(ROWS),
    }
    assert f"{loaded}.__load_people" not in listed
    assert not {d["db"] for d in listed.values()} & {"admin", "local", "config"}


def test_a_description_is_the_count_the_fields_and_a_sample(datasets, loaded):
    described = datasets.describe(loaded, "people")
    assert described["dataset"] == f"{loaded}.people" and described["count"] == len(ROWS)
    assert described["fields"] == {"_id": "ObjectId", "age": "number", "job": "string", "y": "string"}
    assert [{k: v for k, v in d.items() if k != "_id"} for d in described["sample"]] == ROWS[:5]
    with pytest.raises(NotFound, match=rf"dataset '{loaded}.nobody' not found"):
        datasets.describe(loaded, "nobody")


def test_a_schema_is_inferred_with_the_label_asked(datasets, loaded):
    schema = datasets.schema(loaded, "people", "y")
    assert schema["label"] == {"key": "y", "values": {"no": 0, "yes": 1}}
    assert {f["key"] for f in schema["features"]} == {"age", "job"}
    assert datasets.schema(loaded, "people", "age", "regression")["label"] == {"key": "age"}
    with pytest.raises(InvalidRequest, match=r"'label' .* is required"):
        datasets.schema(loaded, "people", None)


def test_an_export_is_every_document_in_batches(datasets, loaded):
    chunks = list(datasets.export(loaded, "people", "csv"))
    assert len(chunks) == 2  # one batch, then the rest
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert [{k: int(v) if k == "age" else v for k, v in r.items()} for r in rows] == ROWS
    lines = "".join(datasets.export(loaded, "people", "jsonl")).splitlines()
    assert [{k: v for k, v in json.loads(line).items() if k != "_id"} for line in lines] == ROWS
    with pytest.raises(InvalidRequest, match="'format' must be 'csv' or 'jsonl'"):
        datasets.export(loaded, "people", "xml")
    with pytest.raises(NotFound):
        datasets.export(loaded, "nobody", "csv")  # at once, before a chunk is asked for


def test_a_dropped_dataset_is_gone_and_a_confused_name_is_refused(datasets, loaded):
    datasets.drop(loaded, "people")
    assert f"{loaded}.people" not in {d["dataset"] for d in datasets.listing()}
    with pytest.raises(NotFound):
        datasets.drop(loaded, "people")
    with pytest.raises(InvalidRequest, match="no '/', encoded or not"):
        datasets.describe("e2e%2Fx", "people")


# ---------------------------------------------------------------------------------- unit


def test_nested_documents_flatten_to_dotted_columns():
    assert flat({"value": {"age": 3, "job": {"k": "a"}}, "empty": {}, "n": 1}) == {
        "value.age": 3,
        "value.job.k": "a",
        "empty": {},
        "n": 1,
    }


def test_cells_are_inert_text_and_json_for_containers():
    assert inert("=HYPERLINK(1)") == "'=HYPERLINK(1)" and inert("-3") == "'-3" and inert(-3) == -3
    assert cell(None) == "" and cell([1, {"a": 2}]) == '[1, {"a": 2}]' and cell("plain") == "plain"


def test_documents_become_plain_json_and_their_kinds_are_named():
    oid = ObjectId()
    assert mongo_json({"_id": oid, "x": [math.nan, 1.5]}) == {"_id": str(oid), "x": ["nan", 1.5]}
    assert [kind_of(v) for v in (None, True, 1, "s", {}, [])] == [
        "null",
        "boolean",
        "number",
        "string",
        "object",
        "array",
    ]
    kinds = field_kinds([{"a": 1, "b": None, "c": "x"}, {"a": "x", "b": 2, "c": None}])
    assert kinds == {"a": "mixed", "b": "number", "c": "string"}
