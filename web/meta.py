"""The service itself: ``/health`` (Redis, MongoDB and the workers that answer) and the OpenAPI
document, generated once per app from the schemas the routes validate with."""

from __future__ import annotations

from typing import Any

import pymongo.errors
import redis
from flask import Blueprint, Response

from predictionservice.exceptions import ServiceUnavailable
from web.jsonio import json_response
from web.services import services

bp = Blueprint("meta", __name__)


@bp.get("/health")
def health() -> Response:
    report: dict[str, Any] = {"status": "ok"}
    down = []
    try:
        services().redis.ping()
        report["redis"] = "ok"
    except redis.RedisError as exc:
        report["redis"] = f"down: {type(exc).__name__}"
        down.append("redis")
    try:
        with services().mongo.lease(services().params["mongodb_uri"]) as client:
            client.admin.command("ping")
        report["mongo"] = "ok"
    except pymongo.errors.PyMongoError as exc:
        report["mongo"] = f"down: {type(exc).__name__}"
        down.append("mongo")
    names = services().workers() if "redis" not in down else []
    report["workers"], report["worker_names"] = len(names), names
    if down:
        report["status"] = "unavailable: " + ", ".join(down)
        # the health report, and the error every non-success answer carries
        report |= ServiceUnavailable(f"{' and '.join(down)} not answering", details=down).to_dict()
        return json_response(report, 503)
    return json_response(report)


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(services().openapi)
