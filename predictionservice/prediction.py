"""Online prediction, the operation: a request's records scored by a stored model's predictor,
in numpy in the calling process (no JVM), with no web framework. ``POST /predict/``, the model
page's form and the V2 infer route (web/) only parse, call ``Predictions`` and render; a
scheduler or a worker can call it the same way, with the collaborators it built itself
(mlflow's scoring server is the model: ``invocations(data, content_type, model, schema)``).

``Predictions`` is built once from its collaborators: the predictor cache (anything with
``get(key)`` answering a predictor or raising NotFound), the request validators, the cap on an
answer's probabilities and the metrics that count the records scored (None: not counted), and
the resolver of named models' references (``references.References``; None: model keys only)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from predictionservice import openinference
from predictionservice.exceptions import InvalidRequest, NotFound, PayloadTooLarge, RecordError, shown
from predictionservice.references import Resolved
from predictionservice.validation import KEY_PATTERN

_KEY = re.compile(KEY_PATTERN)


class Predictions:
    """Answers prediction requests (the classic body and the V2 one) with its collaborators."""

    def __init__(
        self,
        predictors: Any,
        validator: Any,
        max_answer_probabilities: int,
        metrics: Any = None,
        infer_validator: Any = None,
        references: Any = None,
    ):
        self.predictors = predictors
        self.references = references
        self.validator = validator
        self.infer_validator = infer_validator
        self.max_answer_probabilities = max_answer_probabilities
        self.metrics = metrics

    def resolve(self, ref: str) -> tuple[str, Resolved | None]:
        """The model key a request's modelkey names (a key as it is, or a named model's
        reference resolved), and what it resolved (None for a key)."""
        resolved = self.references.resolve(ref) if self.references is not None else None
        return (ref, None) if resolved is None else (resolved.key, resolved)

    def answer(self, body: Any) -> dict[str, Any]:
        """The answer to a prediction request: what POST /predict/ sends and the model page shows.
        One made from a named model's reference says which version served it (``model``)."""
        self.validator.check(body, "prediction request")
        ref = body["modelkey"]
        key, resolved = self.resolve(ref)
        predictor = self.predictors.get(key)
        check_schema(body, predictor)
        top = body.get("top_probabilities")
        head = {"modelkey": ref} if resolved is None else {"modelkey": ref, "model": resolved.shown()}
        if body.get("explain"):
            return self.explained(head, predictor, body, top, resolved)
        if "record" in body:
            self.check_answer_size(predictor, 1, top)
            one = predictor.predict_one(body["record"], top)
            self.counted(predictor, 1, resolved)
            return {**head, **one}
        self.check_answer_size(predictor, len(body["records"]), top)
        return {**head, "predictions": self.score(predictor, body["records"], top, resolved)}

    def explained(
        self,
        head: dict[str, Any],
        predictor: Any,
        body: Mapping[str, Any],
        top: int | None,
        resolved: Resolved | None = None,
    ) -> dict[str, Any]:
        """``answer`` with ``"explain": true``: each answer gets its ``explanation``. Apart from
        the answers' shape, a path of its own, so /predict/ without it does no extra work."""
        if "record" in body:
            self.check_answer_size(predictor, 1, top)
            one = predictor.predict_one(body["record"], top)  # a bad record: the same error as without explain
            one["explanation"] = predictor.explanations([body["record"]])[0]
            self.counted(predictor, 1, resolved)
            return {**head, **one}
        records = body["records"]
        self.check_answer_size(predictor, len(records), top)
        answers = predictor.predict(records, top)
        for answer, explanation in zip(answers, predictor.explanations(records), strict=True):
            answer["explanation"] = explanation
        self.counted(predictor, len(answers), resolved)
        return {**head, "predictions": answers}

    def infer(self, ref: str, body: Any) -> dict[str, Any]:
        """The Open Inference Protocol V2 answer for the model key or reference: the same
        predictor, the same cap and the same count as ``answer``, so the two protocols answer
        alike. A named model's answer carries its name, its version and ``model``."""
        if self.infer_validator is not None:
            self.infer_validator.check(body, "inference request")
        key, resolved = self.resolve(ref)
        answered = self._infer(key, body, resolved)
        if resolved is not None:
            answered.update(model_name=resolved.name, model_version=str(resolved.version), model=resolved.shown())
        return answered

    def _infer(self, key: str, body: Any, resolved: Resolved | None = None) -> dict[str, Any]:
        predictor = self.predictors.get(checked_key(key))
        rows = openinference.records(key, body, predictor.parser)
        wanted = openinference.wanted_outputs(key, body, predictor.parser)
        top = None if "probabilities" in wanted else 0
        self.check_answer_size(predictor, len(rows), top, v2=True)
        try:
            answers = self.score(predictor, rows, top, resolved)
        except RecordError as exc:
            raise openinference.row_error(exc) from None
        if openinference.EXPLANATION in wanted:  # the very numbers /predict/ answers with explain
            for answer, explanation in zip(answers, predictor.explanations(rows), strict=True):
                answer["explanation"] = explanation
        return openinference.infer_response(key, body, predictor.parser, answers)

    def check_answer_size(self, predictor: Any, records: int, top: int | None, *, v2: bool = False) -> None:
        check_answer_size(predictor, records, top, self.max_answer_probabilities, v2=v2)

    def score(
        self, predictor: Any, records: list[dict[str, Any]], top: int | None = None, resolved: Resolved | None = None
    ) -> list[dict[str, Any]]:
        """The predictor's answers for records, counted for /metrics."""
        answers = predictor.predict(records, top)
        self.counted(predictor, len(answers), resolved)
        return answers

    def counted(self, predictor: Any, records: int, resolved: Resolved | None = None) -> None:
        """records scored, for /metrics: by algorithm, and by name and version for a reference."""
        if self.metrics is None:
            return
        if resolved is None:
            self.metrics.predicted(predictor.algorithm, records)
        else:
            self.metrics.predicted(predictor.algorithm, records, resolved.name, resolved.version)


