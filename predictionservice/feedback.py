"""Feedback: the true outcome of a logged prediction (``POST /feedback/``, docs/API.md "Traffic, the
prediction log, feedback and drift"), stored on the prediction log's documents of that request id
(every variant: the answer and any shadow score) as ``feedback: {"label", "time"}``. No web
framework: web/feedback.py parses and calls ``Feedback.store``.

Everything is checked before anything is written: every request id must be logged (404 naming
those that are not), every label one the model that answered can have (400): one of its classes
for a classifier, a finite number for a regressor. A label sent again replaces the last one (in
a batch too: the records are applied in order)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateMany

from predictionservice.exceptions import InvalidRequest, NotFound, shown
from predictionservice.validation import Validator

MAX_REQUEST_ID_CHARS = 200  # an X-Request-ID is at most 128, a batch's record adds '/<i>'
MAX_NAMED = 10  # unknown ids or bad labels a refusal names (details lists up to this many)
MAX_CLASSES_SHOWN = 20

_ONE = {
    "type": "object",
    "required": ["request_id", "label"],
    "additionalProperties": False,
    "properties": {
        "request_id": {"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID_CHARS,
                       "description": "the X-Request-ID of the answer (a batch's i-th record: '<id>/<i>')"},
        "label": {"type": ["string", "number"], "description": "the true outcome: a class, or a number"},
    },
}  # fmt: skip


def feedback_schema(max_records: int) -> dict[str, Any]:
    """The body of POST /feedback/: one label, or ``records`` of them (at most max_records)."""
    batch = {
        "type": "object",
        "required": ["records"],
        "additionalProperties": False,
        "properties": {"records": {"type": "array", "minItems": 1, "maxItems": max_records, "items": _ONE}},
    }
    return {"oneOf": [_ONE, batch]}


FEEDBACK_RESPONSE = {
    "type": "object",
    "required": ["stored", "documents"],
    "properties": {
        "stored": {"type": "integer", "description": "labels stored (the records of the body)"},
        "documents": {"type": "integer", "description": "prediction log documents that carry them"},
    },
}


class Feedback:
    """Stores labels on the prediction log. ``collection``: a context manager factory giving
    the log's pymongo collection; ``classes(model_key)``: the model's class names (empty for a
    regressor; raises NotFound for a model no longer stored)."""

    def __init__(self, collection: Callable[[], Any], classes: Callable[[str], list[str]], max_records: int):
        self.collection = collection
        self.classes = classes
        self.validator = Validator(feedback_schema(max_records))

    def store(self, body: Any) -> dict[str, int]:
        self.validator.check(body, "feedback")
        records = body["records"] if "records" in body else [body]
        ids = list(dict.fromkeys(record["request_id"] for record in records))
        with self.collection() as collection:
            models = served_by(collection, ids)
            unknown = [i for i in ids if i not in models]
            if unknown:
                named = ", ".join(shown(i) for i in unknown[:MAX_NAMED])
                raise NotFound(
                    f"no logged prediction has request_id {named}"
                    + (f" (and {len(unknown) - MAX_NAMED} more)" if len(unknown) > MAX_NAMED else "")
                    + ": a prediction is logged a moment after its answer, with the setting prediction_log on "
                    "(and drawn by prediction_log_sample); a batch's i-th record is '<request id>/<i>'",
                    details=[{"field": "request_id", "problem": "not logged", "value": i} for i in unknown[:MAX_NAMED]],
                )
            self.check_labels(records, models)
            now = datetime.now(UTC)
            updates = [
                UpdateMany({"request_id": r["request_id"]}, {"$set": {"feedback": {"label": r["label"], "time": now}}})
                for r in records
            ]
            collection.bulk_write(updates, ordered=True)
        return {"stored": len(records), "documents": sum(models[i][1] for i in ids)}

    def check_labels(self, records: list[Mapping[str, Any]], models: Mapping[str, tuple[str, int]]) -> None:
        """400 naming every record (up to MAX_NAMED) whose label its model cannot have."""
        known: dict[str, list[str] | None] = {}
        problems = []
        for index, record in enumerate(records):
            key = models[record["request_id"]][0]
            if key not in known:
                try:
                    known[key] = list(self.classes(key))
                except NotFound:
                    known[key] = None  # the model is gone: nothing to check the label against
            problem = label_problem(record["label"], known[key])
            if problem is not None:
                field = "label" if len(records) == 1 and "records" not in record else f"records[{index}].label"
                problems.append({"field": field, "problem": problem, "request_id": record["request_id"]})
        if problems:
            first = problems[0]
            raise InvalidRequest(
                f"feedback: '{first['field']}' of request {shown(first['request_id'])} {first['problem']}"
                + (f" (and {len(problems) - 1} more labels)" if len(problems) > 1 else ""),
                details=problems[:MAX_NAMED],
            )


def served_by(collection: Any, ids: list[str]) -> dict[str, tuple[str, int]]:
    """request id -> the key of the model that answered it (its ``answer`` document's; a shadow's
    only when nothing else is logged) and its documents, for the ids that are logged."""
    found: dict[str, tuple[str, int]] = {}
    cursor = collection.find(
        {"request_id": {"$in": ids}}, {"_id": 0, "request_id": 1, "model.model_key": 1, "variant": 1}
    )
    for document in cursor:
        request_id = document["request_id"]
        key, count = found.get(request_id, (None, 0))
        if key is None or document.get("variant") == "answer":
            key = document["model"]["model_key"]
        found[request_id] = (key, count + 1)
    return found


def label_problem(label: Any, classes: list[str] | None) -> str | None:
    """Why label is not one the model can have (None: it is)."""
    if classes is None:
        return None
    if classes:
        if isinstance(label, str) and label in classes:
            return None
        listed = ", ".join(shown(c) for c in classes[:MAX_CLASSES_SHOWN])
        more = f" (and {len(classes) - MAX_CLASSES_SHOWN} more)" if len(classes) > MAX_CLASSES_SHOWN else ""
        return f"is {shown(str(label))}, not one of the model's classes: {listed}{more}"
    if isinstance(label, int | float) and not isinstance(label, bool) and math.isfinite(label):
        return None
    return f"is {shown(str(label))}, not a number: the model is a regressor"
