"""The Open Inference Protocol V2 over REST (``/v2/...``), beside the service's own routes, for
every stored model: health, server and model metadata, readiness and inference. Inference is
the core's (``services().predictions.infer``): the very predictor, cap and count ``/predict/``
uses, so the two answer alike; the protocol itself (tensors to records, answers to tensors) is
``predictionservice.openinference``. Errors here are the protocol's ``{"error": "<message>"}``
(web.errors), and a body without Content-Type is JSON (tritonclient sends none)."""

from __future__ import annotations

from collections.abc import Mapping

import redis
from flask import Blueprint, Response, request

from dataparser import DataParser
from predictionservice import openinference
from predictionservice.exceptions import InvalidRequest
from predictionservice.openapi import VERSION
from predictionservice.prediction import checked_key
from web.jsonio import json_body, json_response
from web.services import services

bp = Blueprint("v2", __name__, url_prefix=openinference.PATH_PREFIX)


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
    stored = services().stored_models.stored(checked_key(key))
    return json_response(openinference.model_metadata(key, stored, DataParser(stored["schema"])))


@bp.get("/models/<key>/ready")
def model_ready(key: str) -> Response:
    """Ready when its predictor is compiled (or can be): the model is servable."""
    services().predictors.get(checked_key(key))
    return json_response({"name": key, "ready": True})


@bp.post("/models/<key>/infer")
def infer(key: str) -> Response:
    if openinference.BINARY_HEADER in request.headers:
        raise InvalidRequest(openinference.BINARY_REFUSED)
    body = json_body(untyped=True)
    if isinstance(body, Mapping):
        openinference.refuse_binary(body)
    return json_response(services().predictions.infer(key, body))
