"""Stored models over HTTP: list, show and delete what training put in the model store, through
the core (``predictionservice.models.Models``, built once in ``services()``)."""

from __future__ import annotations

from flask import Blueprint, Response

from web.jsonio import json_response
from web.services import services

bp = Blueprint("models", __name__)


@bp.get("/models/", strict_slashes=False)
def list_models() -> Response:
    return json_response({"models": services().stored_models.listing()})


@bp.get("/models/<key>")
def show_model(key: str) -> Response:
    return json_response(services().stored_models.show(key))


@bp.delete("/models/<key>")
def delete_model(key: str) -> Response:
    services().stored_models.delete(key)
    return Response(status=204)
