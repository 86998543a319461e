"""Reports on a scored collection (what POST /predictall/ wrote): the distribution of its scores
and, when its input documents hold the label, how the predictions compare with it."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from web.charts import Chart, histogram

MAX_DOCS = 200_000  # a report reads at most this many documents


def is_scored(sample: list[dict[str, Any]]) -> bool:
    """Documents as a scoring job writes them: a score and the input document as 'value'."""
    return bool(sample) and all("score" in d and isinstance(d.get("value"), dict) for d in sample)


def scored_report(collection: Any, label: str | None) -> dict[str, Any]:
    """Histogram of the scores (classification: the probability; regression: the prediction)
    and, with label (a field of the input documents), the confusion matrix or the RMSE."""
    fields = {"probability": 1, "prediction": 1, "label": 1, "score": 1, "_id": 0}
    if label:
        fields[f"value.{label}"] = 1
    docs = list(collection.find({}, fields, limit=MAX_DOCS))
    classes = any("label" in d for d in docs)
    values = [_float(d.get("probability" if classes else "prediction")) for d in docs]
    if classes:
        chart: Chart = histogram("probability", values, 10, 0.0, 1.0)
    else:
        chart = histogram("prediction", values, 20)
    report: dict[str, Any] = {"rows": len(docs), "capped": len(docs) == MAX_DOCS, "chart": chart, "label": label}
    if label:
        pairs = [((d.get("value") or {}).get(label), d.get("label" if classes else "prediction")) for d in docs]
        pairs = [(a, p) for a, p in pairs if a is not None]
        report["labelled"] = len(pairs)
        if pairs and classes:
            report["confusion"] = confusion(pairs)
        elif pairs:
            errors = [(_float(a) - _float(p)) ** 2 for a, p in pairs]
            finite = [e for e in errors if math.isfinite(e)]
            report["rmse"] = math.sqrt(sum(finite) / len(finite)) if finite else None
    return report


def confusion(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """Rows: the actual label; columns: the predicted one; and the share predicted right."""
    counts = Counter((str(a), str(p)) for a, p in pairs)
    classes = sorted({c for pair in counts for c in pair})
    rows = [[counts[(a, p)] for p in classes] for a in classes]
    right = sum(counts[(c, c)] for c in classes)
    return {"classes": classes, "rows": rows, "accuracy": right / len(pairs)}


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
