"""The service itself: ``/health`` (Redis, MongoDB and the workers that answer), the OpenAPI
document, generated once per app from the schemas the routes validate with, and ``/docs``, Swagger
UI over it, served from the swagger-ui-bundle package (offline: no CDN is ever named)."""

from __future__ import annotations

from typing import Any

import pymongo.errors
import redis
import swagger_ui_bundle
from flask import Blueprint, Response, send_from_directory

from predictionservice.exceptions import NotFound, ServiceUnavailable
from web.jsonio import json_response, shown
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


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>Prediction service: API</title>
  <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script src="/docs/docs-init.js" charset="UTF-8"></script>
</body>
</html>
"""
# A file of its own, not an inline script: a Content-Security-Policy without 'unsafe-inline' holds.
DOCS_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
};
"""
DOCS_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})


@bp.get("/docs")
def docs() -> Response:
    return Response(DOCS_PAGE, mimetype="text/html")


@bp.get("/docs/<asset>")
def docs_asset(asset: str) -> Response:
    """The page's own files only, from the installed package (no directory listing, no other file)."""
    if asset == "docs-init.js":
        return Response(DOCS_INIT, mimetype="text/javascript")
    if asset not in DOCS_ASSETS:
        raise NotFound(f"no documentation file {shown(asset)}; the API documentation is /docs")
    return send_from_directory(str(swagger_ui_bundle.swagger_ui_path), asset, max_age=3600)
