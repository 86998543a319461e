"""The training profile of a model (docs/API.md, "Quality and drift"), computed by Spark on the
worker as it trains, and kept with the model: what the monitor (predictionservice.monitor)
compares the logged predictions with.

* per numeric feature: interior quantile edges (``profile_bins`` bins, ties merged) and the
  training rows' count in each bin (``x < edges[0]``, ``edges[j-1] <= x < edges[j]``, ``x >=
  edges[-1]``: the outer bins are open, so a live value beyond the training range still lands);
* per categorical feature: the frequencies of its ``profile_top_categories`` most frequent
  categories and one bin ``(other)`` for the rest (and, live, for any value it never saw);
* the score on the held-out rows: a binary model's positive-class probability in ten fixed
  bins, a multi-class model's predicted class frequencies, a regressor's prediction in quantile
  bins.

Every feature is read from the encoded input already cached for training (a numeric feature's
slot; a categorical feature's one-hot block, whose sums are its categories' counts): two
aggregations over it, quantiles then counts, whatever the number of features. Only worker
processes import this module (pyspark).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

PROFILE_VERSION = 1
QUANTILE_ACCURACY = 10_000  # percentile_approx's accuracy: a relative rank error of 1/10,000
PROBABILITY_EDGES = [round(0.1 * i, 1) for i in range(1, 10)]  # a binary score's bins: tenths
OTHER = "(other)"


def bin_index(value: Column, edges: Sequence[float]) -> Column:
    """The bin of value: how many edges are <= it (numpy's searchsorted(edges, x, 'right'))."""
    index = F.lit(0)
    for edge in edges:
        index = index + (value >= F.lit(float(edge))).cast("int")
    return index


def _edges(quantiles: Sequence[float] | None) -> list[float]:
    """The interior edges from a column's quantiles: sorted, ties merged (a feature with few values
    has fewer bins)."""
    return sorted({float(q) for q in quantiles or ()})


def feature_profile(encoded: DataFrame, parser: Any, *, bins: int, top: int) -> dict[str, Any]:
    """Each feature's profile over the valid rows of the encoded input (both splits, as the
    training means: the reference does not move with the seed's held-out draw)."""
    x = vector_to_array(F.col("features"))
    valid = encoded.filter(F.col("error").isNull()).select(x.alias("x"))
    numeric = [f for f in parser.features if f.values is None]
    blocks = [f for f in parser.features if f.values is not None and not f.constant]
    probs = [i / bins for i in range(1, bins)]
    first = [F.count(F.lit(1)).alias("rows")]
    first += [F.percentile_approx(F.col("x")[f.offset], probs, QUANTILE_ACCURACY).alias(f"q{i}")
              for i, f in enumerate(numeric)]  # fmt: skip
    first += [F.sum(F.col("x")[f.offset + p]).alias(f"c{i}_{p}") for i, f in enumerate(blocks) for p in range(f.width)]
    quantiles = valid.agg(*first).first()
    rows = int(quantiles["rows"])
    edges = {f.key: _edges(quantiles[f"q{i}"]) for i, f in enumerate(numeric)}
    counts = {}
    if numeric and rows:
        second = [
            F.sum((bin_index(F.col("x")[f.offset], edges[f.key]) == F.lit(j)).cast("long")).alias(f"n{i}_{j}")
            for i, f in enumerate(numeric)
            for j in range(len(edges[f.key]) + 1)
        ]
        counts = valid.agg(*second).first().asDict()
    features: dict[str, Any] = {}
    for i, f in enumerate(numeric):
        found = [int(counts.get(f"n{i}_{j}") or 0) for j in range(len(edges[f.key]) + 1)]
        features[f.key] = {"kind": "numeric", "edges": edges[f.key], "counts": found}
    for f in parser.features:
        if f.values is not None:
            i = blocks.index(f) if f in blocks else None
            if i is None:  # a single category: every row has it
                at = {p: rows for p in range(f.width)}
            else:
                at = {p: round(quantiles[f"c{i}_{p}"] or 0) for p in range(f.width)}
            features[f.key] = categorical(f.values, at, top)
    return {"version": PROFILE_VERSION, "rows": rows, "bins": bins, "top_categories": top,
            "features": {f.key: features[f.key] for f in parser.features}}  # fmt: skip


def categorical(values: dict[str, int], counts: dict[int, int], top: int) -> dict[str, Any]:
    """A categorical feature's profile from its rows per position: the top positions by count
    (ties by position), each named by its categories (several names may share a position), and
    the rest as one bin (other), always last. ``values`` maps each named category to its bin."""
    names: dict[int, list[str]] = {}
    for name, position in values.items():
        names.setdefault(position, []).append(name)
    kept = sorted((p for p in names), key=lambda p: (-counts.get(p, 0), p))[:top]
    bins = ["/".join(sorted(names[p])) for p in kept] + [OTHER]
    found = [counts.get(p, 0) for p in kept]
    found.append(sum(counts.get(p, 0) for p in names if p not in kept))
    to_bin = {name: kept.index(p) for p, group in names.items() if p in kept for name in group}
    return {"kind": "categorical", "bins": bins, "values": to_bin, "counts": found}


def score_profile(predictions: DataFrame, task: str, classes: Sequence[str], *, bins: int) -> dict[str, Any]:
    """The score's distribution on the held-out predictions (cached by cross-validation): one
    aggregation for classification, two for a regressor (its quantiles, then its counts)."""
    if task == "binary":
        p = vector_to_array(F.col("probability"))[1]
        row = predictions.agg(
            *[F.sum((bin_index(p, PROBABILITY_EDGES) == F.lit(j)).cast("long")).alias(f"n{j}") for j in range(10)]
        ).first()
        counts = [int(row[f"n{j}"] or 0) for j in range(10)]
        return {"kind": "numeric", "of": "probability", "edges": list(PROBABILITY_EDGES), "counts": counts}
    if task == "multiclass":
        row = predictions.agg(
            *[F.sum((F.col("prediction") == F.lit(float(k))).cast("long")).alias(f"n{k}") for k in range(len(classes))]
        ).first()
        counts = [int(row[f"n{k}"] or 0) for k in range(len(classes))]
        return {"kind": "categorical", "of": "prediction", "bins": list(classes), "counts": counts}
    probs = [i / bins for i in range(1, bins)]
    quantiles = predictions.agg(F.percentile_approx("prediction", probs, QUANTILE_ACCURACY).alias("q")).first()
    edges = _edges(quantiles["q"])
    index = bin_index(F.col("prediction"), edges)
    row = predictions.agg(*[F.sum((index == F.lit(j)).cast("long")).alias(f"n{j}") for j in range(len(edges) + 1)])
    found = row.first()
    counts = [int(found[f"n{j}"] or 0) for j in range(len(edges) + 1)]
    return {"kind": "numeric", "of": "prediction", "edges": edges, "counts": counts}
