"""Cross-validation of a training run: the grid fitted on the training split with each fit
reported, the best model chosen by the task's metric, and its metrics on the held-out split.

Only worker processes import this module (it imports pyspark at the top).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pyspark.ml.evaluation import BinaryClassificationEvaluator, MulticlassClassificationEvaluator, RegressionEvaluator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from predictionservice.sparkprogress import (
    MulticlassProgressEvaluator,
    ProgressEvaluator,
    RegressionProgressEvaluator,
    fold_progress,
)

# How cross-validation chooses a grid point, by task: the evaluator and its metric.
CV_METRICS = {
    "binary": (ProgressEvaluator, "areaUnderROC"),
    "multiclass": (MulticlassProgressEvaluator, "logLoss"),
    "regression": (RegressionProgressEvaluator, "rmse"),
}


def cross_validate(
    estimator: Any,
    grid: list,
    encoded: DataFrame,
    task: str,
    job: Mapping[str, Any],
    handler: Any,
    *,
    parallelism: int,
    profile_scores: Callable[[DataFrame], Any] | None = None,
) -> dict[str, Any]:
    """CrossValidator over the grid on the training split, each fit reported; then the best
    model's predictions on the held-out split and the task's metrics there (and, given
    profile_scores, what it makes of those predictions while they are cached: the score's
    training profile, predictionservice.sparkprofile)."""
    from pyspark.ml.tuning import CrossValidator

    valid = encoded.filter(F.col("error").isNull())
    train_df = valid.filter(~F.col("heldout")).select("features", "label").cache()
    test_df = valid.filter(F.col("heldout")).select("features", "label")
    folds = int(job["numFolds"])
    evaluator_class, metric = CV_METRICS[task]
    evaluator = evaluator_class(metricName=metric)
    evaluator.on_evaluate = fold_progress(handler, folds, len(grid))
    handler.progress(f"fitting fold 1 of {folds}", 0.15)
    cv_model = CrossValidator(
        estimator=estimator,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        numFolds=folds,
        seed=int(job["seed"]),
        parallelism=int(parallelism),
    ).fit(train_df)
    handler.progress("evaluating the best model on the held-out split", 0.85)
    predictions = cv_model.bestModel.transform(test_df).cache()
    metrics, rows = heldout_metrics(predictions, task)
    scores = profile_scores(predictions) if profile_scores is not None else None
    for cached in (predictions, train_df, encoded):
        cached.unpersist()
    cv_metrics = [float(x) for x in cv_model.avgMetrics]
    sign = 1 if evaluator.isLargerBetter() else -1
    best_index = max(range(len(cv_metrics)), key=lambda i: sign * cv_metrics[i])
    return {
        "best": cv_model.bestModel,
        "cv": {"metric": metric, "values": cv_metrics, "best_grid_index": best_index},
        "metrics": metrics,
        "holdout_rows": rows,
        "score_profile": scores,
    }


def heldout_metrics(predictions: DataFrame, task: str) -> tuple[dict[str, float], int]:
    """The task's metrics on the held-out predictions, and how many rows they cover. Figures that
    share a curve or a confusion matrix come from one metrics object: one pass each, not one
    per figure (a Spark job costs tens of milliseconds whatever its size)."""
    if task == "regression":
        summary = spark_metrics(RegressionEvaluator(), predictions)
        metrics = {"rmse": summary.rootMeanSquaredError(), "mae": summary.meanAbsoluteError(), "r2": summary.r2()}
        return metrics, summary.count()
    agg = predictions.agg(
        F.avg((F.col("prediction") == F.col("label")).cast("double")).alias("accuracy"), F.count("*").alias("rows")
    ).first()
    metrics = {"accuracy": agg["accuracy"]}
    if task == "binary":
        curve = spark_metrics(BinaryClassificationEvaluator(), predictions)
        try:
            metrics["auc"], metrics["area_under_pr"] = curve.areaUnderROC(), curve.areaUnderPR()
        finally:
            curve.unpersist()
    evaluator = MulticlassClassificationEvaluator(metricName="logLoss")
    classes = spark_metrics(evaluator, predictions)  # with the probabilities: logLoss needs them
    if task != "binary":
        metrics["f1"] = classes.weightedFMeasure()
    metrics["log_loss"] = classes.logLoss(evaluator.getEps())
    return metrics, agg["rows"]


def spark_metrics(evaluator: Any, predictions: DataFrame) -> Any:
    """The JVM metrics object an evaluator computes its figure from (Scala's public getMetrics,
    which PySpark does not wrap), with the evaluator's parameters."""
    evaluator._transfer_params_to_java()
    return evaluator._java_obj.getMetrics(predictions._jdf)
