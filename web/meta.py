"""The service itself: ``/health`` (Redis, MongoDB, the workers that answer and the retraining
scheduler), the OpenAPI
document, built once per app from its url_map and the operations predictionservice/openapi.py
declares, and ``/docs``, Swagger UI 5 over it (it reads OpenAPI 3.1), served from the files the
flask-openapi3-swagger package ships (offline: no CDN is ever named)."""

from __future__ import annotations

import logging
import re
from importlib import resources
from typing import Any

import pymongo.errors
import redis
from flask import Blueprint, Flask, Response, send_from_directory
from werkzeug.routing import Map

from predictionservice import openapi as apidoc
from predictionservice.exceptions import NotFound, ServiceUnavailable
from predictionservice.version import __version__
from web import guard
from web.jsonio import json_response, shown
from web.services import EXTENSION, Services, services

bp = Blueprint("meta", __name__)
log = logging.getLogger(__name__)

# The rules that are not the API: the pages, for people (HTML forms with a CSRF token: '/' and
# '/ui/...'), and Swagger UI's own files ('/docs/<asset>'). Every other rule is an operation of
# /openapi.json, and tests/test_openapi.py fails for one that has none declared.
NOT_API = re.compile(r"/|/ui/.*|/docs/<.*")


def api_routes(url_map: Map) -> list[apidoc.Route]:
    """The API's routes as the url_map has them, in the order they were added: a path per rule
    ('<job_id>' becomes '{job_id}'), a Route per method (HEAD and OPTIONS are implied). The pages
    are left out, and so is a slashless twin ('/train' beside '/train/', same view)."""
    rules = list(url_map.iter_rules())
    slashed = {(rule.rule, rule.endpoint) for rule in rules}
    routes = []
    for rule in rules:
        if NOT_API.fullmatch(rule.rule) or (rule.rule + "/", rule.endpoint) in slashed:
            continue
        path = re.sub(r"<(?:[^<>:]+:)?(\w+)>", r"{\1}", rule.rule)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        routes += [apidoc.Route(path, method.lower(), rule.endpoint, len(methods) == 1) for method in methods]
    return routes


def openapi_document(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI document, from its routes once they are all registered. A route with no
    operation declared is left out of it and logged (tests fail for it)."""
    collaborators: Services = app.extensions[EXTENSION]
    params = collaborators.params
    routes = api_routes(app.url_map)
    for problem in apidoc.coverage(routes):
        log.warning("/openapi.json: %s", problem)
    return apidoc.openapi_document(
        routes,
        max_records=params["max_records_per_request"],
        max_feedback=params["feedback_max_records"],
        secured=collaborators.access.secured,
        job_schemas=collaborators.factory.job_schemas(),
    )


@bp.get("/health")
def health() -> Response:
    """Up or down for anyone (a load balancer's probe); what is down and the workers' names only
    for a key with the 'read' scope (they name hosts)."""
    report = _health_report()
    if guard.allows("read"):
        return json_response(report, 503 if "error" in report else 200)
    if "error" not in report:
        return json_response({"status": "ok"})
    down = ServiceUnavailable("a dependency is not answering (a key with the 'read' scope sees which)")
    return json_response({"status": "unavailable", **down.to_dict()}, 503)


def _health_report() -> dict[str, Any]:
    report: dict[str, Any] = {"status": "ok", "version": __version__}
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
    if "redis" not in down:  # the scheduler is no dependency of serving: absent is reported, not down
        try:
            report["scheduler"] = services().scheduler()
        except redis.RedisError as exc:
            report["scheduler"] = {"status": f"unknown: {type(exc).__name__}"}
    if down:
        report["status"] = "unavailable: " + ", ".join(down)
        # the health report, and the error every non-success answer carries
        report |= ServiceUnavailable(f"{' and '.join(down)} not answering", details=down).to_dict()
    return report


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(services().openapi)


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>Prediction service: API</title>
  <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/svg+xml" href="/docs/swagger.svg">
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
# Swagger UI's own files as flask-openapi3-swagger ships them (its plugin module, which needs
# flask-openapi3's app, is never imported: only the files are read): name served -> the folder.
SWAGGER_UI = resources.files("flask_openapi3_swagger") / "templates" / "swagger"
DOCS_ASSETS = {"swagger-ui.css": "css", "swagger-ui-bundle.js": "js", "swagger.svg": "images"}


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
    return send_from_directory(str(SWAGGER_UI / DOCS_ASSETS[asset]), asset, max_age=3600)
