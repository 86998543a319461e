"""Quality and drift of a named model's logged predictions over HTTP (docs/API.md, "Quality and
drift"): ``GET /registry/<name>/monitor?since=<ISO time>&version=<v>``. The work is the core's
(``predictionservice.monitor.Monitor``, built once in ``services()``): this view only parses,
calls and renders."""

from __future__ import annotations

from flask import Blueprint, Response, request

from web.jsonio import json_response
from web.services import services

bp = Blueprint("monitor", __name__)


@bp.get("/registry/<name>/monitor")
def monitor(name: str) -> Response:
    """The version's predictions since then against its training profile (default: production,
    the last monitor_window_seconds)."""
    since, version = request.args.get("since"), request.args.get("version")
    return json_response(services().monitor.run(name, since, version))
