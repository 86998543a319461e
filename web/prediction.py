"""Online prediction: ``POST /predict/`` scores one record or many with a stored model, in numpy
in this process (no JVM), from a predictor cached against the model's version token. ``score``
is the one way records are scored online: the V2 infer route (web.v2) calls it too."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from predictionservice.exceptions import PayloadTooLarge
from web.jsonio import json_body, json_response
from web.services import services

bp = Blueprint("prediction", __name__)


@bp.post("/predict/", strict_slashes=False)
def predict() -> Response:
    return json_response(answer(json_body()))


def answer(body: Any) -> dict[str, Any]:
    """The answer to a prediction request: what POST /predict/ sends and the model page shows."""
    services().predict_validator.check(body, "prediction request")
    key = body["modelkey"]
    predictor = services().predictors.get(key)
    check_schema(body, predictor)
    top = body.get("top_probabilities")
    if "record" in body:
        check_answer_size(predictor, 1, top)
        one = predictor.predict_one(body["record"], top)
        counted(predictor, 1)
        return {"modelkey": key, **one}
    check_answer_size(predictor, len(body["records"]), top)
    return {"modelkey": key, "predictions": score(predictor, body["records"], top)}


def check_answer_size(predictor: Any, records: int, top: int | None, *, v2: bool = False) -> None:
    """An answer holds records x classes probabilities: a many-class model would make a small
    request a huge answer (2,000 classes x 10,000 records: 725 MB). Past max_answer_probabilities
    it is refused before anything is scored, naming the remedies."""
    limit = services().params["max_answer_probabilities"]
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


def score(predictor: Any, records: list[dict[str, Any]], top: int | None = None) -> list[dict[str, Any]]:
    """The predictor's answers for records, counted for /metrics."""
    answers = predictor.predict(records, top)
    counted(predictor, len(answers))
    return answers


def counted(predictor: Any, records: int) -> None:
    metrics = services().metrics
    if metrics is not None:
        metrics.predicted(predictor.algorithm, records)


def check_schema(body: dict[str, Any], predictor: Any) -> None:
    """A classic body may carry the schema: it must agree with the model's."""
    if "schema" in body:
        predictor.check_schema(body["schema"])
