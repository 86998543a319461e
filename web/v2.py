"""The Open Inference Protocol V2 over REST (``/v2/...``), beside the service's own routes, for
every stored model: health, server and model metadata, readiness and inference. Inference is
the core's (``services().predictions.infer``): the very predictor, cap and count ``/predict/``
uses, so the two answer alike; the protocol itself (tensors to records, answers to tensors) is
``predictionservice.openinference``. Errors here are the protocol's ``{"error": "<message>"}``
(web.errors), and a body without Content-Type is JSON (tritonclient sends none). A model is named
by its key or a named model's reference, and a name's version by ``/models/<name>/versions/<v>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from flask import Blueprint, Response, request

from dataparser import DataParser
from predictionservice import openinference
from predictionservice.exceptions import InvalidRequest, NotFound, shown
from predictionservice.prediction import checked_key
from predictionservice.registry import MAX_VERSION_DIGITS, is_model_key
from predictionservice.version import __version__
from web import requestid
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
    return json_response({"name": openinference.SERVER_NAME, "version": __version__, "extensions": []})


@bp.get("/models/<key>")
def model_metadata(key: str) -> Response:
    """A model key's or a named model's metadata; a name's lists its versions."""
    return json_response(_metadata(key))


@bp.get("/models/<key>/versions/<version>")
def version_metadata(key: str, version: str) -> Response:
    return json_response(_metadata(_versioned(key, version)))


@bp.get("/models/<key>/ready")
def model_ready(key: str) -> Response:
    """Ready when its predictor is compiled (or can be): the model is servable."""
    model_key, _ = services().predictions.resolve(key)
    services().predictors.get(checked_key(model_key))
    return json_response({"name": key, "ready": True})


@bp.get("/models/<key>/versions/<version>/ready")
def version_ready(key: str, version: str) -> Response:
    model_key, _ = services().predictions.resolve(_versioned(key, version))
    services().predictors.get(checked_key(model_key))
    return json_response({"name": key, "version": version, "ready": True})


@bp.post("/models/<key>/infer")
def infer(key: str) -> Response:
    return json_response(services().predictions.infer(key, _infer_body(), requestid.current()))


@bp.post("/models/<key>/versions/<version>/infer")
def version_infer(key: str, version: str) -> Response:
    return json_response(services().predictions.infer(_versioned(key, version), _infer_body(), requestid.current()))


def _metadata(ref: str) -> dict[str, Any]:
    """V2 metadata of a model key or a named model's reference: a name's carries its name, every
    version it has (what /versions/<v> may ask for) and ``model`` (the version described)."""
    models = services().stored_models
    key, resolved = models.resolve(ref)
    stored = models.stored(checked_key(key))
    metadata = openinference.model_metadata(ref, stored, DataParser(stored["schema"]))
    if resolved is not None:
        versions = [str(v["version"]) for v in services().registry.entry(resolved.name)["versions"]]
        metadata.update(name=resolved.name, versions=versions, model=resolved.shown())
    return metadata


def _versioned(name: str, version: str) -> str:
    """The reference of a name's version (V2's /models/<name>/versions/<v>): its form is checked
    where it is resolved, so a key or a version that is no number names no model (404)."""
    if not (version.isdigit() and len(version) <= MAX_VERSION_DIGITS) or is_model_key(name):
        raise NotFound(f"model {shown(name)} has no version {shown(version)}")
    return f"{name}/{int(version)}"


def _infer_body() -> Any:
    if openinference.BINARY_HEADER in request.headers:
        raise InvalidRequest(openinference.BINARY_REFUSED)
    body = json_body(untyped=True)
    if isinstance(body, Mapping):
        openinference.refuse_binary(body)
    return body
