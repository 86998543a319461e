"""The algorithm's scoring paths agree: numpy single record, numpy batch, Spark column expressions."""

import json

import numpy as np
import pytest
from pyspark.sql import functions as F

from dataparser import DataParser
from helpers import JOB, assert_three_ways_agree, known_rows, ref, three_ways
from LogisticRegressionWrapper import LogisticRegressionWrapper
from predictionservice.exceptions import InvalidSchema, UnknownCategory
from predictionservice.sparkfeatures import margin_column
from predictionservice.sparksession import read_collection


def LinearPredictor(stored):
    return LogisticRegressionWrapper().compile(stored)


@pytest.fixture(scope="module")
def model():
    n = 51
    rng = np.random.default_rng(7)
    coefficients = rng.normal(0, 0.05, n).tolist()
    return {"name": "LogisticRegressionWrapper", "schema": JOB["schema"], "coefficients": coefficients,
            "intercept": -1.25, "numFeatures": n, "numClasses": 2}  # fmt: skip


def test_single_and_batch_scoring_agree_with_the_formula(model, bank_collection):
    predictor = LogisticRegressionWrapper().compile(model)
    docs = [d for d in bank_collection.find({"job": {"$ne": "killhim"}}, {"_id": 0, "y": 0}, limit=500)]
    batch = predictor.predict(docs)
    x = np.array([predictor.parser.encode_one(d) for d in docs])
    margin = x @ np.array(model["coefficients"]) + model["intercept"]
    assert [p["prediction"] for p in batch] == (margin > 0).astype(int).tolist()
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-margin))
    np.testing.assert_allclose([p["probability"] for p in batch], expected, rtol=1e-12)
    assert {p["label"] for p in batch} <= {"no", "yes"}
    for i in (0, 123, 499):
        (single,) = predictor.predict([docs[i]])
        assert single["prediction"] == batch[i]["prediction"] and single["label"] == batch[i]["label"]
        assert single["probability"] == pytest.approx(batch[i]["probability"], rel=1e-12)


def test_extreme_margins_do_not_overflow(model):
    predictor = LinearPredictor({**model, "intercept": 5000.0})
    record = json.loads(json.dumps({"age": 1, "job": "student", "marital": "single", "education": "primary",
                                    "default": "no", "balance": 0, "housing": "no", "loan": "no", "contact": "unknown",
                                    "day": 1, "month": "jan", "duration": 0, "campaign": 0, "pdays": 0, "previous": 0,
                                    "poutcome": "other"}))  # fmt: skip
    assert predictor.predict([record])[0] == {
        "prediction": 1, "label": "yes", "probability": 1.0, "probabilities": {"no": 0.0, "yes": 1.0}
    }  # fmt: skip
    low = LinearPredictor({**model, "intercept": -5000.0}).predict([record, record])
    assert low[0] == {"prediction": 0, "label": "no", "probability": 0.0, "probabilities": {"no": 1.0, "yes": 0.0}}


def test_a_bad_record_is_named_with_its_index(model):
    predictor = LinearPredictor(model)
    with pytest.raises(UnknownCategory, match="record 0: field 'job'"):
        predictor.predict([{"job": "pilot", **{k: 1 for k in ("age",)}}])


def test_a_model_whose_coefficients_do_not_fit_its_schema_is_refused(model):
    with pytest.raises(InvalidSchema, match="50 coefficients for 50 features; its schema has 51"):
        LinearPredictor({**model, "coefficients": model["coefficients"][:50]})


def test_spark_scoring_expressions_equal_numpy_on_the_whole_bank_data(spark, bank_collection, model):
    predictor = LinearPredictor(model)
    df = read_collection(spark, ref(bank_collection), partitions=2)
    margin, error = margin_column(predictor.parser, df.schema, model["coefficients"], model["intercept"])
    rows = df.select("_id", margin.alias("m"), error.alias("e"),
                     (F.lit(1.0) / (F.lit(1.0) + F.exp(-margin))).alias("p")).collect()  # fmt: skip
    docs = {str(d["_id"]): d for d in bank_collection.find({}, {"y": 0})}
    good = [r for r in rows if r["e"] is None]
    assert len(rows) == 45211 and len(good) == 45209
    assert all(r["m"] is None for r in rows if r["e"] is not None)
    expected = predictor.predict([docs[r["_id"]] for r in good])
    np.testing.assert_allclose([r["p"] for r in good], [e["probability"] for e in expected], rtol=1e-9)
    assert [int(r["m"] > 0) for r in good] == [e["prediction"] for e in expected]


# ------------------------------------------------------------------------------- multinomial


@pytest.mark.parametrize("classes", [2, 5])
def test_numpy_spark_transform_and_batch_agree(spark, mongo_db, base_params, classes):
    rows, schema, _ = known_rows("logistic", 1500, seed=classes, classes=classes)
    mongo_db.rows.insert_many(rows)
    job = {"name": "LogisticRegressionWrapper", "inputCollection": f"{mongo_db.name}.rows", "schema": schema}
    ways = three_ways(spark, LogisticRegressionWrapper, job, mongo_db.rows, base_params)
    stored = ways["stored"]
    assert ("coefficient_matrix" in stored) == (classes > 2)
    if classes > 2:
        assert len(stored["coefficient_matrix"]) == len(stored["intercepts"]) == classes
    assert_three_ways_agree(ways, DataParser(schema).class_names)


def test_a_label_the_algorithm_cannot_learn_is_refused_naming_it():
    _, schema, _ = known_rows("linear", 10)
    job = {"name": "LogisticRegressionWrapper", "inputCollection": "d.c", "schema": schema}
    with pytest.raises(InvalidSchema, match="LogisticRegressionWrapper does binary classification or multi-class"):
        LogisticRegressionWrapper.check(job)


def test_bad_rows_of_both_labels_with_one_reason_are_summed(spark, base_params, mongo_db):
    """Issue 11, finding 17: the counts came from groupBy("error", "label") into a dict keyed by
    the reason, so one label's count overwrote the other's (57 blanked cells reported as 32)."""
    from predictionservice.sparkfeatures import encoded_input

    rows = [{"age": None if i < 57 else 30 + i % 20, "y": "yes" if i % 2 else "no"} for i in range(200)]
    mongo_db.blanks.insert_many(rows)
    parser = DataParser({"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "age"}]})
    job = {"seed": 42, "holdoutFraction": 0.2}
    encoded, stats = encoded_input(spark, job, parser, ref(mongo_db.blanks), read_partitions=4, partition_mb=64.0)
    encoded.unpersist()
    assert stats["invalid"] == {"field 'age' is missing": 57}  # 29 'no' and 28 'yes' rows
    assert stats["rows"] == 200 and sum(stats["classes"].values()) == 143
