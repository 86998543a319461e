"""The encoded input of a training run as Spark column expressions: a DataParser's encoding
(features, label and each row's problem), a linear model's margin over the same encoding, the
held-out split, and the input read, encoded and counted (``encoded_input``).

Only worker processes import this module (it imports pyspark at the top). The encoding here is
the one ``DataParser.encode_one`` and ``DataParser.encode`` compute in Python and numpy; the tests
hold the three equal, so batch jobs run no Python per row and still agree with online scoring.
A parser is taken by its shape (``features``, ``label_key``, ``label_values``, ``num_features``),
so this library module needs no import of the chapter's dataparser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.ml.functions import array_to_vector
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import ByteType, IntegerType, LongType, ShortType, StructType

from predictionservice.defaults import MAX_NUMBER_CHARS
from predictionservice.exceptions import (
    IS_MISSING,
    NOT_A_CATEGORY,
    NOT_A_NUMBER,
    NOT_FINITE,
    TOO_LONG,
    InvalidSchema,
)

SPLIT_BUCKETS = 10_000


def feature_columns(parser: Any, df_schema: StructType) -> tuple[Column, Column, Column]:
    """``(features, label, error)`` column expressions over a DataFrame of that schema.

    ``features`` is an ML dense vector, ``label`` a double, ``error`` null for a good row or
    "field '<key>' <problem>" for the first field that fails, exactly as encode_one would fail.
    """
    types, slots, checks = _slots(parser, df_schema)
    label, label_problem = _value(parser.label_key, parser.label_values, types)
    error = F.coalesce(*checks, label_problem)
    # A bad row gets no vector (null), never a half-made one.
    return F.when(error.isNull(), array_to_vector(F.array(*slots))), label.cast("double"), error


def vector_slots(parser: Any, df_schema: StructType) -> tuple[Column, Column]:
    """``(slots, error)`` of a row to score (no label read): the encoded features as an array of
    doubles, which Arrow hands numpy as one flat buffer on the executors, and the row's problem."""
    _, slots, checks = _slots(parser, df_schema)
    error = F.coalesce(*checks) if len(checks) > 1 else checks[0]
    return F.when(error.isNull(), F.array(*slots)), error


def _slots(parser: Any, df_schema: StructType) -> tuple[dict[str, str], list[Column], list[Column]]:
    """The column types, each feature slot's value (one-hot blocks expanded) and each feature's
    problem column."""
    types, values, checks = _fields(parser, df_schema)
    slots: list[Column] = []
    for f, value in zip(parser.features, values, strict=True):
        if f.values is None:
            slots.append(F.coalesce(value, F.lit(0.0)))
        elif f.constant:
            slots.append(F.lit(0.0))
        else:
            slots.extend(F.coalesce((value == F.lit(p)).cast("double"), F.lit(0.0)) for p in range(f.width))
    return types, slots, checks


def margin_column(
    parser: Any, df_schema: StructType, weights: Sequence[float], intercept: float
) -> tuple[Column, Column]:
    """``(margin, error)``: intercept + weights . features, as column expressions.

    The dot product is written per feature (a one-hot block is a lookup of its weight), so
    batch scoring needs neither a vector column nor Python on the executors."""
    if len(weights) != parser.num_features:
        raise InvalidSchema(f"{len(weights)} weights for {parser.num_features} features")
    _, values, checks = _fields(parser, df_schema)
    margin = F.lit(float(intercept))
    for f, value in zip(parser.features, values, strict=True):
        if f.values is None:
            margin = margin + value * F.lit(float(weights[f.offset]))
        elif not f.constant:
            block = F.array(*[F.lit(float(w)) for w in weights[f.offset : f.offset + f.width]])
            weight = F.element_at(block, (value + F.lit(1)).cast("int"))
            if f.ignore_unknown:  # an ignored category (no position) adds nothing: all zeros, as online.
                # Said outright: Spark answers element_at(a literal array, null) with its last element.
                weight = F.when(value.isNotNull(), weight).otherwise(F.lit(0.0))
            margin = margin + weight
    error = F.coalesce(*checks) if len(checks) > 1 else checks[0]
    return F.when(error.isNull(), margin), error


def heldout_column(fields: Sequence[str], seed: int, fraction: float) -> Column:
    """Whether a row is held out: its fields hashed with the seed, so a row lands on the same
    side whatever else the collection holds, however it is partitioned or loaded."""
    content = [F.col(f"`{name}`") for name in fields]
    bucket = F.pmod(F.xxhash64(F.lit(int(seed)), *content), F.lit(SPLIT_BUCKETS))
    return bucket < F.lit(round(fraction * SPLIT_BUCKETS))


def _fields(parser: Any, df_schema: StructType) -> tuple[dict[str, str], list[Column], list[Column]]:
    """The DataFrame's column types, and each feature's value and problem columns, in order."""
    types = {field.name: field.dataType.typeName() for field in df_schema.fields}
    pairs = [_value(f.key, f.values, types, f.ignore_unknown) for f in parser.features]
    return types, [value for value, _ in pairs], [problem for _, problem in pairs]


