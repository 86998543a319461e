"""sparkml.py: what the encoding records of the read schema, and cross-validation (its folds and
means are CrossValidator's, its fits run in the caller's job group, its training split is cached
as configured). The rest of the module is held by the algorithms' tests, which run it on Spark."""

import pytest
from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType

from dataparser import DataParser
from helpers import known_rows
from predictionservice.sparkml import integral_features

SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "age"}, {"key": "x"}, {"key": "n"}, {"key": "s"}, {"key": "job", "values": {"a": 0}}],
}


def test_integral_features_are_the_numeric_features_read_as_whole_numbers():
    read = StructType(
        [
            StructField("age", LongType()),
            StructField("x", DoubleType()),
            StructField("n", IntegerType()),
            StructField("s", StringType()),  # numbers spelled as text: not integral
            StructField("job", LongType()),  # a categorical is BYTES whatever its column
            StructField("y", StringType()),
        ]
    )
    assert integral_features(DataParser(SCHEMA), read) == ["age", "n"]


# ------------------------------------------------------------------------------ cross-validation


def labelled_frame(spark, n: int = 900, partitions: int = 3):
    """(features, label) rows of a known logistic model, cached in that many partitions."""
    from pyspark.ml.linalg import Vectors

    rows, schema, _ = known_rows("logistic", n, seed=5)
    parser = DataParser(schema)
    data = [(Vectors.dense(parser.encode_one(r)), float(parser.encode_label(r))) for r in rows]
    frame = spark.createDataFrame(data, ["features", "label"]).repartition(partitions).cache()
    frame.count()
    return frame


def logistic_grid(reg_params=(0.001, 0.05, 0.5)):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.tuning import ParamGridBuilder

    lr = LogisticRegression(maxIter=20, tol=1e-6)
    return lr, ParamGridBuilder().addGrid(lr.regParam, list(reg_params)).build()


def test_fold_metrics_are_crossvalidators_avg_metrics_whatever_runs_at_once(spark):
    """The same folds (rand(seed) over the same partitions), fits and means as Spark's own
    CrossValidator: running every fold's fits at once changes no number. One partition: with
    several, a treeAggregate sums its tasks' results in the order they finish, and the last bits
    of a gradient (so of a fit) vary from run to run, CrossValidator's own included."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator

    from predictionservice.sparkml import fold_metrics

    frame = labelled_frame(spark, n=400, partitions=1)
    lr, grid = logistic_grid((0.001, 0.5))
    evaluator = BinaryClassificationEvaluator(metricName="areaUnderROC")
    theirs = CrossValidator(estimator=lr, estimatorParamMaps=grid, evaluator=evaluator, numFolds=3, seed=11).fit(frame)
    for parallelism in (1, 6):
        ours = fold_metrics(lr, grid, evaluator, frame, 3, 11, {"spark_cv_parallelism": parallelism})
        assert ours == pytest.approx([float(m) for m in theirs.avgMetrics], rel=1e-12, abs=1e-12), parallelism
    frame.unpersist()


def test_the_fits_run_in_the_callers_job_group(spark):
    """A job's Spark work runs under its id (job_group), which is what cancels it: the fits run
    on pool threads, and every Spark job they start must still carry the group."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator

    from predictionservice.sparkml import fold_metrics
    from predictionservice.sparksession import job_group

    frame = labelled_frame(spark, n=300)
    lr, grid = logistic_grid((0.01, 0.1))
    tracker = spark.sparkContext.statusTracker()
    ungrouped = set(tracker.getJobIdsForGroup(None))
    with job_group(spark, "cv-group-test", "cross-validation in a job group"):
        fold_metrics(lr, grid, BinaryClassificationEvaluator(), frame, 2, 3, {"spark_cv_parallelism": 4})
    grouped = tracker.getJobIdsForGroup("cv-group-test")
    assert len(grouped) >= 2 * 2 * 2  # each fit: at least a summary and an iteration
    assert set(tracker.getJobIdsForGroup(None)) == ungrouped
    frame.unpersist()


def test_the_training_split_is_cached_in_the_configured_partitions(spark):
    from predictionservice.sparkml import training_set

    frame = labelled_frame(spark, n=200, partitions=1)
    three = training_set(frame, {"spark_train_partitions": 3})
    assert three.rdd.getNumPartitions() == 3 and three.storageLevel.useMemory
    as_read = training_set(frame, {"spark_train_partitions": 0})
    assert as_read.rdd.getNumPartitions() == 1 and as_read.storageLevel.useMemory
    assert as_read.count() == three.count() == 200
    for cached in (three, as_read, frame):
        cached.unpersist()
