"""Reports on a scored collection (what POST /predictall/ wrote): the distribution of its scores
and, when its input documents hold the label, how the predictions compare with it.

What a report costs is bounded whatever the collection and whatever the query asks: the
documents are read as a stream (at most MAX_DOCS of them), the field compared with must be one
the page offers (the model's label, or an input field with few values in a sample; a number for
a regression model), and a confusion matrix stops counting once it passes max_classes classes, so
it is at most max_classes² cells however many values the field turns out to hold."""

from __future__ import annotations

import math
from collections import Counter
from itertools import chain
from typing import Any

from predictionservice.exceptions import InvalidRequest
from web.charts import Chart, histogram
from web.jsonio import shown

MAX_DOCS = 200_000  # a report reads at most this many documents
CHOICE_SAMPLE = 1000  # scored documents whose inputs decide which fields are offered for comparison
SCAN_BATCH = 1000


def is_scored(sample: list[dict[str, Any]]) -> bool:
    """Documents as a scoring job writes them: a score and the input document as 'value'."""
    return bool(sample) and all("score" in d and isinstance(d.get("value"), dict) for d in sample)


def label_choices(collection: Any, model_label: str | None, max_classes: int) -> list[str]:
    """The input fields a scored collection may be compared with: the model's label, and the
    fields that can be one over a sample of the inputs (a classifier's: at most max_classes
    distinct values; a regressor's: numbers). A name a MongoDB projection would read as an
    operator or a path ('$', a dot, a NUL) is never offered."""
    seen: dict[str, set[str]] = {}
    numeric: dict[str, bool] = {}
    classes = None
    for doc in collection.find({}, {"value": 1, "label": 1, "_id": 0}, limit=CHOICE_SAMPLE):
        classes = "label" in doc if classes is None else classes
        for key, value in (doc.get("value") or {}).items():
            if key == "_id" or not _plain_name(key) or value is None:
                continue
            values = seen.setdefault(key, set())
            if len(values) <= max_classes:
                values.add(str(value))
            numeric[key] = numeric.get(key, True) and isinstance(value, (int, float)) and not isinstance(value, bool)
    if classes:
        offered = {key for key, values in seen.items() if len(values) <= max_classes}
    else:
        offered = {key for key, is_number in numeric.items() if is_number}
    if model_label and model_label in seen:
        offered.add(model_label)
    return sorted(offered)


def _plain_name(key: str) -> bool:
    return bool(key) and not key.startswith("$") and "." not in key and "\x00" not in key


def checked_label(label: str | None, choices: list[str]) -> str | None:
    """The field a page asks to compare with, if it is one of the choices (else a 400 naming them)."""
    if not label or label in choices:
        return label or None
    offered = ", ".join(repr(c) for c in choices[:20]) or "none"
    raise InvalidRequest(
        f"'label' {shown(label)} cannot be compared with the predictions: pick one of the fields offered "
        f"({offered}): the model's label, or an input field with few values"
    )


def scored_report(collection: Any, label: str | None, max_classes: int) -> dict[str, Any]:
    """Histogram of the scores (classification: the probability; regression: the prediction)
    and, with label (a field of the input documents, one of label_choices), the confusion matrix
    (up to max_classes classes) or the RMSE. One pass over the documents, never all of them held."""
    fields = {"probability": 1, "prediction": 1, "label": 1, "score": 1, "_id": 0}
    if label:
        fields[f"value.{label}"] = 1
    docs = iter(collection.find({}, fields, limit=MAX_DOCS, batch_size=SCAN_BATCH))
    first = next(docs, None)
    classes = first is not None and "label" in first  # one model wrote them all: the first tells
    scores: list[float] = []
    matrix = Confusion(max_classes)
    squares, finite, labelled = 0.0, 0, 0
    for doc in chain([first] if first is not None else [], docs):
        scores.append(_float(doc.get("probability" if classes else "prediction")))
        actual = (doc.get("value") or {}).get(label) if label else None
        if actual is None:
            continue
        labelled += 1
        if classes:
            matrix.add(actual, doc.get("label"))
        else:
            error = (_float(actual) - _float(doc.get("prediction"))) ** 2
            if math.isfinite(error):
                squares, finite = squares + error, finite + 1
    chart: Chart = histogram("probability", scores, 10, 0.0, 1.0) if classes else histogram("prediction", scores, 20)
    report: dict[str, Any] = {"rows": len(scores), "capped": len(scores) == MAX_DOCS, "chart": chart, "label": label}
    if label:
        report["labelled"] = labelled
        if labelled and classes:
            report["confusion"] = matrix.table()
            report["too_many_classes"] = matrix.overflowed
        elif labelled:
            report["rmse"] = math.sqrt(squares / finite) if finite else None
    return report


class Confusion:
    """A confusion matrix counted as documents stream by, of at most max_classes classes: past
    that, counting stops (the field holds too many values to be a label) and no table is made."""

    def __init__(self, max_classes: int):
        self.max_classes = max_classes
        self.counts: Counter[tuple[str, str]] = Counter()
        self.classes: set[str] = set()
        self.overflowed = False

    def add(self, actual: Any, predicted: Any) -> None:
        if self.overflowed:
            return
        pair = (str(actual), str(predicted))
        self.classes.update(pair)
        if len(self.classes) > self.max_classes:
            self.overflowed, self.counts, self.classes = True, Counter(), set()
            return
        self.counts[pair] += 1

    def table(self) -> dict[str, Any] | None:
        """Rows: the actual label; columns: the predicted one; and the share predicted right."""
        if self.overflowed or not self.counts:
            return None
        classes = sorted(self.classes)
        rows = [[self.counts[(a, p)] for p in classes] for a in classes]
        right = sum(self.counts[(c, c)] for c in classes)
        return {"classes": classes, "rows": rows, "accuracy": right / sum(self.counts.values())}


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
