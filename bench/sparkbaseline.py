"""The bare PySpark baseline of a training job: the job's cross-validation written directly
against Spark ML, with nothing of the service around it.

The rows are the job's input already encoded (``DataParser.encode``, the same columns the
service's worker makes) and held in memory as a cached DataFrame of (features, label), counted
before the clock starts; the timed part is what the service's job also does on its rows:
randomSplit into training and held-out rows by the job's ``holdoutFraction`` and ``seed``,
``CrossValidator`` over the job's grid (regParam x elasticNetParam) with its ``numFolds`` and
seed and the service's ``spark_cv_parallelism``, the binary AUC as the folds' metric, then the
best model's held-out AUC. What the service adds beyond this (reading MongoDB through its data
source, encoding in Spark, the promotion gate, the training profile, saving the model, the job
record, the queue) is what service / bare measures (bench_train).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np


def in_memory_frame(spark: Any, X: np.ndarray, y: np.ndarray) -> Any:
    """The encoded rows as a cached (features, label) DataFrame, materialised (untimed)."""
    from pyspark.ml.linalg import Vectors

    rows = [(Vectors.dense(x), float(label)) for x, label in zip(X.tolist(), y.tolist(), strict=True)]
    frame = spark.createDataFrame(rows, ["features", "label"]).cache()
    frame.count()
    return frame


def cross_validate(frame: Any, job: Mapping[str, Any], parallelism: int) -> dict[str, Any]:
    """The job's split, cross-validation and held-out evaluation on frame: seconds and AUC."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator

    from LogisticRegressionWrapper import linear_grid

    started = time.perf_counter()
    heldout = float(job["holdoutFraction"])
    train, test = frame.randomSplit([1.0 - heldout, heldout], seed=int(job["seed"]))
    train = train.cache()
    lr = LogisticRegression(
        maxIter=int(job["iterations"]), tol=float(job["tol"]), standardization=bool(job["standardization"]),
        family="binomial",
    )  # fmt: skip
    evaluator = BinaryClassificationEvaluator(metricName="areaUnderROC")
    model = CrossValidator(
        estimator=lr, estimatorParamMaps=linear_grid(lr, job), evaluator=evaluator,
        numFolds=int(job["numFolds"]), seed=int(job["seed"]), parallelism=int(parallelism),
    ).fit(train)  # fmt: skip
    auc = evaluator.evaluate(model.bestModel.transform(test))
    seconds = time.perf_counter() - started
    train.unpersist()
    return {"seconds": seconds, "auc": float(auc), "fits": len(model.avgMetrics) * int(job["numFolds"]) + 1}
