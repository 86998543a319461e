"""``GET /metrics`` (Prometheus text format, behind the token like every route but /health) and
the request hooks that count and time every answer by its route template (the rule the request
matched, ``/training/status/<job_id>``; ``unmatched`` when none did), never by its raw path.
With the setting ``metrics`` off no hook is installed and /metrics is 404."""

from __future__ import annotations

import time

from flask import Blueprint, Response, request

from predictionservice.exceptions import NotFound
from predictionservice.metrics import CONTENT_TYPE, UNMATCHED
from web import scopes
from web.services import services

bp = Blueprint("metrics", __name__)

_STARTED = "prediction_service.started"


@bp.get("/metrics")
def metrics() -> Response:
    found = services().metrics
    if found is None:
        raise NotFound("metrics are turned off on this server (setting 'metrics')")
    return Response(found.exposition(), content_type=CONTENT_TYPE)


def start() -> None:
    request.environ[_STARTED] = time.perf_counter()


def count(response: Response) -> Response:
    started = request.environ.get(_STARTED)
    if started is not None:
        rule = request.url_rule
        route = UNMATCHED if rule is None else scopes.route_of(getattr(rule, "template", rule.rule))
        services().metrics.request(request.method, route, response.status_code, time.perf_counter() - started)
    return response
