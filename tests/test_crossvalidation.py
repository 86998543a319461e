"""crossvalidation.py: the held-out metrics, and the evaluator cross-validation ranks binary
grid points by (the fitting itself is held by the algorithms' tests, which run it on Spark)."""

import pytest


def _predictions(spark, rows):
    from pyspark.ml.linalg import Vectors

    return spark.createDataFrame(
        [(float(label), float(pred), Vectors.dense(raw), Vectors.dense(prob)) for label, pred, raw, prob in rows],
        ["label", "prediction", "rawPrediction", "probability"],
    )


def _calibrated(rng, n):
    """n binary predictions (label, prediction, raw, probability) whose label is 1 with the
    predicted probability."""
    rows = []
    for _ in range(n):
        p = rng.random()
        rows.append((int(rng.random() < p), int(p > 0.5), [-p, p], [1 - p, p]))
    return rows


def approx(value):
    return pytest.approx(value, rel=1e-12)  # the same sums, reduced in another order


def test_heldout_metrics_equal_what_each_evaluator_computes_alone(spark):
    """Issue 16: the held-out figures come from one metrics object per curve or confusion
    matrix; they must be the figures each evaluator gives by itself."""
    import random

    from pyspark.ml.evaluation import (
        BinaryClassificationEvaluator,
        MulticlassClassificationEvaluator,
        RegressionEvaluator,
    )

    from predictionservice.crossvalidation import heldout_metrics

    rng = random.Random(3)
    df = _predictions(spark, _calibrated(rng, 400)).cache()
    metrics, rows = heldout_metrics(df, "binary")
    assert rows == 400 and set(metrics) == {"accuracy", "auc", "area_under_pr", "log_loss"}
    assert metrics["auc"] == approx(BinaryClassificationEvaluator().evaluate(df))
    assert metrics["area_under_pr"] == approx(BinaryClassificationEvaluator(metricName="areaUnderPR").evaluate(df))
    assert metrics["log_loss"] == approx(MulticlassClassificationEvaluator(metricName="logLoss").evaluate(df))
    assert metrics["accuracy"] == approx(MulticlassClassificationEvaluator(metricName="accuracy").evaluate(df))
    assert 0.6 < metrics["auc"] < 1
    df.unpersist()  # nothing stays cached: test_modelfactory counts the session's cached RDDs

    three = []
    for _ in range(300):
        probs = [rng.random() for _ in range(3)]
        probs = [p / sum(probs) for p in probs]
        three.append((rng.randrange(3), probs.index(max(probs)), probs, probs))
    df = _predictions(spark, three).cache()
    metrics, rows = heldout_metrics(df, "multiclass")
    assert rows == 300 and set(metrics) == {"accuracy", "f1", "log_loss"}
    assert metrics["f1"] == approx(MulticlassClassificationEvaluator(metricName="f1").evaluate(df))
    assert metrics["log_loss"] == approx(MulticlassClassificationEvaluator(metricName="logLoss").evaluate(df))
    df.unpersist()

    line = [(x + rng.gauss(0, 0.5), x, [0.0], [0.0]) for x in (rng.uniform(-3, 3) for _ in range(200))]
    df = _predictions(spark, line).cache()
    metrics, rows = heldout_metrics(df, "regression")
    assert rows == 200
    for name in ("rmse", "mae", "r2"):
        assert metrics[name] == approx(RegressionEvaluator(metricName=name).evaluate(df))
    assert 0.3 < metrics["rmse"] < 0.7
    df.unpersist()


def test_cross_validation_ranks_by_the_exact_auc(spark):
    """Issue 16: the cross-validation evaluator takes every distinct score (numBins 0): the AUC
    is exact (scikit-learn's), where the default 1,000 bins of 5,000 scores round it, and each
    evaluation runs one Spark job fewer."""
    import random

    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from sklearn.metrics import roc_auc_score

    from predictionservice.crossvalidation import CV_METRICS

    rows = _calibrated(random.Random(5), 5000)
    df = _predictions(spark, rows).cache()
    exact = roc_auc_score([r[0] for r in rows], [r[2][1] for r in rows])
    evaluator_class, metric = CV_METRICS["binary"]
    evaluator = evaluator_class(metricName=metric)
    assert evaluator.getNumBins() == 0
    assert evaluator.evaluate(df) == approx(exact)
    assert BinaryClassificationEvaluator().evaluate(df) != approx(exact)  # what the default gives
    df.unpersist()
