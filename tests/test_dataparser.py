import math
import types

import numpy as np
import pytest

from dataparser import DataParser, schema_from_documents
from helpers import training_pair
from predictionservice.exceptions import (
    InvalidRequest,
    InvalidSchema,
    MissingField,
    NotNumeric,
    RecordError,
    UnknownCategory,
)

JOB = {
    "schema": {
        "label": {"key": "y", "values": {"no": 0, "yes": 1}},
        "features": [
            {"key": "age"},
            {"key": "job", "values": {"admin.": 0, "blue-collar": 1, "technician": 2}},
            {"key": "default", "values": {"no": 0}},
            {"key": "balance"},
            {"key": "month", "values": {"may": 1, "jun": 0}},
        ],
    }
}
RECORD = {"age": 58, "job": "technician", "default": "no", "balance": "2143", "month": "may", "y": "yes"}


@pytest.fixture()
def parser():
    return DataParser(JOB["schema"])


def test_classic_encoding_by_hand(parser):
    # age | job one-hot (3) | default: single-valued -> one constant 0 | balance | month (2)
    assert parser.num_features == 1 + 3 + 1 + 1 + 2
    assert training_pair(parser, RECORD) == ([58.0, 0.0, 0.0, 1.0, 0.0, 2143.0, 0.0, 1.0], 1.0)
    other = {**RECORD, "job": "admin.", "month": "jun", "balance": -7.5, "y": "no"}
    assert parser.encode_one(other) == [58.0, 1.0, 0.0, 0.0, 0.0, -7.5, 1.0, 0.0]
    assert training_pair(parser, other) == ([58.0, 1.0, 0.0, 0.0, 0.0, -7.5, 1.0, 0.0], 0.0)


def test_prediction_needs_no_label(parser):
    record = {k: v for k, v in RECORD.items() if k != "y"}
    assert parser.encode_one(record)[3] == 1.0
    with pytest.raises(MissingField, match="field 'y' is missing"):
        training_pair(parser, record)


def test_numeric_label_without_values():
    parser = DataParser({"label": {"key": "t"}, "features": [{"key": "x"}]})
    assert training_pair(parser, {"x": 1, "t": 1}) == ([1.0], 1.0)
    assert parser.label_name(1) == 1


def test_feature_names(parser):
    assert parser.feature_names() == [
        "age",
        "job=admin.",
        "job=blue-collar",
        "job=technician",
        "default",
        "balance",
        "month=jun",
        "month=may",
    ]


@pytest.mark.parametrize(
    "change, error, text",
    [
        ({"age": None}, MissingField, "field 'age' is null: a number is expected"),
        ({"age": "old"}, NotNumeric, "field 'age' is not a number"),
        ({"age": True}, NotNumeric, "field 'age' is not a number"),
        ({"age": [1]}, NotNumeric, "field 'age' is not a number"),
        ({"age": "1_000"}, NotNumeric, "field 'age' is not a number"),
        ({"balance": float("nan")}, NotNumeric, "field 'balance' is not a finite number"),
        ({"balance": math.inf}, NotNumeric, "field 'balance' is not a finite number"),
        ({"balance": "-Infinity"}, NotNumeric, "field 'balance' is not a finite number"),
        ({"balance": 10**400}, NotNumeric, "field 'balance' is not a finite number"),
        # the costly string of issue 11 (a backtracking parse took 4.8 s), refused by its length
        ({"age": "1" * 15000 + "x"}, NotNumeric, "field 'age' is a string too long to be a number"),
        ({"balance": "1" * 101}, NotNumeric, "field 'balance' is a string too long to be a number"),
        ({"job": "pilot"}, UnknownCategory, "field 'job' has the value 'pilot', which is not one of"),
        ({"job": 3}, UnknownCategory, "field 'job'"),
        ({"default": "yes"}, UnknownCategory, "field 'default'"),
        ({"y": "maybe"}, UnknownCategory, "field 'y'"),
    ],
)
def test_each_error_names_the_field(parser, change, error, text):
    record = {**RECORD, **change}
    with pytest.raises(error, match=text) as info:
        training_pair(parser, record)
    assert info.value.details[0]["field"] in change
    if "y" in change:
        return  # encode() is for prediction: the label is not read
    with pytest.raises(error, match=f"record 1: {text}"):
        parser.encode([RECORD, {k: v for k, v in record.items()}])


