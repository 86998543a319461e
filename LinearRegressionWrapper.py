"""LinearRegressionWrapper: a numeric label (no ``values``) predicted by a linear model.

Grid: ``regParam`` x ``elasticNetParam`` (ridge, lasso or the elastic net between); also
``iterations``, ``tol``, ``standardization``. Held-out metrics: ``rmse``, ``mae``, ``r2``.

* ``train`` (worker, through ``Algorithm.train``): Spark ML ``LinearRegression`` cross-validated
  by RMSE, stored as coefficients, an intercept and the training means of the encoded columns
  (``feature_means``: explanations are measured from them).
* ``compile`` (web): ``predictors.LinearRegressor`` in numpy.
* ``prepare``/``outputs`` (worker): the prediction is one column expression per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dataparser import DataParser
from LogisticRegressionWrapper import LINEAR_DEFAULTS, LINEAR_FIELDS, LINEAR_HELP, linear_grid
from modelfactory import Algorithm
from predictionservice.predictors import LinearRegressor

NAME = "LinearRegressionWrapper"


class LinearRegressionWrapper(Algorithm):
    name = NAME
    title = "linear regression"
    summary = "a weight per feature: quick to train, its effects read directly; for a number"
    stores_feature_means = True
    tasks = frozenset({"regression"})
    job_fields = LINEAR_FIELDS
    field_help = LINEAR_HELP
    DEFAULTS = LINEAR_DEFAULTS

    def estimator(self, job: Mapping[str, Any], parser: DataParser) -> tuple[Any, list]:
        from pyspark.ml.regression import LinearRegression

        linear = LinearRegression(
            maxIter=int(job["iterations"]), tol=float(job["tol"]), standardization=bool(job["standardization"])
        )
        return linear, linear_grid(linear, job)

    def learned(self, best: Any, parser: DataParser, spark: Any, scratch_dir: str | None) -> dict[str, Any]:
        return {"coefficients": best.coefficients.toArray().tolist(), "intercept": float(best.intercept)}

    def compile(self, stored: Mapping[str, Any]) -> LinearRegressor:
        parser = DataParser(stored["schema"])
        return LinearRegressor(parser, stored["coefficients"], stored["intercept"], stored.get("feature_means"))

    def prepare(self, df: Any, stored: Mapping[str, Any], parser: DataParser) -> Any:
        from predictionservice.scorecolumns import record_column
        from predictionservice.sparkfeatures import margin_column

        value, error = margin_column(parser, df.schema, stored["coefficients"], stored["intercept"])
        return df.select(value.alias("prediction"), error.alias("error"), record_column(df).alias("value"))

    def outputs(self, prepared: Any, stored: Mapping[str, Any], parser: DataParser) -> Any:
        from pyspark.sql import functions as F

        return prepared.select(F.col("prediction").alias("score"), "prediction", "value")
