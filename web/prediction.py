"""Online prediction over HTTP: ``POST /predict/`` parses the body, asks the core
(``predictionservice.prediction.Predictions``, built once in ``services()``) for the answer and
sends it. The scoring itself (numpy in this process, no JVM; the answer's size cap; the schema
check; the count for /metrics; the prediction log, given the request's id) lives in the core,
which the model page and V2 call too."""

from __future__ import annotations

from flask import Blueprint, Response

from web import requestid
from web.jsonio import json_body, json_response
from web.services import services

bp = Blueprint("prediction", __name__)


@bp.post("/predict/", strict_slashes=False)
def predict() -> Response:
    return json_response(services().predictions.answer(json_body(), requestid.current()))
