"""The promotion gate's figures (predictionservice.gate): the name's production model and the new
version, each scored from its stored form by its algorithm's batch path (``prepare``/``outputs``,
what /predictall/ runs) on the raw held-out rows of the new version's training, and the policy
metric of each over the rows both can score.

The held-out rows are found as training found them (sparkfeatures.heldout_column over the new
job's fields with its seed, rows the new schema can encode); production reads them through its
own schema (its fields, its categories), so a production trained on another encoding is measured
as it serves. Rows it cannot score are counted by reason and left out of both figures. Truth is
the new schema's label; a class production does not know has probability 0 in its answers.
``compare_models`` is the same for any number of models (a comparison job, POST /models/compare);
the gate's ``compare`` is it for production alone, with the policy metric picked out.

Only worker processes import this module (it imports pyspark at the top).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from predictionservice.crossvalidation import heldout_metrics
from predictionservice.exceptions import GateError
from predictionservice.sparkfeatures import feature_columns, heldout_column, vector_slots

LABEL = "__gate_label"  # the new schema's label of a held-out row (carried in the scored ``value``)
UNSCORABLE = "__gate_unscorable_"  # + i: why the i-th compared model cannot score the row (null: it can)


@dataclass(frozen=True)
class Trained:
    """What the gate takes of the new version: its stored model and parser, and its job's input
    and held-out split."""

    model: Mapping[str, Any]
    parser: Any
    source: Any
    seed: int
    fraction: float


def compare(
    spark: Any,
    trained: Trained,
    production: Mapping[str, Any],
    metric: str,
    algorithm_of: Callable[[str], Any],
    *,
    partitions: int,
    partition_mb: float,
) -> dict[str, Any]:
    """The figures of predictionservice.gate: new, production (the metric of each), rows
    compared, held-out rows, and the rows production cannot score (count and reasons)."""
    task = trained.model.get("task")
    if production.get("task") != task:
        raise GateError(f"production is a {production.get('task')} model and the new version a {task} one")
    found = compare_models(spark, trained, [production], algorithm_of, partitions=partitions, partition_mb=partition_mb)
    new, produced = found["models"]
    heldout = found["heldout_rows"]
    figures: dict[str, Any] = {
        "heldout_rows": heldout,
        "rows": found["rows"],
        "unscorable_rows": produced["unscorable_rows"],
        "unscorable_reasons": produced["unscorable_reasons"],
    }
    if figures["rows"] == 0:
        figures["why_none"] = (
            f"production can score none of the {heldout} held-out rows: nothing compared"
            if heldout
            else "no held-out row to compare on"
        )
        return figures
    figures["new"], figures["production"] = new["metrics"][metric], produced["metrics"][metric]
    return figures


def heldout_rows(spark: Any, trained: Trained, parsers: Sequence[Any], partitions: int, partition_mb: float) -> Any:
    """The raw held-out rows the new version was measured on (cached), with the new label and
    each compared model's problem with each row (``error_column(i)`` for ``parsers[i]``)."""
    from predictionservice.sparksession import read_collection

    parser = trained.parser
    fields = [parser.label_key, *(f.key for f in parser.features)]
    wanted = list(dict.fromkeys([*fields, *(f.key for other in parsers for f in other.features)]))
    df = read_collection(spark, trained.source, partitions=partitions, partition_mb=partition_mb, fields=wanted)
    _, label, error = feature_columns(parser, df.schema)
    problems = [vector_slots(other, df.schema)[1].alias(error_column(i)) for i, other in enumerate(parsers)]
    held = heldout_column(fields, trained.seed, trained.fraction)
    return df.filter(held & error.isNull()).select("*", label.alias(LABEL), *problems).cache()


def error_column(i: int) -> str:
    """The column saying why the i-th compared model cannot score a row."""
    return f"{UNSCORABLE}{i}"


def compare_models(
    spark: Any,
    trained: Trained,
    others: Sequence[Mapping[str, Any]],
    algorithm_of: Callable[[str], Any],
    *,
    partitions: int,
    partition_mb: float,
) -> dict[str, Any]:
    """The newest model (trained) and others, each scored from its stored form by its algorithm's
    batch path on the newest one's held-out rows that every one of them can score: each one's
    metrics of the task, in order (the newest first), with the rows compared and, per model, the
    rows it cannot score and why (those rows count for none of them)."""
    parsers = [algorithm_of(m["name"]).parse(m["schema"]) for m in others]
    rows = heldout_rows(spark, trained, parsers, partitions, partition_mb)
    try:
        columns = [error_column(i) for i in range(len(others))]
        stats = rows.groupBy(*columns).count().collect()
        heldout = sum(r["count"] for r in stats)
        unscorable = [_reasons(stats, column) for column in columns]
        usable = rows.filter(F.coalesce(*[F.col(c) for c in columns]).isNull()).drop(*columns)
        compared = sum(r["count"] for r in stats if all(r[c] is None for c in columns))
        figures: dict[str, Any] = {"heldout_rows": heldout, "rows": compared, "models": []}
        classes = list(trained.parser.class_names or [])
        models = [(trained.model, trained.parser, {}), *zip(others, parsers, unscorable, strict=True)]
        for stored, parser, reasons in models:
            metrics = figures_of(usable, stored, parser, algorithm_of, classes) if compared else {}
            figures["models"].append({
                "model_key": stored.get("model_key"), "metrics": metrics,
                "unscorable_rows": sum(reasons.values()), "unscorable_reasons": reasons,
            })  # fmt: skip
        if compared == 0:
            figures["why_none"] = "no held-out row every model can score: nothing compared"
        return figures
    finally:
        rows.unpersist()


def _reasons(stats: list[Any], column: str) -> dict[str, int]:
    """Rows by the reason the column gives (a row with none is left out)."""
    found: dict[str, int] = {}
    for row in stats:
        if row[column] is not None:
            found[row[column]] = found.get(row[column], 0) + row["count"]
    return found


def figures_of(
    rows: DataFrame, stored: Mapping[str, Any], parser: Any, algorithm_of: Callable[[str], Any], classes: list[str]
) -> dict[str, float]:
    """Every held-out metric of the task (what training measures) of a stored model over rows,
    scored by its algorithm's batch path."""
    algorithm = algorithm_of(stored["name"])
    prepared = algorithm.prepare(rows, stored, parser)
    scored = algorithm.outputs(prepared.filter(F.col("error").isNull()), stored, parser)
    metrics, _ = heldout_metrics(metric_frame(scored, classes), stored["task"])
    return {name: float(value) for name, value in metrics.items()}


def metric_frame(scored: DataFrame, classes: list[str]) -> DataFrame:
    """Scored rows as Spark's evaluators read them: label, prediction and (classification) the
    probability of each of the new schema's classes, by name (0 for a class the model lacks)."""
    truth = F.col("value")[LABEL].alias("label")
    if not classes:
        return scored.select(truth, F.col("prediction").cast("double").alias("prediction"))
    names = F.array(*[F.lit(name) for name in classes])
    chosen = (F.array_position(names, F.col("label")) - F.lit(1)).cast("double")  # -1: a class unknown here
    probability = array_to_vector(
        F.array(*[F.coalesce(F.col("probabilities")[name], F.lit(0.0)).cast("double") for name in classes])
    )
    return scored.select(
        truth, chosen.alias("prediction"), probability.alias("probability"), probability.alias("rawPrediction")
    )