def test_missing_key(parser):
    record = dict(RECORD)
    del record["job"]
    with pytest.raises(MissingField, match="field 'job' is missing"):
        training_pair(parser, record)
    with pytest.raises(MissingField, match="record 2: field 'job' is missing"):
        parser.encode([RECORD, RECORD, record])
    with pytest.raises(RecordError, match="record 0: field 'record' is not an object"):
        parser.encode(["not a record"])


def test_batch_encoding_reads_any_mapping_and_a_single_feature(parser):
    """encode reads a batch of dicts in one pass; a record of another Mapping type, and a schema
    of one feature, take the column-by-column path, with the same numbers."""
    records = [RECORD, types.MappingProxyType(dict(RECORD)), RECORD]
    assert parser.encode(records).tolist() == [parser.encode_one(r) for r in records]
    one = DataParser({"label": {"key": "y"}, "features": [{"key": "n"}]})
    assert one.encode([{"n": 1}, {"n": 2.5}]).tolist() == [[1.0], [2.5]]
    with pytest.raises(MissingField, match="record 1: field 'n' is missing"):
        one.encode([{"n": 1}, {"m": 2}])


def test_numeric_strings_and_categories_as_numbers():
    parser = DataParser({"label": {"key": "y"}, "features": [{"key": "n"}, {"key": "c", "values": {"1": 0, "2": 1}}]})
    assert training_pair(parser, {"n": " 1e2 ", "c": 2, "y": 0}) == ([100.0, 0.0, 1.0], 0.0)
    assert parser.encode_one({"n": 3, "c": 1.0}) == [3.0, 1.0, 0.0]


def test_batch_categories_given_as_numbers_or_wrong_are_looked_at_one_by_one():
    """A column of listed strings is one pass; a number spelling a category, or a bad value past
    good ones, sends the column to the value-by-value path, which encodes and names as encode_one."""
    parser = DataParser({"label": {"key": "y"}, "features": [{"key": "c", "values": {"1": 0, "2": 1, "3": 2}}]})
    records = [{"c": "1"}, {"c": "3"}, {"c": 2}, {"c": 1.0}, {"c": "2"}]
    assert parser.encode(records).tolist() == [parser.encode_one(r) for r in records]
    for bad in ("4", None, ["1"], {"c": 1}, True):
        with pytest.raises(RecordError, match=r"record 5: field 'c'"):
            parser.encode([*records, {"c": bad}, {"c": "1"}])


def test_batch_encoding_equals_encode_one(parser):
    rng = np.random.default_rng(0)
    jobs, months = ["admin.", "blue-collar", "technician"], ["may", "jun"]
    records = [
        {
            "age": int(rng.integers(18, 90)),
            "job": jobs[i % 3],
            "default": "no",
            "balance": float(rng.normal()) if i % 2 else str(int(rng.integers(-50, 50))),
            "month": months[i % 2],
        }
        for i in range(200)
    ]
    matrix = parser.encode(records)
    assert matrix.tolist() == [parser.encode_one(r) for r in records]


def columns_of(parser, records):
    return [[r[f.key] for r in records] for f in parser.features]


def test_columns_encode_as_the_records_they_make(parser):
    """encode_columns (V2's inputs, one column per feature) gives encode's numbers and errors."""
    records = [{**RECORD, "age": 20 + i, "job": ["admin.", "technician"][i % 2], "balance": [1.5, "7", -3][i % 3]}
               for i in range(50)]  # fmt: skip
    assert parser.encode_columns(columns_of(parser, records)).tolist() == parser.encode(records).tolist()
    assert parser.encode_columns([[] for _ in parser.features]).shape == (0, parser.num_features)
    for field, bad in (("age", True), ("age", "old"), ("job", "pilot"), ("month", None), ("balance", [1])):
        broken = [*records[:7], {**RECORD, field: bad}, *records[7:]]
        with pytest.raises(RecordError) as by_records:
            parser.encode(broken)
        with pytest.raises(RecordError) as by_columns:
            parser.encode_columns(columns_of(parser, broken))
        assert str(by_columns.value) == str(by_records.value) and by_columns.value.index == 7


@pytest.mark.parametrize(
    "schema, text",
    [
        ({}, "schema.label"),
        ({"label": {"key": "y"}, "features": []}, "non-empty array"),
        ({"label": {"key": "y"}, "features": [{"key": "a"}, {"key": "a"}]}, "listed twice"),
        ({"label": {"key": "y"}, "features": [{"key": "y"}]}, "is the label"),
        ({"label": {"key": "y"}, "features": [{"key": "a", "values": {"x": 2}}]}, "integer from 0 to 0"),
        ({"label": {"key": "y"}, "features": [{"key": "a", "values": {}}]}, "non-empty object"),
        ({"label": {"key": "y", "values": {"a": True}}, "features": [{"key": "a"}]}, "position"),
    ],
)
def test_unusable_schemas_are_refused(schema, text):
    with pytest.raises(InvalidSchema, match=text):
        DataParser(schema)


