"""Stored models: list, show and delete what training put in the model store."""

from __future__ import annotations

from flask import Blueprint, Response

from predictionservice.exceptions import NotFound
from predictionservice.modelstore import detail
from web.jsonio import json_response, shown
from web.services import services

bp = Blueprint("models", __name__)


@bp.get("/models/", strict_slashes=False)
def list_models() -> Response:
    return json_response({"models": services().models.summaries()})


@bp.get("/models/<key>")
def show_model(key: str) -> Response:
    loaded = services().models.load(key)
    if loaded is None:
        raise NotFound(f"model {shown(key)} not found")
    stored, _ = loaded
    return json_response(detail(key, stored))


@bp.delete("/models/<key>")
def delete_model(key: str) -> Response:
    if not services().models.delete(key):
        raise NotFound(f"model {shown(key)} not found")
    return Response(status=204)
