"""LogisticRegressionWrapper: the classic algorithm of the service.

* ``train`` (worker): reads the input collection through the Spark MongoDB source, encodes it with
  the DataParser column expressions, holds out a seeded split, runs
  ``CrossValidator(Pipeline([LogisticRegression]))`` over the job's ``regParam`` x
  ``elasticNetParam`` grid, evaluates the best model on the held-out split and stores it (JSON,
  Redis db 1, key = job id). Re-running a job writes the same key: training is idempotent.
* ``compile`` (web): a numpy predictor from the stored coefficients. No Spark, no JVM.
* ``predict_all`` (worker): scores a collection with column expressions and writes
  ``{score, probability, value}`` documents, replacing the output only on success.

pyspark (and the library's Spark modules) are imported inside the worker-side functions only, so
the web process, which compiles predictors from this module, never loads it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dataparser import DataParser
from modelfactory import Resources
from predictionservice.exceptions import InvalidSchema, NotFound, RecordError, ServiceError
from predictionservice.jobstore import iso
from predictionservice.mongotarget import CollectionRef, redact_job, resolve
from predictionservice.validation import job_with_defaults

NAME = "LogisticRegressionWrapper"
ERROR_EXAMPLES = 3


class LinearPredictor:
    """Scores records with a stored binary logistic-regression model, in numpy."""

    def __init__(self, model: Mapping[str, Any]):
        self.parser = DataParser(model["schema"])
        self.weights = np.asarray(model["coefficients"], dtype=np.float64)
        self.intercept = float(model["intercept"])
        if self.weights.shape != (self.parser.num_features,):
            raise InvalidSchema(
                f"stored model has {self.weights.size} coefficients for {self.parser.num_features} features"
            )
        self.labels = [self.parser.label_name(0), self.parser.label_name(1)]
        # The schema as JSON text: a body that repeats it verbatim agrees without being parsed.
        self.schema_json = json.dumps(self.parser.schema())

    def schema(self) -> dict[str, Any]:
        return self.parser.schema()

    def predict_one(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The common online case: one vector, scalar arithmetic, no column-wise batch set-up."""
        vector = np.asarray(self.parser.encode_one(record), dtype=np.float64)
        margin = vector @ self.weights + self.intercept
        with np.errstate(over="ignore"):
            probability = 1.0 / (1.0 + np.exp(-margin))
        positive = bool(margin > 0)
        return {"prediction": int(positive), "label": self.labels[positive], "probability": float(probability)}

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if len(records) == 1:
            try:
                return [self.predict_one(records[0])]
            except RecordError as exc:
                raise exc.at(0) from None
        margin = self.parser.encode(records) @ self.weights + self.intercept
        with np.errstate(over="ignore"):
            probability = 1.0 / (1.0 + np.exp(-margin))
        labels = self.labels
        return [
            {"prediction": int(m > 0), "label": labels[int(m > 0)], "probability": float(p)}
            for m, p in zip(margin.tolist(), probability.tolist(), strict=True)
        ]


