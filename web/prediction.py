"""Online prediction: ``POST /predict/`` scores one record or many with a stored model, in numpy
in this process (no JVM), from a predictor cached against the model's version token. ``score``
is the one way records are scored online: the V2 infer route (web.v2) calls it too."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response

from dataparser import DataParser
from predictionservice.exceptions import InvalidRequest
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
    if "record" in body:
        one = predictor.predict_one(body["record"])
        counted(predictor, 1)
        return {"modelkey": key, **one}
    return {"modelkey": key, "predictions": score(predictor, body["records"])}


def score(predictor: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The predictor's answers for records, counted for /metrics."""
    answers = predictor.predict(records)
    counted(predictor, len(answers))
    return answers


def counted(predictor: Any, records: int) -> None:
    metrics = services().metrics
    if metrics is not None:
        metrics.predicted(predictor.algorithm, records)


def check_schema(body: dict[str, Any], predictor: Any) -> None:
    """A classic body may carry the schema: it must agree with the model's."""
    if "schema" not in body or json.dumps(body["schema"]) == predictor.schema_json:  # verbatim: agrees
        return
    if DataParser(body["schema"]).schema() != predictor.schema():
        raise InvalidRequest(
            "'schema' does not agree with the schema stored with the model; send the record alone",
            details=[{"field": "schema", "problem": "differs from the model's schema"}],
        )