def test_schema_from_documents_is_stable_and_skips_ids():
    docs = [
        {
            "_id": i,
            "ref": f"r{i}",
            "age": 20 + i,
            "job": ["b", "a", "c"][i % 3],
            "flag": "same",
            "mixed": i if i % 2 else "x",
            "y": "yes" if i % 4 == 0 else "no",
        }
        for i in range(12)
    ]
    schema = schema_from_documents(docs, "y")
    assert schema == {
        "label": {"key": "y", "values": {"no": 0, "yes": 1}},
        "features": [
            {"key": "age"},
            {"key": "job", "values": {"a": 0, "b": 1, "c": 2}},
            {"key": "flag", "values": {"same": 0}},
        ],
        "dropped": [
            {"field": "_id", "reason": "the document id: an id does not generalise"},
            {"field": "ref", "reason": "id-like: a different text in every document"},
            {"field": "mixed", "reason": "mixed types (number, string): a feature is numbers only or text only"},
        ],
    }
    assert schema_from_documents(reversed(docs), "y") == schema
    training_pair(DataParser(schema), docs[0])
    with pytest.raises(InvalidSchema, match="label field 'z' not found"):
        schema_from_documents(docs, "z")
    with pytest.raises(InvalidSchema, match="empty"):
        schema_from_documents([], "y")


def test_an_unknown_category_names_the_value_and_the_closest_allowed_ones():
    parser = DataParser({"label": {"key": "y"}, "features": [{"key": "job", "values": {"management": 0, "manager": 1,
                         "retired": 2}}]})  # fmt: skip
    with pytest.raises(UnknownCategory) as info:
        parser.encode_one({"job": "Management"})
    assert info.value.problem == (
        "has the value 'Management', which is not one of the schema's categories (closest: 'management')"
    )
    assert info.value.reason == "has a value that is not one of the schema's categories"  # Spark's words
    with pytest.raises(UnknownCategory, match=r"\(closest: 'manager', 'management'\)"):
        parser.encode_one({"job": "managr"})
    with pytest.raises(UnknownCategory, match=r"\(allowed: 'management', 'manager', 'retired'\)"):
        parser.encode_one({"job": "astronaut"})
    with pytest.raises(UnknownCategory, match="has the value 7, which"):
        parser.encode_one({"job": 7})


def test_null_is_null_not_missing():
    parser = DataParser({"label": {"key": "y"}, "features": [{"key": "age"}, {"key": "c", "values": {"a": 0}}]})
    with pytest.raises(MissingField, match="field 'age' is null: a number is expected") as info:
        parser.encode_one({"age": None, "c": "a"})
    assert info.value.reason == "is missing"  # a Spark column cannot tell null from absent
    with pytest.raises(MissingField, match="field 'c' is null: one of the schema's categories is expected"):
        parser.encode_one({"age": 1, "c": None})
    with pytest.raises(MissingField, match="field 'age' is missing"):
        parser.encode_one({"c": "a"})


def measurements(n: int) -> list[dict]:
    """n rows whose label is a measurement: n distinct numbers (a price, a duration)."""
    return [{"x": i % 7, "c": "ab"[i % 2], "price": 10.0 + i / 3} for i in range(n)]


def test_a_numeric_label_of_20000_distinct_values_is_a_regression_target():
    docs = measurements(20_000)
    assert len({d["price"] for d in docs}) == 20_000
    schema = schema_from_documents(docs, "price")
    features = [{"key": "x"}, {"key": "c", "values": {"a": 0, "b": 1}}]
    assert schema == {"label": {"key": "price"}, "features": features, "dropped": []}
    assert DataParser(schema).task == "regression"
    assert schema_from_documents(docs, "price", task="regression") == schema
    # classes only when asked for, and never of a measurement
    with pytest.raises(InvalidSchema, match=r"'price' holds 10.333333333333334, not a whole number.*task=regression"):
        schema_from_documents(docs, "price", task="classification")
    whole = [{**d, "price": i} for i, d in enumerate(docs)]
    with pytest.raises(InvalidSchema, match=r"more than 100 distinct values .*too many to be classes"):
        schema_from_documents(whole, "price", task="classification")