class LogisticRegressionWrapper:
    name = NAME

    @staticmethod
    def check_schema(parser: DataParser) -> None:
        """The labels this algorithm takes, checked at submission (400) and again on the worker."""
        if parser.label_values is None:
            raise InvalidSchema(
                f"{NAME} is a binary classifier: schema.label '{parser.label_key}' has no 'values', which makes "
                'it a number to predict; map its two categories to 0 and 1, e.g. {"no": 0, "yes": 1}'
            )
        if sorted(parser.label_values.values()) != [0, 1]:
            raise InvalidSchema(
                f"{NAME} is a binary classifier: schema.label.values must map two categories to 0 and 1"
            )

    def compile(self, stored: Mapping[str, Any]) -> LinearPredictor:
        return LinearPredictor(stored)

    # ------------------------------------------------------------------------------ training

    def train(self, job: Mapping[str, Any], resources: Resources, handler: Any) -> dict[str, Any]:
        started = time.monotonic()
        job = job_with_defaults(job)
        parser = DataParser(job["schema"])
        self.check_schema(parser)
        source = resolve(job["inputCollection"], resources.params, "inputCollection")
        handler.progress(f"reading {source}", 0.05)
        _check_fields(resources.mongo.collection(source), source, parser)
        spark = resources.spark()
        from predictionservice.sparksession import job_group

        with job_group(spark, handler.job_id, f"training {source}"):
            encoded, stats = _encoded(spark, job, parser, source, resources.params)
            _check_classes(stats["classes"], parser, source, stats["rows"], stats["invalid"])
            handler.progress(f"encoded {stats['rows']} rows of {source}{_skipping(stats['invalid'])}", 0.1)
            fit = _cross_validate(encoded, job, resources.params, handler)
        handler.progress("saving the model", 0.95)
        model = _stored_model(handler.job_id, job, parser, fit, stats, time.monotonic() - started)
        resources.models.save(handler.job_id, model)
        return model

    # -------------------------------------------------------------------------- batch scoring

    def predict_all(
        self, stored: Mapping[str, Any], job: Mapping[str, Any], resources: Resources, handler: Any
    ) -> dict[str, Any]:
        parser = DataParser(stored["schema"])
        params = resources.params
        source = resolve(job["inputCollection"], params, "inputCollection")
        target = resolve(job["outputCollection"], params, "outputCollection")
        handler.progress(f"reading {source}", 0.05)
        if resources.mongo.collection(source).find_one({}, {"_id": 1}) is None:
            raise NotFound(f"input collection {source} is empty or does not exist")
        spark = resources.spark()
        from pyspark.sql import functions as F

        from predictionservice.sparkml import margin_column, record_column
        from predictionservice.sparksession import job_group, read_collection, write_collection

        with job_group(spark, handler.job_id, f"scoring {source} into {target}"):
            df = read_collection(
                spark, source, partitions=params["spark_read_partitions"], partition_mb=params["spark_partition_mb"]
            )
            margin, error = margin_column(parser, df.schema, stored["coefficients"], stored["intercept"])
            scored = df.select(margin.alias("margin"), error.alias("error"), record_column(df).alias("value")).cache()
            stats = scored.groupBy("error").count().collect()
            invalid = _invalid(stats)
            rows = sum(r["count"] for r in stats if r["error"] is None)
            handler.progress(f"scoring {rows} rows into {target}{_skipping(invalid)}", 0.3)
            out = scored.filter(F.col("error").isNull()).select(
                (F.col("margin") > 0).cast("int").alias("score"),
                (F.lit(1.0) / (F.lit(1.0) + F.exp(-F.col("margin")))).alias("probability"),
                "value",
            )
            write_collection(out, target, batch_size=params["spark_write_batch"], overwrite=True)
            scored.unpersist()
        return {"rows": rows, "invalid_rows": sum(invalid.values()), "invalid_reasons": _reasons(invalid)}


def _encoded(spark: Any, job: Mapping[str, Any], parser: DataParser, source: CollectionRef, params: Any) -> tuple:
    """The input's valid rows encoded and cached (features, label, heldout), and its counts:
    rows, invalid rows by reason, and rows per class."""

    from predictionservice.sparkml import feature_columns, heldout_column
    from predictionservice.sparksession import read_collection

    fields = [parser.label_key, *(f.key for f in parser.features)]
    df = read_collection(
        spark,
        source,
        partitions=params["spark_read_partitions"],
        partition_mb=params["spark_partition_mb"],
        fields=fields,
    )
    features, label, error = feature_columns(parser, df.schema)
    heldout = heldout_column(fields, int(job["seed"]), float(job["holdoutFraction"]))
    encoded = df.select(
        features.alias("features"), label.alias("label"), error.alias("error"), heldout.alias("heldout")
    ).cache()
    stats = encoded.groupBy("error", "label").count().collect()
    counts = {
        "rows": sum(r["count"] for r in stats),
        "invalid": _invalid(stats),
        "classes": {r["label"]: r["count"] for r in stats if r["error"] is None},
    }
    return encoded, counts


