"""predictionservice/trainingdata.py: what training checks of its input before it fits, and the
words it says it in: a field missing from the collection, no usable row, a class with no row, and
the rejected rows counted and described by reason. Real DataParsers, a real MongoDB collection."""

from __future__ import annotations

import pytest

from dataparser import DataParser
from predictionservice import trainingdata
from predictionservice.exceptions import InvalidSchema, NotFound, ServiceError

SCHEMA = {"label": {"key": "y", "values": {"no": 0, "yes": 1, "maybe": 2}}, "features": [{"key": "x"}, {"key": "z"}]}
PARSER = DataParser(SCHEMA)
REGRESSION = DataParser({"label": {"key": "y"}, "features": [{"key": "x"}]})


def test_an_empty_collection_is_not_found(mongo_db):
    with pytest.raises(NotFound, match="empty or does not exist"):
        trainingdata.check_fields(mongo_db["nothing"], "db.nothing", PARSER)


def test_a_field_in_no_document_is_named(mongo_db):
    collection = mongo_db["rows"]
    collection.insert_many([{"y": "no", "x": 1}, {"x": 2}])
    with pytest.raises(InvalidSchema, match=r"feature field 'z' not found in db\.rows"):
        trainingdata.check_fields(collection, "db.rows", PARSER)
    collection.insert_one({"z": 3})  # in a later document only: found
    trainingdata.check_fields(collection, "db.rows", PARSER)
    with pytest.raises(InvalidSchema, match="label field 'label' not found"):
        trainingdata.check_fields(collection, "db.rows", DataParser({**SCHEMA, "label": {"key": "label"}}))


def test_no_usable_row_names_every_reason():
    with pytest.raises(ServiceError, match=r"all 5 rows were rejected \(3 rows where a; 2 rows where b\)"):
        trainingdata.check_rows(PARSER, "db.rows", 5, {"b": 2, "a": 3}, {})


def test_every_class_the_schema_names_needs_a_row():
    trainingdata.check_rows(PARSER, "db.rows", 9, {}, {0.0: 3, 1.0: 3, 2.0: 3})
    with pytest.raises(InvalidSchema, match="has no usable row of class 'maybe': drop it"):
        trainingdata.check_rows(PARSER, "db.rows", 6, {}, {0.0: 3, 1.0: 3})
    with pytest.raises(InvalidSchema, match=r"has only one class \('yes'\): nothing to learn"):
        trainingdata.check_rows(PARSER, "db.rows", 3, {}, {1.0: 3})
    trainingdata.check_rows(REGRESSION, "db.rows", 3, {}, {})  # a regression has no classes


def test_rejected_rows_are_counted_by_reason_and_described_most_first():
    stats = [
        {"error": None, "count": 10},
        {"error": "a", "count": 1},
        {"error": "b", "count": 4},
        {"error": "a", "count": 2},
    ]
    invalid = trainingdata.invalid_counts(stats)
    assert invalid == {"a": 3, "b": 4}
    assert trainingdata.describe(invalid) == "4 rows where b; 3 rows where a"
    assert trainingdata.skipping(invalid) == "; skipping 4 rows where b; 3 rows where a"
    assert trainingdata.skipping({}) == ""
    many = {f"r{i}": i + 1 for i in range(5)}
    assert trainingdata.describe(many).endswith("; and 2 other reasons")
    assert list(trainingdata.reasons(many)) == ["r0", "r1", "r2"]
