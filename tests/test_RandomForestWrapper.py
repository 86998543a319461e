"""RandomForestWrapper: trees extracted from Spark's model as flat arrays, scored the same by
numpy, Spark's model and the batch path (numpy over Arrow batches), for classification and
regression."""

import pytest

from dataparser import DataParser
from helpers import assert_three_ways_agree, known_rows, three_ways
from predictionservice.exceptions import InvalidRequest
from RandomForestWrapper import RandomForestWrapper


@pytest.mark.parametrize(("kind", "classes"), [("xor", 2), ("logistic", 4), ("wave", 0)])
def test_numpy_spark_transform_and_batch_agree(spark, mongo_db, base_params, kind, classes):
    rows, schema, _ = known_rows(kind, 1200, seed=5, classes=max(classes, 2))
    mongo_db.rows.insert_many(rows)
    job = {"name": "RandomForestWrapper", "inputCollection": f"{mongo_db.name}.rows", "schema": schema,
           "numTrees": [15], "maxDepth": [6]}  # fmt: skip
    ways = three_ways(spark, RandomForestWrapper, job, mongo_db.rows, base_params)
    stored = ways["stored"]
    assert len(stored["trees"]) == 15 and max(t["depth"] for t in stored["trees"]) <= 6
    assert set(stored["feature_importances"]) == {"x1", "x2", "c"}
    assert sum(stored["feature_importances"].values()) == pytest.approx(1.0)
    assert_three_ways_agree(ways, DataParser(schema).class_names)


def test_scalar_fields_are_checked_and_lists_required_for_the_grid():
    _, schema, _ = known_rows("xor", 10)
    job = {"name": "RandomForestWrapper", "inputCollection": "d.c", "schema": schema}
    assert RandomForestWrapper.check(job).task == "binary"
    for bad, field in (({"numTrees": 10}, "numTrees"), ({"featureSubsetStrategy": "most"}, "featureSubsetStrategy"),
                       ({"maxDepth": [0]}, "maxDepth.0"), ({"regParam": [0.1]}, "regParam")):  # fmt: skip
        with pytest.raises(InvalidRequest, match=field):
            RandomForestWrapper.check({**job, **bad})
