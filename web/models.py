"""Stored models over HTTP: list, show and delete what training put in the model store, through
the core (``predictionservice.models.Models``, built once in ``services()``). A model is named by
its key or a named model's reference (``bank``, ``bank@production``, ``bank/3``)."""

from __future__ import annotations

from flask import Blueprint, Response

from web.jsonio import json_response
from web.services import services

bp = Blueprint("models", __name__)


@bp.get("/models/", strict_slashes=False)
def list_models() -> Response:
    return json_response({"models": services().stored_models.listing()})


@bp.get("/models/<path:key>")  # a path: a named model's version is <name>/<version>
def show_model(key: str) -> Response:
    return json_response(services().stored_models.show(key))


@bp.delete("/models/<path:key>")
def delete_model(key: str) -> Response:
    services().stored_models.delete(key)
    return Response(status=204)
