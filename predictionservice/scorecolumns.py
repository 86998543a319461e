"""The columns of a scored document in a batch scoring job: the input row kept whole, and the
classification fields (score, label, probability, probabilities) as /predict/ answers them,
from margins or class probabilities computed as column expressions.

Only worker processes import this module (it imports pyspark at the top).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


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
