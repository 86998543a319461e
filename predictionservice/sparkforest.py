"""A fitted Spark random forest: its trees read out as flat node arrays (predictors.Forest's
layout), and batch scoring with them in numpy over Arrow batches on the executors.

Only worker processes import this module (it imports pyspark at the top).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql.types import StructType

from predictionservice.exceptions import InvalidSchema


def forest_trees(model: Any, spark: Any, scratch: str | None = None) -> list[dict[str, Any]]:
    """A fitted random forest's trees as flat node arrays (predictors.Forest's layout).

    Spark's Python API exposes no nodes, so the model is saved (Spark's own format: one row per
    node) and its node table read back; on a multi-machine cluster ``scratch`` must be a folder
    every node sees at the same path. A tree's row order is its node ids.

    Each tree also keeps ``cover``: every node's training weight (the rows of the tree's own
    bootstrap sample reaching it, counted with their sampling weights), which path-dependent
    TreeSHAP (predictionservice.treeshap) needs and the numpy scoring does not. Spark keeps it
    as its impurity statistics' count: the class counts' sum (classification) or the first of
    [count, sum, sum of squares] (regression), as shap reads a Spark tree."""
    import tempfile

    classes = getattr(model, "numClasses", None)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="forest-") as folder:
        model.write().save(f"{folder}/model")
        rows = spark.read.parquet(f"{folder}/model/data").select("treeID", "nodeData.*").collect()
    by_tree: dict[int, list[Any]] = {}
    for row in rows:
        by_tree.setdefault(row["treeID"], []).append(row)
    return [_tree(sorted(nodes, key=lambda r: r["id"]), classes) for _, nodes in sorted(by_tree.items())]


def _tree(nodes: list[Any], classes: int | None) -> dict[str, Any]:
    feature, threshold, left, right, value, cover = [], [], [], [], [], []
    for node in nodes:
        leaf = node["leftChild"] < 0
        split = node["split"]
        if not leaf and split["numCategories"] != -1:
            raise InvalidSchema("a categorical split in a stored forest: features are all continuous slots here")
        feature.append(-1 if leaf else int(split["featureIndex"]))
        threshold.append(0.0 if leaf else float(split["leftCategoriesOrThreshold"][0]))
        left.append(int(node["leftChild"]))
        right.append(int(node["rightChild"]))
        stats = [float(s) for s in node["impurityStats"]]
        if classes is None:
            value.append(float(node["prediction"]))
            cover.append(stats[0])
        else:
            total = sum(stats)
            value.append([s / total for s in stats] if total and leaf else [0.0] * classes)
            cover.append(total)
    return {"feature": feature, "threshold": threshold, "left": left, "right": right, "value": value,
            "cover": cover, "depth": _depth(left, right)}  # fmt: skip


def _depth(left: list[int], right: list[int]) -> int:
    """Edges on the longest path from the root (node 0) to a leaf."""
    deepest, level = 0, [0]
    while True:
        level = [child for node in level for child in (left[node], right[node]) if child >= 0]
        if not level:
            return deepest
        deepest += 1


def forest_scores(prepared: DataFrame, trees: list[dict[str, Any]], classes: int | None, width: int) -> DataFrame:
    """``value`` and ``result`` (class probabilities, or the one predicted number) of every row,
    the forest evaluated in numpy over Arrow batches on the executors: no Python per row."""
    from pyspark.sql.types import ArrayType, DoubleType, StructField

    schema = StructType([prepared.schema["value"], StructField("result", ArrayType(DoubleType(), False))])
    score = functools.partial(_score_batches, trees=trees, classes=classes, width=width)
    return prepared.select("slots", "value").mapInArrow(score, schema)


def _score_batches(batches: Iterator[Any], *, trees: list, classes: int | None, width: int) -> Iterator[Any]:
    import pyarrow as pa

    from predictionservice.predictors import Forest

    forest = Forest(trees, classes)
    for batch in batches:
        slots = batch.column("slots")
        matrix = slots.flatten().to_numpy(zero_copy_only=False).reshape(len(batch), width)
        result = forest.evaluate(matrix)
        result = result.reshape(len(batch), -1)
        offsets = pa.array(range(0, result.size + 1, result.shape[1]), pa.int32())
        column = pa.ListArray.from_arrays(offsets, pa.array(result.ravel(), pa.float64()))
        yield pa.RecordBatch.from_arrays([batch.column("value"), column], names=["value", "result"])
