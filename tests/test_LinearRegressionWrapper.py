"""LinearRegressionWrapper: a numeric label, scored the same by numpy, Spark's model and the batch
path; labels with categories refused."""

import pytest

from helpers import assert_three_ways_agree, known_rows, three_ways
from LinearRegressionWrapper import LinearRegressionWrapper
from predictionservice.exceptions import InvalidRequest, InvalidSchema


def test_numpy_spark_transform_and_batch_agree(spark, mongo_db, base_params):
    rows, schema, _ = known_rows("linear", 1500, seed=3)
    mongo_db.rows.insert_many(rows)
    job = {"name": "LinearRegressionWrapper", "inputCollection": f"{mongo_db.name}.rows", "schema": schema}
    ways = three_ways(spark, LinearRegressionWrapper, job, mongo_db.rows, base_params)
    assert len(ways["stored"]["coefficients"]) == 5  # x1, x2 and c's three one-hot slots
    assert_three_ways_agree(ways, [])


def test_a_label_with_categories_is_refused_naming_the_task():
    _, schema, _ = known_rows("logistic", 10)
    job = {"name": "LinearRegressionWrapper", "inputCollection": "d.c", "schema": schema}
    with pytest.raises(InvalidSchema, match=r"LinearRegressionWrapper does regression; schema\.label .y. is a label"):
        LinearRegressionWrapper.check(job)


def test_a_grid_field_it_does_not_take_is_refused():
    _, schema, _ = known_rows("linear", 10)
    job = {"name": "LinearRegressionWrapper", "inputCollection": "d.c", "schema": schema, "numTrees": [5]}
    with pytest.raises(InvalidRequest, match=r"unknown field.*numTrees"):
        LinearRegressionWrapper.check(job)
