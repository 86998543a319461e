"""Online prediction, the operation: a request's records scored by a stored model's predictor,
in numpy in the calling process (no JVM), with no web framework. ``POST /predict/``, the model
page's form and the V2 infer route (web/) only parse, call ``Predictions`` and render; a
scheduler or a worker can call it the same way, with the collaborators it built itself
(mlflow's scoring server is the model: ``invocations(data, content_type, model, schema)``).

``Predictions`` is built once from its collaborators: the predictor cache (anything with
``get(key)`` answering a predictor or raising NotFound), the request validators, the cap on an
answer's probabilities and the metrics that count the records scored (None: not counted), and
the resolver of named models' references (``references.References``; None: model keys only),
and the prediction log (``predictionlog.PredictionLog``; None: nothing logged)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from predictionservice import openinference
from predictionservice.defaults import MAX_RECORD_ERRORS
from predictionservice.exceptions import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RecordError,
    RecordErrors,
    shown,
)
from predictionservice.references import Resolved
from predictionservice.traffic import routed
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
        log: Any = None,
        shadow: Any = None,
    ):
        self.predictors = predictors
        self.references = references
        self.validator = validator
        self.infer_validator = infer_validator
        self.max_answer_probabilities = max_answer_probabilities
        self.metrics = metrics
        self.log = log  # predictionlog.PredictionLog: where answered requests go (None: not logged)
        self.shadow = shadow  # traffic.Shadow: where a shadowed name's requests go (None: not shadowed)

    def resolve(self, ref: str) -> tuple[str, Resolved | None]:
        """The model key a request's modelkey names (a key as it is, or a named model's
        reference resolved), and what it resolved (None for a key)."""
        resolved = self.references.resolve(ref) if self.references is not None else None
        return (ref, None) if resolved is None else (resolved.key, resolved)

    def routed(self, ref: str, routing_key: str | None) -> tuple[str, Resolved | None, Resolved | None]:
        """resolve, then a bare name's traffic setting applied (traffic.routed): the model key that
        answers, what it resolved, and the candidate that shadows the request (None: none)."""
        key, resolved = self.resolve(ref)
        answering, shadowed = routed(resolved, routing_key)
        return (answering.key if answering is not None else key), answering, shadowed

    def answer(self, body: Any, request_id: str | None = None) -> dict[str, Any]:
        """The answer to a prediction request: what POST /predict/ sends and the model page shows.
        One made from a named model's reference says which version served it (``model``). With
        a request id and a prediction log, the answered records are handed to the log."""
        started = time.perf_counter()
        self.validator.check(body, "prediction request")
        ref = body["modelkey"]
        key, resolved, shadowed = self.routed(ref, body.get("routing_key"))
        predictor = self.predictors.get(key)
        check_schema(body, predictor)
        top = body.get("top_probabilities")
        head = {"modelkey": ref} if resolved is None else {"modelkey": ref, "model": resolved.shown()}
        single = "record" in body
        records = [body["record"]] if single else body["records"]
        self.check_answer_size(predictor, len(records), top)
        try:
            answers = self.scored(predictor, records, top, single, body.get("explain"), resolved)
            scored = records
        except RecordError as exc:  # only now is every record looked at, for every problem
            answers, scored = self.partial(predictor, body, records, top, single, exc, resolved)
        if request_id is not None and self.log is not None and scored:  # a report's errors are not logged
            latency_ms = (time.perf_counter() - started) * 1000.0
            self.log.log(request_id, logged_model(key, resolved), records, answers, latency_ms, single=single)
        if shadowed is not None and self.shadow is not None and scored is records:  # a whole batch only
            self.shadow.submit(request_id, shadowed, records, top, single=single, one=single)
        return {**head, **answers[0]} if single else {**head, "predictions": answers}

    def scored(
        self, predictor: Any, records: list[Any], top: int | None, single: bool, explain: Any, resolved: Resolved | None
    ) -> list[dict[str, Any]]:
        """Every record's answer (a bad record raises its RecordError), each with the warnings
        of a feature that ignores unknown categories (only a model whose schema has one)."""
        if explain:
            answers = self.explained(predictor, records, top, single, resolved)
        elif single:
            answers = [predictor.predict_one(records[0], top)]
            self.counted(predictor, 1, resolved)
        else:
            answers = self.score(predictor, records, top, resolved)
        if getattr(predictor.parser, "ignoring", ()):
            warned(predictor.parser, records, answers)
        return answers

    def partial(
        self, predictor: Any, body: Mapping[str, Any], records: list[Any], top: int | None, single: bool,
        refused: RecordError, resolved: Resolved | None,
    ) -> tuple[list[dict[str, Any]], list[Any]]:  # fmt: skip
        """A request with a bad record (docs/API.md, "Partial batches"): every problem of every
        record is named. By default (on_error "fail", and always for a single record) the request
        is refused, naming each bad record's index, field and problem up to MAX_RECORD_ERRORS;
        with on_error "report", the good records are scored and each bad one answers its error in
        its place. Returns the answers and the records scored."""
        problems = [(i, record_problems(predictor.parser, record)) for i, record in enumerate(records)]
        bad = {i: found for i, found in problems if found}
        if not bad:  # the parser found nothing the encoder did: its own error stands
            raise refused
        if single or body.get("on_error", ON_ERROR_FAIL) != ON_ERROR_REPORT:
            everything = [e if single else e.at(i) for i, found in bad.items() for e in found]
            if len(everything) == 1:
                raise refused
            raise RecordErrors(everything, MAX_RECORD_ERRORS, records=len(bad))
        good = [record for i, record in enumerate(records) if i not in bad]
        answers = iter(self.scored(predictor, good, top, False, body.get("explain"), resolved) if good else [])
        return [error_entry(bad[i]) if i in bad else next(answers) for i in range(len(records))], good

    def explained(
        self, predictor: Any, records: list[Any], top: int | None, single: bool, resolved: Resolved | None = None
    ) -> list[dict[str, Any]]:
        """The answers of ``answer`` with ``"explain": true``, each with its ``explanation``. A
        path of its own, so /predict/ without it does no extra work."""
        # a bad record: the same error as without explain
        answers = [predictor.predict_one(records[0], top)] if single else predictor.predict(records, top)
        for answer, explanation in zip(answers, predictor.explanations(records), strict=True):
            answer["explanation"] = explanation
        self.counted(predictor, len(answers), resolved)
        return answers

    def infer(self, ref: str, body: Any, request_id: str | None = None) -> dict[str, Any]:
        """The Open Inference Protocol V2 answer for the model key or reference: the same
        predictor, the same cap and the same count as ``answer``, so the two protocols answer
        alike. A named model's answer carries its name, its version and ``model``. Logged as
        ``answer`` logs (a one-row request under the request's id itself)."""
        started = time.perf_counter()
        if self.infer_validator is not None:
            self.infer_validator.check(body, "inference request")
        key, resolved, shadowed = self.routed(ref, openinference.routing_key(body))
        answered, rows, answers, top = self._infer(key, body, resolved)
        if request_id is not None and self.log is not None:
            latency_ms = (time.perf_counter() - started) * 1000.0
            self.log.log(request_id, logged_model(key, resolved), rows, answers, latency_ms, single=len(rows) == 1)
        if shadowed is not None and self.shadow is not None:
            self.shadow.submit(request_id, shadowed, rows, top, single=len(rows) == 1, one=False)
        if resolved is not None:
            answered.update(model_name=resolved.name, model_version=str(resolved.version), model=resolved.shown())
        return answered

    def _infer(
        self, key: str, body: Any, resolved: Resolved | None = None
    ) -> tuple[dict[str, Any], list[Any], list[dict[str, Any]], int | None]:
        predictor = self.predictors.get(checked_key(key))
        given = openinference.columns(key, body, predictor.parser)
        rows = openinference.Rows(given)  # made only if the log, a shadow or an explanation reads them
        wanted = openinference.wanted_outputs(key, body, predictor.parser)
        top = None if "probabilities" in wanted else 0
        self.check_answer_size(predictor, len(rows), top, v2=True)
        try:
            answers = predictor.predict_columns([given[f.key] for f in predictor.parser.features], top)
        except RecordError as exc:
            raise openinference.row_error(exc) from None
        self.counted(predictor, len(answers), resolved)
        if openinference.EXPLANATION in wanted:  # the very numbers /predict/ answers with explain
            for answer, explanation in zip(answers, predictor.explanations(rows), strict=True):
                answer["explanation"] = explanation
        return openinference.infer_response(key, body, predictor.parser, answers), rows, answers, top

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


ON_ERROR_FAIL, ON_ERROR_REPORT = "fail", "report"
ON_ERROR = (ON_ERROR_FAIL, ON_ERROR_REPORT)  # what /predict/'s "on_error" may say


def record_problems(parser: Any, record: Any) -> list[RecordError]:
    """Every problem of a record: the parser's ``problems`` (a parser without it: none found)."""
    problems = getattr(parser, "problems", None)
    return problems(record) if problems is not None else []


def error_entry(problems: list[RecordError]) -> dict[str, Any]:
    """A bad record's place in an on_error "report" answer: its first field, every problem."""
    return {
        "error": {
            "code": problems[0].code,
            "message": "; ".join(error.message for error in problems),
            "field": problems[0].field,
            "details": [{"field": error.field, "problem": error.problem} for error in problems],
        }
    }


def warned(parser: Any, records: list[Any], answers: list[dict[str, Any]]) -> None:
    """Adds ``warnings`` to the answer of each record with a category the model never saw in a
    feature whose schema says ``"unknown": "ignore"``."""
    for record, answer in zip(records, answers, strict=True):
        said = parser.warnings(record)
        if said:
            answer["warnings"] = said


def logged_model(key: str, resolved: Resolved | None) -> dict[str, Any]:
    """What the prediction log says served a request: a named model's name and version, or nulls."""
    if resolved is None:
        return {"name": None, "version": None, "model_key": key}
    return resolved.shown()


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
