"""modelservice.py, the app factory (the flows through the running service are test_flow_*.py):
what one call of ``modelservice(params)`` puts together, in process: the body cap of the largest
route, the slashless twins and their templates, the OpenAPI document of the routes registered,
the metrics hooks only when metrics are on, and the worker's Celery app never built on import."""

from __future__ import annotations

import pytest

import modelservice as factory
from helpers import API_ROUTES, InProcess
from modelservice import modelservice
from web.services import EXTENSION


def test_the_body_cap_is_the_largest_routes(base_params):
    app = modelservice({**base_params, "max_body_bytes": 1000, "max_dataset_bytes": 5000})
    assert app.config["MAX_CONTENT_LENGTH"] == 5000


def test_each_slashless_twin_reaches_its_original_with_its_methods_and_template(base_params):
    app = modelservice(base_params)
    rules = {(rule.rule, rule.endpoint): rule for rule in app.url_map.iter_rules()}
    twins = [rule for (path, endpoint), rule in rules.items() if (path + "/", endpoint) in rules]
    assert {rule.rule for rule in twins} >= {"/train", "/predict", "/predictall", "/models", "/jobs", "/datasets"}
    for twin in twins:
        original = rules[(twin.rule + "/", twin.endpoint)]
        assert twin.methods == original.methods and twin.template == original.rule
    answer = InProcess(app).request("GET", "/predict")
    assert answer.status_code == 405 and answer.headers["Allow"] == "OPTIONS, POST"


def test_the_document_is_built_once_from_the_routes_registered(base_params):
    app = modelservice(base_params)
    document = app.extensions[EXTENSION].openapi
    assert {path: set(item) - {"parameters"} for path, item in document["paths"].items()} == API_ROUTES
    assert document["components"]["schemas"]["Job"]["oneOf"]  # the offered algorithms' job documents


@pytest.mark.parametrize("on", [True, False])
def test_metrics_are_counted_only_when_on(base_params, on):
    app = modelservice({**base_params, "metrics": on})
    hooks = [hook.__module__ for hook in app.before_request_funcs[None]]
    assert ("web.metrics" in hooks) is on
    assert hooks[0] == "web.requestid"  # a refused request has an id too
    assert hooks[-1] == "web.guard"


def test_the_worker_app_is_built_when_celery_asks_for_it_never_on_import():
    assert "celery" not in vars(factory)
    with pytest.raises(AttributeError, match="has no attribute 'worker'"):
        _ = factory.worker
