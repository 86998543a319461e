"""The prediction service's Flask app: ``modelservice(params)`` builds it from configuration.

Routes live on one blueprint per resource under ``web/`` (the pages under ``web/pages/``) and
only adapt HTTP to the core (``predictionservice.prediction``, ``.datasets``, ``.models``, the
stores); the core and its collaborators are built here once, into ``app.extensions``, and
reached through ``web.services.services()``. The HTTP
contract is docs/API.md; /openapi.json is generated from the app's routes and the
schemas they validate with.

``celery -A modelservice.celery worker`` (the chapter's command) still works: ``celery`` is the
worker's app (``worker.celery_app()``), built when Celery asks for it, never on import, so the web
process reads no configuration at import time and builds one Celery app, its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from predictionservice.config import load_parameters
from web import audit, datasets, jobs, keys, meta, metrics, models, monitor, pages, prediction, registry, requestid, v2
from web.errors import register_errors
from web.feedback import bp as feedback_bp
from web.guard import guard, record_change
from web.services import EXTENSION, Services

BLUEPRINTS = (
    jobs.bp, prediction.bp, feedback_bp, models.bp, registry.bp, datasets.bp, meta.bp, v2.bp, metrics.bp, keys.bp,
    audit.bp, monitor.bp,
)  # fmt: skip


class ServiceApp(Flask):
    """Flask, less one question per hook and view of every request: ``ensure_sync`` asks
    ``inspect`` whether each is a coroutine function (seven times a prediction, a tenth of the
    app's own time for one record). Every view and hook of the service is a plain function, as
    tests/test_layout.py holds, so each is called as it is."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func


def modelservice(params: dict[str, Any] | None = None) -> Flask:
    """The Flask app of the prediction service, built from configuration."""
    params = params if params is not None else load_parameters()
    app = ServiceApp("prediction_service", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = max(params["max_body_bytes"], params["max_dataset_bytes"])
    app.extensions[EXTENSION] = Services(params)
    register_errors(app)
    app.before_request(requestid.begin)  # before the guard: a refused request has an id too
    app.after_request(requestid.stamp)
    if params["metrics"]:
        app.before_request(metrics.start)
        app.after_request(metrics.count)
    app.before_request(guard)
    app.after_request(record_change)
    for blueprint in BLUEPRINTS + pages.BLUEPRINTS:
        app.register_blueprint(blueprint)
    _slashless_twins(app)
    app.extensions[EXTENSION].openapi = meta.openapi_document(app)  # its paths are the routes just added
    return app


def _slashless_twins(app: Flask) -> None:
    """'/predict' reaches the '/predict/' rule (strict_slashes=False) only with the rule's own
    methods: Werkzeug answered any other method 404, not 405. Slashless twins make it 405; each
    carries its original's template, the route /metrics counts both under."""
    originals = [r for r in app.url_map.iter_rules() if r.rule.endswith("/") and not r.strict_slashes]
    for rule in originals:
        app.add_url_rule(rule.rule.rstrip("/"), rule.endpoint, methods=(rule.methods or set()) - {"OPTIONS"})
    templates = {rule.rule.rstrip("/"): rule.rule for rule in originals}
    for rule in app.url_map.iter_rules():
        if rule.rule in templates:
            rule.template = templates[rule.rule]


def __getattr__(name: str) -> Any:
    """``celery -A modelservice.celery``: the worker's app with the tasks, built on first use."""
    if name == "celery":
        import worker

        return worker.celery_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
