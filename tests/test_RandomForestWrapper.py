"""RandomForestWrapper: trees extracted from Spark's model as flat arrays, scored the same by
numpy, Spark's model and the batch path (numpy over Arrow batches), for classification and
regression; each node's training cover stored with the trees, and the TreeSHAP explanations over
them adding up to Spark's own output."""

import numpy as np
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
    for tree in stored["trees"]:
        inner = [i for i, child in enumerate(tree["left"]) if child >= 0]
        split = [tree["cover"][tree["left"][i]] + tree["cover"][tree["right"][i]] for i in inner]
        assert split == pytest.approx([tree["cover"][i] for i in inner], rel=1e-12) and tree["cover"][0] > 0
    docs = list(mongo_db.rows.find())
    explained = RandomForestWrapper().compile(stored).explanations(docs)
    own = [ways["spark"][str(d["_id"])] for d in docs]
    spark_output = [max(r["probability"].toArray()) if classes else r["prediction"] for r in own]
    totals = [e["base"] + sum(e["contributions"].values()) for e in explained]
    assert np.abs(np.array(totals) - spark_output).max() <= 1e-9


@pytest.mark.parametrize("classes", [3, 0])
def test_a_tree_root_cover_is_the_rows_it_was_trained_on(spark, classes):
    """Without bootstrapping each tree sees every row once: its root's cover is the row count,
    a leaf's the rows reaching it (the leaves' covers add up to the root's)."""
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.linalg import Vectors
    from pyspark.ml.regression import RandomForestRegressor

    from predictionservice.sparkforest import forest_trees

    rows, schema, _ = known_rows("logistic" if classes else "wave", 301, seed=2, classes=max(classes, 2))
    parser = DataParser(schema)
    labels = [parser.class_names.index(r["y"]) if classes else r["y"] for r in rows]
    frame = spark.createDataFrame(
        [(Vectors.dense(x), float(y)) for x, y in zip(parser.encode(rows).tolist(), labels, strict=True)],
        ["features", "label"],
    )
    kind = RandomForestClassifier if classes else RandomForestRegressor
    model = kind(numTrees=2, maxDepth=4, bootstrap=False, featureSubsetStrategy="all", seed=1).fit(frame)
    for tree in forest_trees(model, spark):
        assert tree["cover"][0] == len(rows)
        assert sum(c for c, child in zip(tree["cover"], tree["left"], strict=True) if child < 0) == len(rows)


def test_scalar_fields_are_checked_and_lists_required_for_the_grid():
    _, schema, _ = known_rows("xor", 10)
    job = {"name": "RandomForestWrapper", "inputCollection": "d.c", "schema": schema}
    assert RandomForestWrapper.check(job).task == "binary"
    for bad, field in (({"numTrees": 10}, "numTrees"), ({"featureSubsetStrategy": "most"}, "featureSubsetStrategy"),
                       ({"maxDepth": [0]}, "maxDepth.0"), ({"regParam": [0.1]}, "regParam")):  # fmt: skip
        with pytest.raises(InvalidRequest, match=field):
            RandomForestWrapper.check({**job, **bad})
