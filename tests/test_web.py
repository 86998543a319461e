"""web/: the blueprints, the guard, the one error envelope and the services accessor, in process
(Flask's test client: routes and handlers run exactly as under CherryPy, with no server)."""

from __future__ import annotations

import pytest

from helpers import InProcess
from modelservice import BLUEPRINTS, modelservice
from web.services import Services, services


def test_each_resource_is_one_blueprint_of_module_level_views(client):
    assert {bp.name for bp in BLUEPRINTS} == {"jobs", "prediction", "models", "datasets", "meta", "ui"}
    endpoints = {rule.endpoint for rule in client.app.url_map.iter_rules()}
    assert {"jobs.submit_training", "prediction.predict", "models.show_model", "datasets.put_dataset"} <= endpoints
    assert "meta.health" in endpoints


def test_views_reach_their_collaborators_through_the_accessor(client):
    with client.app.app_context():
        assert isinstance(services(), Services)
        assert services() is client.app.extensions["prediction_service"]


def test_two_apps_share_nothing(base_params):
    first, second = modelservice(base_params), modelservice({**base_params, "auth_token": "t"})
    assert first.extensions["prediction_service"] is not second.extensions["prediction_service"]
    assert InProcess(first).get("/models/").status_code == 200
    assert InProcess(second).get("/models/").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no-such-route", 404, "not_found"),
        ("DELETE", "/predict/", 405, "method_not_allowed"),
        ("GET", "/predict", 405, "method_not_allowed"),  # the slashless twin
        ("GET", "/train", 405, "method_not_allowed"),
        ("POST", "/models", 405, "method_not_allowed"),
    ],
)
def test_routing_errors_are_the_error_envelope(client, method, path, status, code):
    answer = client.request(method, path)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code and set(answer.json()) == {"error"}
    if status == 405:
        assert "POST" in answer.headers["Allow"] or "GET" in answer.headers["Allow"]


def test_a_body_over_the_route_limit_is_413_before_it_is_read(client):
    limit = client.params["max_body_bytes"]
    answer = client.request(
        "POST",
        "/predict/",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": str(limit + 1)},
    )
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"
    assert str(limit) in answer.json()["error"]["message"]


def test_a_body_that_is_not_json_is_415_naming_what_to_send(client):
    answer = client.request("POST", "/predict/", data=b"modelkey=x", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert "Content-Type: application/json" in answer.json()["error"]["message"]


def test_a_bug_is_a_500_with_an_incident_id_and_no_trace(base_params, caplog):
    app = modelservice(base_params)

    @app.get("/boom")
    def boom():
        raise ZeroDivisionError("secret detail")

    answer = InProcess(app).get("/boom")
    assert answer.status_code == 500
    message = answer.json()["error"]["message"]
    assert message.startswith("internal error (incident ") and "secret" not in answer.text
    assert "Traceback" not in answer.text
    assert any("ZeroDivisionError" in (r.exc_text or "") for r in caplog.records)


def test_the_jobs_list_checks_its_query(client):
    assert isinstance(client.get("/jobs/").json()["jobs"], list)
    for query in ({"kind": "nope"}, {"status": "done"}, {"limit": "0"}, {"limit": "x"}, {"limit": "501"}):
        answer = client.get("/jobs/", params=query)
        assert answer.status_code == 400, query
        assert next(iter(query)) in answer.json()["error"]["message"]
