"""The Open Inference Protocol V2 over REST (``/v2/...``), beside the service's own routes, for
every stored model: health, server and model metadata, readiness and inference. Inference
scores through the very predictor ``/predict/`` uses (``services().predictors``), so the two
answer alike; the protocol itself (tensors to records, answers to tensors) is
``predictionservice.openinference``. Errors here are the protocol's ``{"error": "<message>"}``
(web.errors), and a body without Content-Type is JSON (tritonclient sends none)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import redis
from flask import Blueprint, Response, request

from dataparser import DataParser
from predictionservice import openinference
from predictionservice.exceptions import InvalidRequest, NotFound, RecordError
from predictionservice.openapi import VERSION
from predictionservice.validation import KEY_PATTERN
from web.jsonio import json_body, json_response, shown
from web.prediction import check_answer_size, score
from web.services import services

bp = Blueprint("v2", __name__, url_prefix=openinference.PATH_PREFIX)

_KEY = re.compile(KEY_PATTERN)


@bp.get("/health/live")
def live() -> Response:
    return json_response({"live": True})


@bp.get("/health/ready")
def ready() -> Response:
    """Ready when Redis, which holds the models, answers."""
    try:
        services().redis.ping()
    except redis.RedisError as exc:
        return json_response({"ready": False, "error": f"Redis is not answering: {type(exc).__name__}"}, 503)
    return json_response({"ready": True})


@bp.get("", strict_slashes=False)
def server_metadata() -> Response:
    return json_response({"name": openinference.SERVER_NAME, "version": VERSION, "extensions": []})


@bp.get("/models/<key>")
def model_metadata(key: str) -> Response:
    loaded = services().models.load(_checked(key))
    if loaded is None:
        raise NotFound(f"model {shown(key)} not found")
    stored, _ = loaded
    return json_response(openinference.model_metadata(key, stored, DataParser(stored["schema"])))


@bp.get("/models/<key>/ready")
def model_ready(key: str) -> Response:
    """Ready when its predictor is compiled (or can be): the model is servable."""
    services().predictors.get(_checked(key))
    return json_response({"name": key, "ready": True})


@bp.post("/models/<key>/infer")
def infer(key: str) -> Response:
    if openinference.BINARY_HEADER in request.headers:
        raise InvalidRequest(openinference.BINARY_REFUSED)
    body = json_body(untyped=True)
    if isinstance(body, Mapping):
        openinference.refuse_binary(body)
    services().infer_validator.check(body, "inference request")
    predictor = services().predictors.get(_checked(key))
    rows = openinference.records(key, body, predictor.parser)
    top = None if "probabilities" in openinference.wanted_outputs(key, body, predictor.parser) else 0
    check_answer_size(predictor, len(rows), top, v2=True)
    try:
        answers = score(predictor, rows, top)
    except RecordError as exc:
        raise openinference.row_error(exc) from None
    return json_response(openinference.infer_response(key, body, predictor.parser, answers))


def _checked(key: str) -> str:
    """A model key as /predict/ takes it; any other cannot name a model."""
    if not _KEY.match(key):
        raise NotFound(f"model {shown(key)} not found")
    return key
