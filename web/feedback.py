"""``POST /feedback/``: the true outcome of logged predictions, ``{"request_id", "label"}`` or
``{"records": [...]}`` of them, stored on the prediction log by the core
(``predictionservice.feedback.Feedback``, built once in ``services()``). Scope ``predict``: it is
sent by whoever called /predict/ (it names the request ids they were answered with), and it
changes no model, dataset or setting, only the log of their own predictions."""

from __future__ import annotations

from flask import Blueprint, Response

from web.jsonio import json_body, json_response
from web.services import services

bp = Blueprint("feedback", __name__)


@bp.post("/feedback/", strict_slashes=False)
def store_feedback() -> Response:
    return json_response(services().feedback.store(json_body()))
