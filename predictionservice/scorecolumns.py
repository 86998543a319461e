"""The columns of a scored document in a batch scoring job: the input row kept whole, and the
classification fields (score, label, probability, probabilities) as /predict/ answers them,
from margins or class probabilities computed as column expressions.

Only worker processes import this module (it imports pyspark at the top).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# The encoded features of a row to explain, carried inside its ``value`` struct from the input to
# the explanation (scoring keeps only ``value`` of the input) and dropped before it is written.
EXPLAIN_SLOTS = "__explanation_slots"
_EXPLAINED = "__explained"


def record_column(df: DataFrame) -> Column:
    """The whole input row as one struct: what a scored document keeps under ``value``."""
    return F.struct(*[F.col(f"`{c}`") for c in df.columns])


def class_output(probabilities: Sequence[Column], predicted: Column, names: Sequence[str]) -> list[Column]:
    """The classification fields of a scored document, as /predict/ answers them: score (class
    index), label, probability (binary: the positive class's; else the predicted one's) and
    probabilities (label -> probability)."""
    labels = F.array(*[F.lit(n) for n in names])
    chosen = F.array(*probabilities)
    probability = probabilities[1] if len(names) == 2 else F.element_at(chosen, predicted + F.lit(1))
    return [
        predicted.alias("score"),
        F.element_at(labels, predicted + F.lit(1)).alias("label"),
        probability.alias("probability"),
        F.map_from_arrays(labels, chosen).alias("probabilities"),
    ]


def argmax_column(values: Sequence[Column]) -> Column:
    """The index of the first largest value (numpy's argmax, Spark ML's raw2prediction)."""
    array = F.array(*values)
    return (F.array_position(array, F.array_max(array)) - F.lit(1)).cast("int")


def softmax_columns(margins: Sequence[Column]) -> list[Column]:
    """Class probabilities from margins, shifted by the row's largest margin as Spark does."""
    top = F.greatest(*margins)
    shifted = [F.exp(m - top) for m in margins]
    total = shifted[0]
    for e in shifted[1:]:
        total = total + e
    return [e / total for e in shifted]


def sigmoid_column(margin: Column) -> Column:
    return F.lit(1.0) / (F.lit(1.0) + F.exp(-margin))


def with_explain_slots(df: DataFrame, parser: Any) -> DataFrame:
    """The input with each row's encoded features as one array column (what the explainer reads),
    null for a row that cannot be scored (it is filtered out before it is explained)."""
    from predictionservice.sparkfeatures import vector_slots

    slots, _ = vector_slots(parser, df.schema)
    return df.withColumn(EXPLAIN_SLOTS, slots)


def explained(out: DataFrame, explainer: Any, keys: Sequence[str], width: int) -> DataFrame:
    """The scored rows with ``explanation`` beside the score: {base, contributions (feature key ->
    number), output}, computed by the very explainer /predict/ uses (predictors' ``explainer()``),
    in numpy over Arrow batches on the executors (no Python per row anywhere); ``value`` loses the
    slots it carried (with_explain_slots)."""
    returns = "base double, contributions array<double>"
    explain = F.arrow_udf(_batch_explainer(explainer, width), returns)
    others = [F.col(f"`{c}`") for c in out.columns if c != "value"]
    value = F.col("value")
    raw = out.select(
        *others, value.dropFields(EXPLAIN_SLOTS).alias("value"), explain(value[EXPLAIN_SLOTS]).alias(_EXPLAINED)
    )
    names = F.array(*[F.lit(key) for key in keys])
    explanation = F.struct(
        F.col(_EXPLAINED)["base"].alias("base"),
        F.map_from_arrays(names, F.col(_EXPLAINED)["contributions"]).alias("contributions"),
        F.lit(explainer.output).alias("output"),
    )
    return raw.select(*others, explanation.alias("explanation"), "value")


def _batch_explainer(explainer: Any, width: int) -> Any:
    """The Arrow UDF's function: a batch's slots as one (n, width) matrix, explained at once."""

    def explain(slots: pa.Array) -> pa.Array:
        if slots.null_count:
            raise ValueError("a row that cannot be scored reached the explainer")
        matrix = slots.flatten().to_numpy(zero_copy_only=False).reshape(len(slots), width)
        base, contributions = explainer.explain(matrix)
        offsets = pa.array(np.arange(len(slots) + 1, dtype=np.int32) * contributions.shape[1])  # a schema has features
        listed = pa.ListArray.from_arrays(offsets, pa.array(contributions.ravel(), pa.float64()))
        return pa.StructArray.from_arrays([pa.array(base, pa.float64()), listed], names=["base", "contributions"])

    return explain
