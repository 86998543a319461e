"""web/scopes.py, the scope each route needs: every route of the app's own url_map, with a key of
each scope. A key with the route's scope is let through (whatever the view then answers: no 401,
no 403); a key without it is 403 forbidden naming the scope it needs; an open route needs none.
A route added without a declaration in web/scopes.py fails here.

The app runs in process on the session's Redis (under a prefix of its own) and MongoDB; no request
queues a job (bodies are missing or refused)."""

from __future__ import annotations

import re
import uuid

import pytest
from werkzeug.routing import Rule

from helpers import InProcess
from modelservice import modelservice
from predictionservice.apikeys import SCOPES
from predictionservice.config import load_parameters
from web import scopes

TOKEN = "scopes-token"
VALUES = {
    "db": "scopes_db",  # fixed: a test id holds it, and parallel workers must collect the same ids
    "collection": "c",
    "key": "no-such-model",
    "job_id": "0123456789abcdef",
    "id": "no-such-key",
    "name": "no-such-name",
    "alias": "production",
    "version": "1",
    "asset": "swagger-ui.css",
    "filename": "ui.css",
}


def rule_methods(app) -> list[tuple[Rule, str, str]]:
    """(rule, method, a concrete path) of every rule of the app, HEAD and OPTIONS aside."""
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^<>:]+:)?(\w+)>", lambda m: VALUES[m.group(1)], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method, path))
    return found


def route_methods(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, a concrete path) of every rule of the app, HEAD and OPTIONS aside."""
    return [(rule.endpoint, method, path) for rule, method, path in rule_methods(app)]


ROUTES = sorted(set(route_methods(modelservice({**load_parameters(environ={}), "auth_token": "x"}))))


@pytest.fixture(scope="module")
def app(base_params):
    started = InProcess(
        modelservice({**base_params, "auth_token": TOKEN, "redis_key_prefix": f"sc{uuid.uuid4().hex[:6]}:"})
    )
    keys = started.app.extensions["prediction_service"].access.keys
    started.secrets = {scope: keys.create(f"only-{scope}", [scope])[1] for scope in SCOPES}
    csrf = started.get("/ui/login").text
    started.csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', csrf).group(1)
    return started


def test_every_route_declares_its_scope():
    undeclared = [
        f"{method} {path} ({endpoint})" for endpoint, method, path in ROUTES if not scopes.declared(endpoint, method)
    ]
    assert undeclared == [], "declare the scope of each route in web/scopes.py ROUTE_SCOPES"
    stale = set(scopes.ROUTE_SCOPES) - {endpoint for endpoint, _, _ in ROUTES}
    assert stale == set(), "ROUTE_SCOPES names endpoints no route has"


def test_the_contract_s_scopes():
    """docs/API.md: predict for /predict/, V2 infer; read for every GET; train for /train/,
    /predictall/, dataset writes; admin for deletes and keys."""
    for endpoint, method, path in ROUTES:
        needed = scopes.scope_of(endpoint, method)
        if path.startswith("/ui/") or needed is scopes.OPEN:
            continue
        if method == "GET" and not path.startswith(("/keys", "/audit")):
            assert needed == "read", (method, path)
        if method == "DELETE":
            assert needed == "admin", (method, path)
    assert scopes.scope_of("prediction.predict", "POST") == scopes.scope_of("v2.infer", "POST") == "predict"
    assert scopes.scope_of("datasets.put_dataset", "PUT") == scopes.scope_of("jobs.submit_training", "POST") == "train"


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(("endpoint", "method", "path"), ROUTES, ids=[f"{m} {p}" for _, m, p in ROUTES])
def test_every_route_with_a_key_of_every_scope(app, scope, endpoint, method, path):
    needed = scopes.scope_of(endpoint, method)
    headers = {"Authorization": f"Bearer {app.secrets[scope]}"}
    data = {"csrf_token": app.csrf} if path.startswith("/ui/") and method == "POST" else None
    response = app.request(method, path, headers=headers, data=data)
    if needed is scopes.OPEN:  # the sign-in posted without a key is its own 401
        assert response.status_code != 403, response.text[:300]
    elif needed == scope:
        assert response.status_code not in (401, 403), response.text[:300]
    else:
        assert response.status_code == 403, response.text[:300]
        if path.startswith("/v2"):
            assert f"'{needed}'" in response.json()["error"]
        elif path.startswith("/ui/"):
            assert f"&#39;{needed}&#39;" in response.text or f"'{needed}'" in response.text
        else:
            error = response.json()["error"]
            assert error["code"] == "forbidden" and f"scope '{needed}'" in error["message"]
            assert error["details"] == [{"scope": needed}]


def test_a_refusal_names_the_route_as_the_scopes_table_shows_it(app):
    """A 403 names the route as web/scopes.route_of shows it (the docs' /models/<key>, the audit
    trail's and the metrics' form), never the Flask rule with its converters (/models/<path:key>)."""
    converted = 0
    for rule, method, path in rule_methods(app.app):
        needed = scopes.scope_of(rule.endpoint, method)
        if needed is scopes.OPEN or path.startswith(("/ui/", "/v2")):
            continue
        lacking = "read" if needed == "predict" else "predict"
        answer = app.request(method, path, headers={"Authorization": f"Bearer {app.secrets[lacking]}"})
        message = answer.json()["error"]["message"]
        assert answer.status_code == 403 and message.endswith(f"that {method} {scopes.route_of(rule.rule)} needs")
        assert not re.search(r"<\w+:", message), message
        converted += ":" in rule.rule
    assert converted, "no route with a converter was checked (/models/<path:key> has one)"


@pytest.mark.parametrize(("endpoint", "method", "path"), ROUTES, ids=[f"{m} {p}" for _, m, p in ROUTES])
def test_the_token_is_a_key_with_every_scope(app, endpoint, method, path):
    data = {"csrf_token": app.csrf} if path.startswith("/ui/") and method == "POST" else None
    response = app.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"}, data=data)
    assert response.status_code not in (401, 403) or endpoint == "ui.login", response.text[:300]


def test_an_undeclared_route_needs_admin():
    assert scopes.scope_of("somebody.new_route", "GET") == "admin"
    assert not scopes.declared("somebody.new_route", "GET")
    assert not scopes.declared("model_pages.model_page", "DELETE")
