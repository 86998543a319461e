"""dataparser.schema_from_documents with a person's choices: whole-number fields as categories,
fields left out, unseen categories ignored per feature; every wrong name refused with the
closest ones, and the schema it makes scores as asked."""

from __future__ import annotations

import pytest

from dataparser import DataParser, schema_from_documents
from predictionservice.exceptions import InvalidRequest, UnknownCategory

DOCS = [
    {"_id": i, "age": 20 + i % 7, "grade": [3, 10, 2][i % 3], "city": ["Lyon", "Nice"][i % 2],
     "income": 1000.5 * i, "y": ["no", "yes"][i % 2]}
    for i in range(30)
]  # fmt: skip


def test_a_whole_number_field_asked_categorical_becomes_categories_numbered_by_value():
    schema = schema_from_documents(DOCS, "y", categorical=["grade"])
    grade = next(f for f in schema["features"] if f["key"] == "grade")
    assert grade == {"key": "grade", "values": {"2": 0, "3": 1, "10": 2}}
    parser = DataParser(schema)
    record = {"age": 21, "grade": 10, "city": "Nice", "income": 5.0}
    row = parser.encode_one(record)
    offset = parser.feature_names().index("grade=10")
    assert row[offset] == 1.0 and sum(row[offset - 2 : offset + 1]) == 1.0  # one-hot, by the code
    assert parser.encode([record, {**record, "grade": 3.0}]).shape == (2, parser.num_features)


def test_a_fractional_field_asked_categorical_is_dropped_saying_why():
    schema = schema_from_documents(DOCS, "y", categorical=["income"])
    assert "income" not in [f["key"] for f in schema["features"]]
    reason = next(d["reason"] for d in schema["dropped"] if d["field"] == "income")
    assert reason == "asked to be categorical, but holds 1000.5, not a whole number"


def test_too_many_codes_are_dropped_as_too_many_categories():
    schema = schema_from_documents(DOCS, "y", categorical=["income", "age"], max_categories=5)
    reasons = {d["field"]: d["reason"] for d in schema["dropped"]}
    assert reasons["age"] == "asked to be categorical, but has more than 5 distinct values"


def test_an_excluded_field_is_left_out_and_named():
    schema = schema_from_documents(DOCS, "y", exclude=["city", "income"])
    assert [f["key"] for f in schema["features"]] == ["age", "grade"]
    assert {"field": "city", "reason": "left out as asked"} in schema["dropped"]


def test_ignore_unknown_per_feature_or_every_one():
    one = schema_from_documents(DOCS, "y", ignore_unknown=["city"])
    assert next(f for f in one["features"] if f["key"] == "city")["unknown"] == "ignore"
    every = schema_from_documents(DOCS, "y", categorical=["grade"], ignore_unknown=["*"])
    assert [f["key"] for f in every["features"] if f.get("unknown") == "ignore"] == ["grade", "city"]
    parser = DataParser(one)
    assert parser.encode_one({"age": 1, "grade": 3, "city": "Paris", "income": 1.0})  # all zeros for city
    with pytest.raises(UnknownCategory):
        DataParser(schema_from_documents(DOCS, "y")).encode_one({"age": 1, "grade": 3, "city": "Paris", "income": 1})


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ({"exclude": ["City"]}, "'exclude': field 'City' (did you mean 'city'?) is not in the collection"),
        ({"categorical": ["grdae"]}, "'categorical': field 'grdae' (did you mean 'grade'?) is not in the collection"),
        ({"ignore_unknown": ["y"]}, "'ignore_unknown': 'y' is the label; the choices are about features"),
        ({"ignore_unknown": ["age"]}, "'ignore_unknown': 'age' numeric; unknown categories are a categorical"),
    ],
)
def test_a_wrong_choice_is_refused_naming_it(choices, message):
    with pytest.raises(InvalidRequest) as refused:
        schema_from_documents(DOCS, "y", **choices)
    assert message in refused.value.message
