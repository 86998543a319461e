"""Named models over HTTP (docs/API.md, "Named models"): list and show names, move and remove
aliases, change a name's promotion policy, remove a name, retrain it now or on a schedule, shadow
or split its traffic with a candidate. The operations are the library's
(``predictionservice.registry.Registry``, ``.retraining.Retrainer``, ``.schedules.Schedules``,
built once in ``services()``): these views only parse, call and render."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, request

from predictionservice.exceptions import InvalidRequest
from web.jsonio import json_body, json_response
from web.requestid import origin
from web.services import services

bp = Blueprint("registry", __name__)


@bp.get("/registry/", strict_slashes=False)
def list_names() -> Response:
    return json_response({"models": services().registry.listing()})


@bp.get("/registry/<name>")
def show_name(name: str) -> Response:
    shown = services().registry.show(name)
    shown["schedule"] = services().schedules.view(name, shown["schedule"])  # with its next run
    return json_response(shown)


@bp.delete("/registry/<name>")
def delete_name(name: str) -> Response:
    """The name goes, and its schedule; its models stay under their keys."""
    services().registry.delete_name(name)
    services().schedules.forget(name)
    return Response(status=204)


@bp.put("/registry/<name>/aliases/<alias>")
def move_alias(name: str, alias: str) -> Response:
    body = json_body()
    if not isinstance(body, Mapping) or "version" not in body or set(body) - {"version"}:
        raise InvalidRequest(
            'the body must be {"version": <n>}, the version the alias is to point to',
            details=[{"field": "version", "problem": "needs the field 'version' and no other"}],
        )
    return json_response(services().registry.move(name, alias, body["version"]))


@bp.delete("/registry/<name>/aliases/<alias>")
def delete_alias(name: str, alias: str) -> Response:
    services().registry.remove_alias(name, alias)
    return Response(status=204)


@bp.put("/registry/<name>/policy")
def put_policy(name: str) -> Response:
    return json_response(services().registry.set_policy(name, json_body()))


@bp.post("/registry/<name>/retrain")
def retrain(name: str) -> Response:
    """The name's last job document queued again (optional body: fields overriding it)."""
    empty = not request.content_length and "chunked" not in request.headers.get("Transfer-Encoding", "")
    body = None if empty else json_body()
    job_id = services().retrainer.retrain(name, body, origin())
    return json_response({"job_id": job_id}, 202, {"Location": f"/training/status/{job_id}"})


@bp.put("/registry/<name>/schedule")
def put_schedule(name: str) -> Response:
    return json_response(services().schedules.put(name, json_body()))


@bp.get("/registry/<name>/schedule")
def show_schedule(name: str) -> Response:
    return json_response(services().schedules.show(name))


@bp.delete("/registry/<name>/schedule")
def delete_schedule(name: str) -> Response:
    services().schedules.delete(name)
    return Response(status=204)


@bp.put("/registry/<name>/traffic")
def put_traffic(name: str) -> Response:
    """Shadow or split the name's requests with one of its aliases (the candidate)."""
    return json_response(services().registry.set_traffic(name, json_body()))


@bp.get("/registry/<name>/traffic")
def show_traffic(name: str) -> Response:
    return json_response(services().registry.traffic(name))


@bp.delete("/registry/<name>/traffic")
def delete_traffic(name: str) -> Response:
    services().registry.remove_traffic(name)
    return Response(status=204)