def _value(
    key: str, values: Mapping[str, int] | None, types: dict[str, str], ignore: bool = False
) -> tuple[Column, Column]:
    """(value, problem) for one field: the number or category position, and why it is bad. With
    ``ignore`` (a feature's "unknown": "ignore"), any value but null that the map lacks has a null
    position and no problem (its one-hot block all zeros), as DataParser encodes it."""

    def problem(text: str) -> Column:
        return F.lit(f"field '{key}' {text}")

    kind = types.get(key)
    if kind is None or kind in ("null", "void"):
        return F.lit(None).cast("double"), problem(IS_MISSING)
    col = F.col(f"`{key}`")
    missing = F.when(col.isNull(), problem(IS_MISSING))
    if values is None:
        if kind in ("string",):
            parsed = col.try_cast("double")
            bad = (
                F.when(F.length(col) > MAX_NUMBER_CHARS, problem(TOO_LONG))
                .when(parsed.isNull(), problem(NOT_A_NUMBER))
                .when(F.isnan(parsed) | (F.abs(parsed) == float("inf")), problem(NOT_FINITE))
            )
        elif kind in ("integer", "long", "short", "byte", "float", "double", "decimal"):
            parsed = col.cast("double")
            bad = F.when(F.isnan(parsed) | (F.abs(parsed) == float("inf")), problem(NOT_FINITE))
        else:
            parsed = F.lit(None).cast("double")
            bad = problem(NOT_A_NUMBER)
        return parsed, F.coalesce(missing, bad)
    lookup = F.create_map(*[x for name, pos in values.items() for x in (F.lit(name), F.lit(pos))])
    if kind == "string":
        name = col
    elif kind in ("integer", "long", "short", "byte"):
        name = col.cast("string")
    elif kind in ("float", "double"):
        name = F.when(col == F.floor(col), col.cast("long").cast("string"))
    else:
        name = F.lit(None).cast("string")
    position = lookup[name]
    if ignore:  # any value but null: its one-hot block all zeros
        return position, missing
    return position, F.coalesce(missing, F.when(position.isNull(), problem(NOT_A_CATEGORY)))


def encoded_input(
    spark: Any, job: Mapping[str, Any], parser: Any, source: Any, *, read_partitions: int, partition_mb: float
) -> tuple:
    """The input encoded and cached (features, label, error, heldout) and its counts: rows,
    invalid rows by reason and, for classification, rows per class (a regression label is not
    grouped: it may have as many values as rows)."""
    from predictionservice.sparksession import read_collection
    from predictionservice.trainingdata import invalid_counts

    fields = [parser.label_key, *(f.key for f in parser.features)]
    df = read_collection(
        spark,
        source,
        partitions=read_partitions,
        partition_mb=partition_mb,
        fields=fields,
    )
    features, label, error = feature_columns(parser, df.schema)
    heldout = heldout_column(fields, int(job["seed"]), float(job["holdoutFraction"]))
    encoded = df.select(
        features.alias("features"), label.alias("label"), error.alias("error"), heldout.alias("heldout")
    ).cache()
    classify = parser.task != "regression"
    stats = encoded.groupBy("error", *(["label"] if classify else [])).count().collect()
    counts = {
        "rows": sum(r["count"] for r in stats),
        "invalid": invalid_counts(stats),
        "classes": {r["label"]: r["count"] for r in stats if r["error"] is None} if classify else {},
        "integral": integral_features(parser, df.schema),
    }
    return encoded, counts


def integral_features(parser: Any, df_schema: StructType) -> list[str]:
    """The numeric features whose column the read gave a whole-number type (what the Open
    Inference Protocol's model metadata calls INT64 rather than FP64)."""
    integral = (ByteType, ShortType, IntegerType, LongType)
    types = {field.name: field.dataType for field in df_schema.fields}
    return [f.key for f in parser.features if f.values is None and isinstance(types.get(f.key), integral)]


def feature_moments(encoded: Any) -> tuple[list[float], list[float]]:
    """The mean and the standard deviation of each encoded column over the input's valid rows
    (both splits: the reference does not move with the seed's held-out draw), one Spark job on the
    cached encoding. A linear model's explanations are measured from the means (docs/API.md,
    "Explanations"); its page ranks coefficients by coefficient times deviation, what a typical
    difference in the feature moves (a raw coefficient is in the feature's units)."""
    from pyspark.ml.stat import Summarizer

    valid = encoded.filter(F.col("error").isNull())
    row = valid.select(Summarizer.metrics("mean", "std").summary(F.col("features")).alias("s")).first()
    return [float(x) for x in row["s"]["mean"].toArray()], [float(x) for x in row["s"]["std"].toArray()]