def test_a_few_whole_numbers_are_classes_when_asked_and_text_is_never_regressed():
    docs = [{"x": i, "stars": [1, 2, 10][i % 3], "y": "ny"[i % 2]} for i in range(30)]
    assert schema_from_documents(docs, "stars")["label"] == {"key": "stars"}
    classes = schema_from_documents(docs, "stars", task="classification")
    assert classes["label"] == {"key": "stars", "values": {"1": 0, "2": 1, "10": 2}}  # in numeric order
    assert DataParser(classes).task == "multiclass" and DataParser(classes).encode_label({"stars": 10.0}) == 2
    assert schema_from_documents(docs, "y", task="classification") == schema_from_documents(docs, "y")
    with pytest.raises(InvalidSchema, match="'y' holds text, and regression predicts a number"):
        schema_from_documents(docs, "y", task="regression")
    with pytest.raises(InvalidRequest, match="'task' must be 'classification' or 'regression', not 'both'"):
        schema_from_documents(docs, "stars", task="both")
    with pytest.raises(InvalidSchema, match="single value"):
        schema_from_documents([{**d, "stars": 4} for d in docs], "stars", task="classification")


def test_a_text_label_with_too_many_classes_says_so():
    docs = [{"x": i, "y": f"class {i}"} for i in range(150)] * 2
    with pytest.raises(InvalidSchema, match=r"'y' has more than 100 distinct values .*too many classes"):
        schema_from_documents(docs, "y")


IGNORING = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [
        {"key": "age"},
        {"key": "job", "values": {"admin.": 0, "blue-collar": 1, "technician": 2}, "unknown": "ignore"},
        {"key": "default", "values": {"no": 0}, "unknown": "ignore"},
    ],
}


def test_an_ignored_unknown_category_encodes_as_zeros_in_both_encoders():
    parser = DataParser(IGNORING)
    records = [
        {"age": 30, "job": "chef", "default": "yes"},
        {"age": 31, "job": "technician", "default": "no"},
        {"age": 32, "job": 12, "default": "no"},
    ]
    by_hand = [[30.0, 0.0, 0.0, 0.0, 0.0], [31.0, 0.0, 0.0, 1.0, 0.0], [32.0, 0.0, 0.0, 0.0, 0.0]]
    assert [parser.encode_one(r) for r in records] == by_hand
    assert parser.encode(records).tolist() == by_hand
    assert parser.warnings(records[0]) == [
        "field 'job': 'chef' is not a known category; treated as none of them",
        "field 'default': 'yes' is not a known category; treated as none of them",
    ]
    assert parser.warnings(records[1]) == []
    odd = {"age": 1, "job": ["chef"], "default": True}  # no category at all: ignored too (Spark reads it as text)
    assert parser.encode_one(odd) == parser.encode([odd, records[1]]).tolist()[0] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert parser.warnings(odd) == [
        "field 'job': ['chef'] is not a known category; treated as none of them",
        "field 'default': True is not a known category; treated as none of them",
    ]
    refused = {"age": 1, "job": None, "default": "no"}
    with pytest.raises(RecordError):  # a null is still refused
        parser.encode_one(refused)
    with pytest.raises(RecordError):
        parser.encode([records[1], refused])
    with pytest.raises(UnknownCategory):  # without "unknown": "ignore", refused as before
        DataParser(JOB["schema"]).encode_one({**RECORD, "job": "chef"})


def test_the_schema_keeps_unknown_ignore_and_refuses_other_words():
    parser = DataParser(IGNORING)
    assert parser.schema() == IGNORING  # what training stores with the model
    assert (
        "unknown"
        not in DataParser({**IGNORING, "features": [{"key": "a", "values": {"b": 0}}]}).schema()["features"][0]
    )
    assert DataParser({"label": {"key": "y"}, "features": [{"key": "a", "values": {"b": 0}, "unknown": "error"}]})
    for feature in ({"key": "a", "values": {"b": 0}, "unknown": "drop"}, {"key": "a", "unknown": "ignore"}):
        with pytest.raises(InvalidSchema, match="unknown"):
            DataParser({"label": {"key": "y"}, "features": [feature]})


def test_problems_names_every_field_of_a_record(parser):
    found = parser.problems({"age": "old", "job": "chef", "balance": None, "month": "may"})
    assert [(e.field, type(e)) for e in found] == [
        ("age", NotNumeric),
        ("job", UnknownCategory),
        ("default", MissingField),
        ("balance", MissingField),
    ]
    assert parser.problems(RECORD) == []
    assert [e.field for e in parser.problems([1, 2])] == ["record"]