def _cross_validate(encoded: Any, job: Mapping[str, Any], params: Any, handler: Any) -> dict[str, Any]:
    """CrossValidator over the grid on the training split, the best model evaluated on the
    held-out split; what the stored model keeps of it."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
    from pyspark.sql import functions as F

    from predictionservice.sparkml import ProgressEvaluator, fold_progress

    valid = encoded.filter(F.col("error").isNull())
    train_df = valid.filter(~F.col("heldout")).select("features", "label").cache()
    test_df = valid.filter(F.col("heldout")).select("features", "label")
    lr = LogisticRegression(
        maxIter=int(job["iterations"]), tol=float(job["tol"]), standardization=bool(job["standardization"])
    )
    grid = (
        ParamGridBuilder()
        .addGrid(lr.regParam, [float(x) for x in job["regParam"]])
        .addGrid(lr.elasticNetParam, [float(x) for x in job["elasticNetParam"]])
        .build()
    )
    folds = int(job["numFolds"])
    evaluator = ProgressEvaluator(metricName="areaUnderROC")
    evaluator.on_evaluate = fold_progress(handler, folds, len(grid))
    handler.progress(f"fitting fold 1 of {folds}", 0.15)
    cv = CrossValidator(
        estimator=Pipeline(stages=[lr]),
        estimatorParamMaps=grid,
        evaluator=evaluator,
        numFolds=folds,
        seed=int(job["seed"]),
        parallelism=int(params["spark_cv_parallelism"]),
    )
    cv_model = cv.fit(train_df)

    handler.progress("evaluating the best model on the held-out split", 0.85)
    predictions = cv_model.bestModel.transform(test_df).cache()
    metrics = {
        "auc": BinaryClassificationEvaluator(metricName="areaUnderROC").evaluate(predictions),
        "area_under_pr": BinaryClassificationEvaluator(metricName="areaUnderPR").evaluate(predictions),
    }
    agg = predictions.agg(
        F.avg((F.col("prediction") == F.col("label")).cast("double")).alias("accuracy"),
        F.count("*").alias("rows"),
    ).first()
    metrics["accuracy"] = agg["accuracy"]
    for cached in (predictions, train_df, encoded):
        cached.unpersist()
    return {
        "best": cv_model.bestModel.stages[-1],
        "cv_auc": [float(x) for x in cv_model.avgMetrics],
        "metrics": metrics,
        "holdout_rows": agg["rows"],
    }


def _stored_model(
    key: str, job: Mapping[str, Any], parser: DataParser, fit: dict[str, Any], stats: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """The stored model: coefficients, schema, metrics and how it was trained."""
    best = fit["best"]
    return {
        "model_key": key,
        "name": NAME,
        "created_at": iso(time.time()),
        "coefficients": [float(x) for x in best.coefficients.toArray()],
        "intercept": float(best.intercept),
        "num_features": int(best.numFeatures),
        "num_classes": int(best.numClasses),
        "feature_names": parser.feature_names(),
        "schema": parser.schema(),
        "parameters": redact_job(job),
        "metrics": fit["metrics"],
        "training": {
            "rows": stats["rows"],
            "invalid_rows": sum(stats["invalid"].values()),
            "invalid_reasons": _reasons(stats["invalid"]),
            "holdout_rows": fit["holdout_rows"],
            "best_params": {
                "regParam": float(best.getRegParam()),
                "elasticNetParam": float(best.getElasticNetParam()),
            },
            "cv_auc": fit["cv_auc"],
            "best_grid_index": int(np.argmax(fit["cv_auc"])),
            "seconds": round(seconds, 3),
        },
    }


def _check_fields(collection: Any, source: CollectionRef, parser: DataParser) -> None:
    first = collection.find_one({})
    if first is None:
        raise NotFound(f"input collection {source} is empty or does not exist")
    keys = [parser.label_key, *(f.key for f in parser.features)]
    missing = [k for k in keys if k not in first and collection.find_one({k: {"$exists": True}}, {"_id": 1}) is None]
    if parser.label_key in missing:
        raise InvalidSchema(f"label field '{parser.label_key}' not found in {source}")
    if missing:
        names = ", ".join(f"'{k}'" for k in missing)
        raise InvalidSchema(f"feature field{'s' if len(missing) > 1 else ''} {names} not found in {source}")


def _check_classes(
    classes: dict[float, int], parser: DataParser, source: CollectionRef, total: int, invalid: dict[str, int]
) -> None:
    if not classes:
        raise ServiceError(
            f"no usable row in {source}: all {total} rows were rejected ({_describe(invalid)})", code="invalid_schema"
        )
    unexpected = sorted(k for k in classes if k not in (0.0, 1.0))
    if unexpected:
        raise InvalidSchema(
            f"{NAME} is a binary classifier: label '{parser.label_key}' has values {unexpected[:5]} besides 0 and 1"
        )
    if len(classes) < 2:
        only = parser.label_name(int(next(iter(classes))))
        raise InvalidSchema(f"label '{parser.label_key}' in {source} has only one class ({only!r}): nothing to learn")


def _invalid(stats: Sequence[Any]) -> dict[str, int]:
    """Rows that could not be encoded, counted by reason, from a groupBy("error", ...).count():
    a reason seen with several labels sums their counts."""
    invalid: dict[str, int] = {}
    for r in stats:
        if r["error"] is not None:
            invalid[r["error"]] = invalid.get(r["error"], 0) + r["count"]
    return invalid


def _reasons(invalid: dict[str, int]) -> dict[str, int]:
    return dict(list(invalid.items())[:ERROR_EXAMPLES])


def _skipping(invalid: dict[str, int]) -> str:
    return f"; skipping {_describe(invalid)}" if invalid else ""


def _describe(invalid: dict[str, int]) -> str:
    parts = [f"{count} rows where {reason}" for reason, count in sorted(invalid.items(), key=lambda kv: -kv[1])]
    shown = "; ".join(parts[:ERROR_EXAMPLES])
    return shown + (f"; and {len(parts) - ERROR_EXAMPLES} other reasons" if len(parts) > ERROR_EXAMPLES else "")
