"""Stored models over HTTP: list, show and delete what training put in the model store, through
the core (``predictionservice.models.Models``, built once in ``services()``). A model is named by
its key or a named model's reference (``bank``, ``bank@production``, ``bank/3``); two or more
compared on the same held-out rows by a worker (POST /models/compare, a job)."""

from __future__ import annotations

from flask import Blueprint, Response

from web.jsonio import json_body, json_response
from web.requestid import origin
from web.services import services

bp = Blueprint("models", __name__)


@bp.get("/models/", strict_slashes=False)
def list_models() -> Response:
    return json_response({"models": services().stored_models.listing()})


@bp.post("/models/compare")
def compare_models() -> Response:
    """Two or more models scored on the newest one's held-out rows, by a worker (a job): 202."""
    job_id = services().submit_comparison(json_body(), origin())
    return json_response({"job_id": job_id}, 202, {"Location": f"/jobs/{job_id}"})


@bp.get("/models/<path:key>")  # a path: a named model's version is <name>/<version>
def show_model(key: str) -> Response:
    return json_response(services().stored_models.show(key))


@bp.delete("/models/<path:key>")
def delete_model(key: str) -> Response:
    services().stored_models.delete(key)
    return Response(status=204)
