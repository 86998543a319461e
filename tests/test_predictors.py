"""predictors.py: the numpy predictors, checked by hand on models small enough to reason about."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataparser import DataParser
from predictionservice.defaults import PREDICT_CHUNK_VALUES
from predictionservice.exceptions import InvalidSchema, MissingField, NotNumeric
from predictionservice.predictors import (
    Forest,
    ForestPredictor,
    LinearClassifier,
    LinearRegressor,
    binary_answers,
    class_answers,
    softmax,
)

SCHEMA3 = {"label": {"key": "y", "values": {"a": 0, "b": 1, "c": 2}}, "features": [{"key": "x"}, {"key": "z"}]}
NUMERIC = {"label": {"key": "y"}, "features": [{"key": "x"}, {"key": "z"}]}
BINARY = {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "x"}, {"key": "z"}]}


def test_multinomial_answers_are_the_softmax_of_the_margins():
    predictor = LinearClassifier(DataParser(SCHEMA3), [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.5, 0.0])
    answer = predictor.predict_one({"x": 2.0, "z": 1.0})
    margins = [2.0, 1.5, -3.0]
    expected = [math.exp(m) / sum(math.exp(v) for v in margins) for m in margins]
    assert answer["prediction"] == 0 and answer["label"] == "a"
    assert [answer["probabilities"][k] for k in "abc"] == pytest.approx(expected, rel=1e-12)
    assert answer["probability"] == answer["probabilities"]["a"]  # the predicted label's
    assert predictor.predict([{"x": 2.0, "z": 1.0}, {"x": -5, "z": -5}])[1]["label"] == "c"


def test_binary_answers_keep_the_classic_probability_and_add_every_label():
    predictor = LinearClassifier(DataParser(BINARY), [[1.0, -1.0]], [0.0])
    one = predictor.predict_one({"x": 0.0, "z": 1.0})
    assert one["prediction"] == 0 and one["label"] == "no"
    assert one["probability"] == pytest.approx(1 / (1 + math.e), rel=1e-12)  # the positive class's
    assert one["probabilities"]["no"] + one["probabilities"]["yes"] == pytest.approx(1.0)
    assert predictor.predict([{"x": 0.0, "z": 1.0}] * 2) == [one, one]


def by_class(names, row):
    return dict(zip(names, row, strict=True))


def test_two_class_answers_are_built_whole_as_the_general_path_builds_them():
    probabilities = np.random.default_rng(7).dirichlet([1.0, 1.0], size=50)
    predicted = probabilities.argmax(axis=1)
    for names in (["no", "yes"], [0, 1]):
        general = [
            {"prediction": i, "label": names[i], "probability": row[1], "probabilities": by_class(names, row)}
            for i, row in zip(predicted.tolist(), probabilities.tolist(), strict=True)
        ]
        whole = binary_answers(names, probabilities, predicted)
        assert whole == general and [list(a) for a in whole] == [list(a) for a in general]  # keys in order
        assert class_answers(names, probabilities, predicted) == general
        assert class_answers(names, probabilities, predicted, 2) == general
    top_one = class_answers(["no", "yes"], probabilities, predicted, 1)
    assert [list(a["probabilities"]) for a in top_one] == [[["no", "yes"][i]] for i in predicted.tolist()]


def test_softmax_of_huge_margins_does_not_overflow():
    p = softmax(np.array([[1000.0, 0.0, -1000.0]]))
    assert p.tolist() == [[1.0, 0.0, 0.0]]


def test_linear_regression_is_the_margin():
    predictor = LinearRegressor(DataParser(NUMERIC), [2.0, -1.0], 0.5)
    assert predictor.predict_one({"x": 1, "z": 3}) == {"prediction": -0.5}
    assert predictor.predict([{"x": 1, "z": 3}, {"x": 0, "z": 0}]) == [{"prediction": -0.5}, {"prediction": 0.5}]


def test_coefficients_that_do_not_fit_the_schema_are_refused():
    with pytest.raises(InvalidSchema, match="3 coefficients for 3 features; its schema has 2"):
        LinearRegressor(DataParser(NUMERIC), [1.0, 2.0, 3.0], 0.0)
    with pytest.raises(InvalidSchema, match="coefficient rows for 3 classes"):
        LinearClassifier(DataParser(SCHEMA3), [[1.0, 0.0]], [0.0])


# A stump on x (<= 0.5 goes left) and a depth-2 tree: x <= 0 then z <= 1.
STUMP = {"feature": [0, -1, -1], "threshold": [0.5, 0, 0], "left": [1, -1, -1], "right": [2, -1, -1],
         "value": [[0, 0, 0], [1.0, 0, 0], [0, 0.5, 0.5]], "depth": 1}  # fmt: skip
DEEPER = {"feature": [0, 1, -1, -1, -1], "threshold": [0.0, 1.0, 0, 0, 0], "left": [1, 2, -1, -1, -1],
          "right": [4, 3, -1, -1, -1], "value": [[0, 0, 0], [0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]],
          "depth": 2}  # fmt: skip


def test_a_forest_averages_its_trees_leaf_distributions():
    forest = Forest([STUMP, DEEPER], classes=3)
    x = np.array([[-1.0, 0.0], [-1.0, 5.0], [0.25, 0.0], [2.0, 0.0]])
    # rows: stump leaf | deeper leaf  ->  mean of the two distributions
    expected = [[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [1.0, 0.0, 0.0], [0.5, 0.25, 0.25]]
    assert forest.evaluate(x).tolist() == expected
    predictor = ForestPredictor(DataParser(SCHEMA3), [STUMP, DEEPER])
    answers = predictor.predict([{"x": v[0], "z": v[1]} for v in x.tolist()])
    assert [a["prediction"] for a in answers] == [0, 0, 0, 0]  # ties go to the first class, as argmax
    assert answers[1]["probabilities"] == {"a": 0.5, "b": 0.0, "c": 0.5}


def test_a_regression_forest_averages_its_trees_predictions():
    stump = {**STUMP, "value": [0.0, -2.0, 4.0]}
    deeper = {**DEEPER, "value": [0.0, 0.0, 1.0, 3.0, 10.0]}
    predictor = ForestPredictor(DataParser(NUMERIC), [stump, deeper])
    assert predictor.predict_one({"x": 1.0, "z": 0.0}) == {"prediction": 7.0}
    # x = 0.5 is <= the stump's threshold (left: -2) and > 0 in the deeper tree (10)
    assert predictor.predict([{"x": -1, "z": 2}, {"x": 0.5, "z": 0}]) == [{"prediction": 0.5}, {"prediction": 4.0}]


def test_a_forest_splitting_on_a_feature_the_schema_lacks_is_refused():
    wide = {**STUMP, "feature": [7, -1, -1]}
    with pytest.raises(InvalidSchema, match="split on feature 7"):
        ForestPredictor(DataParser(SCHEMA3), [wide])


def test_a_bad_record_is_named_in_a_batch():
    predictor = ForestPredictor(DataParser(SCHEMA3), [STUMP])
    with pytest.raises(MissingField, match="record 1: field 'z' is missing"):
        predictor.predict([{"x": 1, "z": 1}, {"x": 1}])


def test_a_many_class_batch_is_scored_in_slices_with_the_same_answers_and_indices():
    """2,000 classes: at most PREDICT_CHUNK_VALUES class scores at once (500 rows a slice), the
    answers those of the whole matrix at once, a bad record named by its index in the batch."""
    classes = 2000
    rng = np.random.default_rng(3)
    schema = {"label": {"key": "y", "values": {f"k{i}": i for i in range(classes)}}, "features": NUMERIC["features"]}
    predictor = LinearClassifier(DataParser(schema), rng.normal(0, 1, (classes, 2)), rng.normal(0, 1, classes))
    records = [{"x": i / 100, "z": (i % 7) - 3.0} for i in range(1200)]
    assert PREDICT_CHUNK_VALUES // classes < len(records)  # sliced
    margins = predictor.margins(DataParser(schema).encode(records))
    whole = class_answers(predictor.names, softmax(margins), margins.argmax(axis=1), 3)
    sliced = predictor.predict(records, top=3)
    assert [a["label"] for a in sliced] == [a["label"] for a in whole]
    for mine, theirs in zip(sliced, whole, strict=True):
        assert list(mine["probabilities"]) == list(theirs["probabilities"])
        assert list(mine["probabilities"].values()) == pytest.approx(list(theirs["probabilities"].values()), rel=1e-12)
    with pytest.raises(MissingField, match="record 1100: field 'z' is missing"):
        predictor.predict([*records[:1100], {"x": 1}, *records[1101:]], top=3)
    columns = [[r[f.key] for r in records] for f in predictor.parser.features]
    assert predictor.predict_columns(columns, top=3) == sliced  # V2's columns: the same slices
    columns[1][1100] = "z"
    with pytest.raises(NotNumeric, match="record 1100: field 'z'"):
        predictor.predict_columns(columns, top=3)


def test_one_row_of_columns_is_scored_as_one_record():
    for predictor in (
        ForestPredictor(DataParser(SCHEMA3), [STUMP, DEEPER]),
        LinearClassifier(DataParser(BINARY), [[0.37, -1.3]], [0.11]),  # its own one-record path
    ):
        assert predictor.predict_columns([[2.0], [0.3]]) == [predictor.predict_one({"x": 2.0, "z": 0.3})]
        with pytest.raises(NotNumeric, match="record 0: field 'z'"):
            predictor.predict_columns([[2.0], ["zero"]])


def test_top_probabilities_are_the_leaders_most_probable_first_and_zero_leaves_them_out():
    predictor = ForestPredictor(DataParser(SCHEMA3), [STUMP, DEEPER])
    rows = [{"x": -1.0, "z": 5.0}, {"x": 2.0, "z": 0.0}]
    full = predictor.predict(rows)
    assert full[1]["probabilities"] == {"a": 0.5, "b": 0.25, "c": 0.25}
    top = predictor.predict(rows, top=2)
    assert [list(a["probabilities"].items()) for a in top] == [[("a", 0.5), ("c", 0.5)], [("a", 0.5), ("b", 0.25)]]
    assert predictor.predict(rows, top=3) == full and predictor.answered_probabilities(2) == 2
    none = predictor.predict_one(rows[0], top=0)
    assert none == {k: v for k, v in full[0].items() if k != "probabilities"}
    binary = LinearClassifier(DataParser(BINARY), [[1.0, -1.0]], [0.0])
    assert binary.predict_one({"x": 0.0, "z": 1.0}, top=1)["probabilities"] == {
        "no": pytest.approx(1 / (1 + 1 / math.e))
    }
