"""LogisticRegressionWrapper: the classic algorithm of the service, binary or multinomial.

The job's schema decides: a label whose ``values`` map two categories to 0 and 1 is a binary
model (one coefficient vector and an intercept, the sigmoid of the margin); k > 2 categories a
multinomial one (a coefficient row and an intercept per class, softmax). Grid: ``regParam`` x
``elasticNetParam``; also ``iterations``, ``tol``, ``standardization``.

* ``train`` (worker, through ``Algorithm.train``): Spark ML ``LogisticRegression`` cross-validated
  over the grid, evaluated on the held-out split, stored as JSON in Redis db 1 under the job id.
  With it the training means of the encoded columns (``feature_means``), what an explanation's
  contributions are measured from.
* ``compile`` (web): ``predictors.LinearClassifier`` in numpy. No Spark, no JVM.
* ``prepare``/``outputs`` (worker): batch scoring as column expressions, no Python per row.

pyspark is imported inside the worker-side methods only, so the web process, which compiles
predictors from this module, never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataparser import DataParser
from modelfactory import Algorithm
from predictionservice.predictors import LinearClassifier
from predictionservice.validation import numbers

NAME = "LogisticRegressionWrapper"

LINEAR_FIELDS = {
    "regParam": numbers(0, 1e6),
    "elasticNetParam": numbers(0, 1),
    "iterations": {"type": "integer", "minimum": 1, "maximum": 10_000},
    "tol": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "standardization": {"type": "boolean"},
}
# One line each, for the training page.
LINEAR_HELP = {
    "regParam": "regularization: larger values shrink the weights (less overfitting); each value is tried",
    "elasticNetParam": "0 is ridge (keeps every feature), 1 is lasso (drops weak ones), between a mix",
    "iterations": "the most optimizer steps a fit may take",
    "tol": "the optimizer stops when a step improves less than this",
    "standardization": "scale the features before fitting (the stored weights are in their own units)",
}
# What a job may leave out of them. The regularisation grids start above zero: on separable data
# an unregularised fit saturates its probabilities to exactly 0 and 1.
LINEAR_DEFAULTS = {
    "regParam": [0.001, 0.01],
    "elasticNetParam": [0.0],
    "iterations": 100,
    "tol": 1e-6,
    "standardization": True,
}


def linear_grid(estimator: Any, job: Mapping[str, Any]) -> list:
    """regParam x elasticNetParam, the grid both linear algorithms take."""
    from pyspark.ml.tuning import ParamGridBuilder

    return (
        ParamGridBuilder()
        .addGrid(estimator.regParam, [float(x) for x in job["regParam"]])
        .addGrid(estimator.elasticNetParam, [float(x) for x in job["elasticNetParam"]])
        .build()
    )


class LogisticRegressionWrapper(Algorithm):
    name = NAME
    title = "logistic regression"
    summary = "a weight per feature: quick to train, its effects read directly; for classes"
    stores_feature_means = True
    tasks = frozenset({"binary", "multiclass"})
    job_fields = LINEAR_FIELDS
    field_help = LINEAR_HELP
    DEFAULTS = LINEAR_DEFAULTS

    def estimator(self, job: Mapping[str, Any], parser: DataParser) -> tuple[Any, list]:
        from pyspark.ml.classification import LogisticRegression

        lr = LogisticRegression(
            maxIter=int(job["iterations"]),
            tol=float(job["tol"]),
            standardization=bool(job["standardization"]),
            family="binomial" if parser.task == "binary" else "multinomial",
        )
        return lr, linear_grid(lr, job)

    def learned(self, best: Any, parser: DataParser, spark: Any, scratch_dir: str | None) -> dict[str, Any]:
        if parser.task == "binary":
            return {"coefficients": best.coefficients.toArray().tolist(), "intercept": float(best.intercept)}
        return {
            "coefficient_matrix": best.coefficientMatrix.toArray().tolist(),
            "intercepts": best.interceptVector.toArray().tolist(),
        }

    def compile(self, stored: Mapping[str, Any]) -> LinearClassifier:
        parser = DataParser(stored["schema"])
        if "coefficient_matrix" in stored:
            return LinearClassifier(
                parser, stored["coefficient_matrix"], stored["intercepts"], stored.get("feature_means")
            )
        return LinearClassifier(parser, [stored["coefficients"]], [stored["intercept"]], stored.get("feature_means"))

    # -------------------------------------------------------------------------- batch scoring

    def prepare(self, df: Any, stored: Mapping[str, Any], parser: DataParser) -> Any:
        from predictionservice.scorecolumns import record_column
        from predictionservice.sparkfeatures import margin_column

        if "coefficient_matrix" in stored:
            rows = list(zip(stored["coefficient_matrix"], stored["intercepts"], strict=True))
        else:
            rows = [(stored["coefficients"], stored["intercept"])]
        pairs = [margin_column(parser, df.schema, weights, intercept) for weights, intercept in rows]
        margins = [margin.alias(f"m{i}") for i, (margin, _) in enumerate(pairs)]
        return df.select(*margins, pairs[0][1].alias("error"), record_column(df).alias("value"))

    def outputs(self, prepared: Any, stored: Mapping[str, Any], parser: DataParser) -> Any:
        from pyspark.sql import functions as F

        from predictionservice.scorecolumns import argmax_column, class_output, sigmoid_column, softmax_columns

        margins = [F.col(c) for c in prepared.columns if c.startswith("m") and c[1:].isdigit()]
        if len(margins) == 1:
            p = sigmoid_column(margins[0])
            probabilities, predicted = [F.lit(1.0) - p, p], (margins[0] > 0).cast("int")
        else:
            probabilities, predicted = softmax_columns(margins), argmax_column(margins)
        return prepared.select(*class_output(probabilities, predicted, parser.class_names), "value")