def checked_key(key: str) -> str:
    """A model key as a classic body takes it (a path's key is any text): any other names no
    model, and is not sent to Redis."""
    if not _KEY.match(key):
        raise NotFound(f"model {shown(key)} not found")
    return key


def check_answer_size(predictor: Any, records: int, top: int | None, limit: int, *, v2: bool = False) -> None:
    """An answer holds records x classes probabilities: a many-class model would make a small
    request a huge answer (2,000 classes x 10,000 records: 725 MB). Past limit (the setting
    max_answer_probabilities) it is refused before anything is scored, naming the remedies."""
    each = predictor.answered_probabilities(top)
    if records * each <= limit:
        return
    remedy = f"send at most {max(1, limit // each)} records a request"
    if v2:
        remedy = f"name the outputs without 'probabilities' (prediction, label, probability), or {remedy}"
    elif limit // records >= 1:
        remedy = f'ask for the most probable only with "top_probabilities": k (k <= {limit // records}), or {remedy}'
    raise PayloadTooLarge(
        f"the answer would hold {records} records x {each} class probabilities = {records * each}, more than "
        f"max_answer_probabilities ({limit}): {remedy}",
        details=[{"field": "records", "problem": f"{records * each} probabilities", "limit": limit}],
    )


def check_schema(body: Mapping[str, Any], predictor: Any) -> None:
    """A classic body (or a scoring job) may carry the schema: it must agree with the model's.
    The body's schema is read by a parser of the model's own kind (``type(predictor.parser)``),
    so this library module needs no import of the chapter's dataparser."""
    if "schema" not in body or json.dumps(body["schema"]) == predictor.schema_json:  # verbatim: agrees
        return
    if type(predictor.parser)(body["schema"]).schema() != predictor.schema():
        raise InvalidRequest(
            "'schema' does not agree with the schema stored with the model; send the record alone",
            details=[{"field": "schema", "problem": "differs from the model's schema"}],
        )
