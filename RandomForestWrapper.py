"""RandomForestWrapper: a random forest, classifying (a label with ``values``) or regressing (a
numeric label), for what a linear model cannot fit.

Grid: ``numTrees`` x ``maxDepth`` (lists); also ``maxBins``, ``minInstancesPerNode``,
``subsamplingRate`` and ``featureSubsetStrategy`` (scalars). The stored model keeps every tree as
flat node arrays with each node's training ``cover`` (what TreeSHAP explanations weigh unknown
features by) and the ``feature_importances`` (feature key -> importance, one-hot blocks summed,
adding up to 1).

* ``train`` (worker, through ``Algorithm.train``): Spark ML ``RandomForestClassifier`` or
  ``RandomForestRegressor`` cross-validated over the grid.
* ``compile`` (web): ``predictors.ForestPredictor``, every tree evaluated at once in numpy, and
  explained by exact path-dependent TreeSHAP (``predictionservice.treeshap``).
* ``prepare``/``outputs`` (worker): the same numpy evaluation over Arrow batches on the executors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataparser import DataParser
from modelfactory import Algorithm
from predictionservice.predictors import ForestPredictor
from predictionservice.validation import integers

NAME = "RandomForestWrapper"
FEATURE_SUBSETS = ["auto", "all", "onethird", "sqrt", "log2"]


class RandomForestWrapper(Algorithm):
    name = NAME
    title = "random forest"
    summary = "many trees voting: finds interactions and thresholds by itself; slower; classes or a number"
    tasks = frozenset({"binary", "multiclass", "regression"})
    field_help = {
        "numTrees": "trees in the forest: more is steadier and slower; each value is tried",
        "maxDepth": "how deep a tree grows: deeper fits more detail, and more noise; each value is tried",
        "maxBins": "how finely a numeric feature is cut when a tree splits it (at least a feature's categories)",
        "minInstancesPerNode": "the fewest training rows a leaf may hold",
        "subsamplingRate": "the share of the rows each tree learns from",
        "featureSubsetStrategy": "how many features each split may look at (auto: as Spark chooses)",
    }
    job_fields = {
        "numTrees": integers(1, 500),
        "maxDepth": integers(1, 20),
        "maxBins": {"type": "integer", "minimum": 2, "maximum": 1024},
        "minInstancesPerNode": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "subsamplingRate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "featureSubsetStrategy": {"enum": FEATURE_SUBSETS},
    }
    DEFAULTS = {
        "numTrees": [20],
        "maxDepth": [5],
        "maxBins": 32,
        "minInstancesPerNode": 1,
        "subsamplingRate": 1.0,
        "featureSubsetStrategy": "auto",
    }

    def estimator(self, job: Mapping[str, Any], parser: DataParser) -> tuple[Any, list]:
        from pyspark.ml.classification import RandomForestClassifier
        from pyspark.ml.regression import RandomForestRegressor
        from pyspark.ml.tuning import ParamGridBuilder

        kind = RandomForestRegressor if parser.task == "regression" else RandomForestClassifier
        forest = kind(
            maxBins=int(job["maxBins"]),
            minInstancesPerNode=int(job["minInstancesPerNode"]),
            subsamplingRate=float(job["subsamplingRate"]),
            featureSubsetStrategy=str(job["featureSubsetStrategy"]),
            seed=int(job["seed"]),
        )
        grid = (
            ParamGridBuilder()
            .addGrid(forest.numTrees, [int(x) for x in job["numTrees"]])
            .addGrid(forest.maxDepth, [int(x) for x in job["maxDepth"]])
            .build()
        )
        return forest, grid

    def learned(self, best: Any, parser: DataParser, spark: Any, scratch_dir: str | None) -> dict[str, Any]:
        from predictionservice.sparkforest import forest_trees

        importances = best.featureImportances.toArray()
        by_feature = {f.key: float(importances[f.offset : f.offset + f.width].sum()) for f in parser.features}
        return {
            "trees": forest_trees(best, spark, scratch_dir),
            "feature_importances": by_feature,
        }

    def compile(self, stored: Mapping[str, Any]) -> ForestPredictor:
        return ForestPredictor(DataParser(stored["schema"]), stored["trees"])

    def prepare(self, df: Any, stored: Mapping[str, Any], parser: DataParser) -> Any:
        from predictionservice.scorecolumns import record_column
        from predictionservice.sparkfeatures import vector_slots

        slots, error = vector_slots(parser, df.schema)
        return df.select(slots.alias("slots"), error.alias("error"), record_column(df).alias("value"))

    def outputs(self, prepared: Any, stored: Mapping[str, Any], parser: DataParser) -> Any:
        from pyspark.sql import functions as F

        from predictionservice.scorecolumns import argmax_column, class_output
        from predictionservice.sparkforest import forest_scores

        names = parser.class_names
        scored = forest_scores(prepared, stored["trees"], len(names) or None, parser.num_features)
        if not names:
            prediction = F.col("result")[0]
            return scored.select(prediction.alias("score"), prediction.alias("prediction"), "value")
        probabilities = [F.col("result")[i] for i in range(len(names))]
        return scored.select(*class_output(probabilities, argmax_column(probabilities), names), "value")
