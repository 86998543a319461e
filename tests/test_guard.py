"""web/guard.py, the bearer token: an app built with an auth_token answers every route but
/health only with 'Authorization: Bearer <token>'. Without it, with a wrong token or another
scheme the answer is 401 with the error shape and a WWW-Authenticate: Bearer challenge, and
nothing happens; with it the route answers as usual.

The app runs in process (the guard is the app's, not the HTTP server's) on the session's Redis and
MongoDB: no request here may queue a job (the session's worker would run it), so job submissions
carry bodies the service refuses.
"""

from __future__ import annotations

import uuid

import pytest

from helpers import JOB, TINY_MODEL, InProcess, Reply
from modelservice import modelservice
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect

TOKEN = "s3cret-token"
WRONG = {
    "no-header": None,
    "wrong-token": f"Bearer {TOKEN}x",
    "token-prefix": f"Bearer {TOKEN[:-1]}",
    "other-case-token": f"Bearer {TOKEN.upper()}",
    "empty-bearer": "Bearer ",
    "basic-scheme": "Basic czNjcmV0LXRva2VuOg==",
    "token-without-scheme": TOKEN,
    "token-scheme": f"Token {TOKEN}",
    "two-tokens": f"Bearer {TOKEN}, Bearer {TOKEN}",
}
DB = f"auth_{uuid.uuid4().hex[:8]}"
MODEL_KEY = f"auth-test-{uuid.uuid4().hex[:8]}"
JSON_TYPE = {"Content-Type": "application/json"}

# (id, method, path, body, headers, the status it answers with the right token)
V2_X = {"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.5]}
ROUTES = [
    ("train", "POST", "/train/", {**JOB, "name": "os"}, JSON_TYPE, 400),
    ("train-no-slash", "POST", "/train", {}, JSON_TYPE, 400),
    ("training-status", "GET", "/training/status/0123456789abcdef", None, {}, 404),
    ("predictall", "POST", "/predictall/", {"modelkey": "nope"}, JSON_TYPE, 400),
    ("predictall-status", "GET", "/predictall/status/0123456789abcdef", None, {}, 404),
    ("jobs", "GET", "/jobs/0123456789abcdef", None, {}, 404),
    ("predict", "POST", "/predict/", {"modelkey": "no-such-model", "record": {"age": 1}}, JSON_TYPE, 404),
    ("models", "GET", "/models/", None, {}, 200),
    ("model", "GET", f"/models/{MODEL_KEY}", None, {}, 200),
    ("model-unknown", "GET", "/models/no-such-model", None, {}, 404),
    ("model-delete-unknown", "DELETE", "/models/no-such-model", None, {}, 404),
    ("dataset-get", "GET", f"/datasets/{DB}/rows", None, {}, 200),
    ("dataset-schema", "GET", f"/datasets/{DB}/rows/schema?label=y", None, {}, 200),
    ("dataset-get-unknown", "GET", f"/datasets/{DB}/nothing", None, {}, 404),
    ("openapi", "GET", "/openapi.json", None, {}, 200),
    ("head-models", "HEAD", "/models/", None, {}, 200),
    ("unknown-route", "GET", "/no-such-route", None, {}, 404),
    ("wrong-method", "DELETE", "/predict/", None, {}, 405),
    ("metrics", "GET", "/metrics", None, {}, 200),
    ("v2-live", "GET", "/v2/health/live", None, {}, 200),
    ("v2-server", "GET", "/v2", None, {}, 200),
    ("v2-model", "GET", f"/v2/models/{MODEL_KEY}", None, {}, 200),
    ("v2-model-ready", "GET", f"/v2/models/{MODEL_KEY}/ready", None, {}, 200),
    ("v2-infer", "POST", f"/v2/models/{MODEL_KEY}/infer", {"inputs": [V2_X]}, JSON_TYPE, 200),
]
ROWS = [{"x": 1.5, "y": "yes"}, {"x": 0.5, "y": "no"}]


@pytest.fixture(scope="module")
def secured(base_params, mongo_client):
    started = InProcess(modelservice({**base_params, "auth_token": TOKEN}))
    models = ModelStore(connect(base_params["redis_url"], base_params["models_db"]))
    models.save(MODEL_KEY, TINY_MODEL)
    mongo_client[DB]["rows"].insert_many([dict(r) for r in ROWS])
    yield started
    models.delete(MODEL_KEY)
    mongo_client.drop_database(DB)


def call(app, method, path, body=None, headers=None, authorization=None) -> Reply:
    headers = dict(headers or {})
    if authorization is not None:
        headers["Authorization"] = authorization
    return app.request(method, path, json=body, headers=headers)


def assert_challenged(response: Reply, method: str, path: str = "") -> None:
    assert response.status_code == 401, response.text[:300]
    assert response.headers["WWW-Authenticate"].startswith("Bearer"), response.headers
    assert response.headers["Content-Type"].startswith("application/json")
    if path.startswith("/v2"):  # the Open Inference Protocol's error shape
        assert response.json()["error"].startswith("missing or wrong bearer token")
    elif method != "HEAD":
        error = response.json()["error"]
        assert error["code"] == "unauthorized" and error["message"] and error["details"] == []


@pytest.mark.parametrize("wrong", list(WRONG), ids=list(WRONG))
@pytest.mark.parametrize(("name", "method", "path", "body", "headers", "_"), ROUTES, ids=[r[0] for r in ROUTES])
def test_every_route_but_health_is_401_without_the_right_token(secured, wrong, name, method, path, body, headers, _):
    response = call(secured, method, path, body, headers, WRONG[wrong])
    assert_challenged(response, method, path)


@pytest.mark.parametrize(("name", "method", "path", "body", "headers", "status"), ROUTES, ids=[r[0] for r in ROUTES])
def test_with_the_token_every_route_answers_as_usual(secured, name, method, path, body, headers, status):
    response = call(secured, method, path, body, headers, f"Bearer {TOKEN}")
    assert response.status_code == status, response.text[:300]
    assert "WWW-Authenticate" not in response.headers
    if status >= 400 and method != "HEAD":
        assert response.json()["error"]["code"] != "unauthorized"


@pytest.mark.parametrize("authorization", ["bearer s3cret-token", f"Bearer   {TOKEN}  ", f"BEARER {TOKEN}"])
def test_the_scheme_is_case_insensitive_and_spaces_are_tolerated(secured, authorization):
    assert call(secured, "GET", "/models/", authorization=authorization).status_code == 200


def test_refused_requests_change_nothing(secured, mongo_client):
    models = ModelStore(connect(secured.params["redis_url"], secured.params["models_db"]))
    for wrong in WRONG.values():
        put = call(secured, "PUT", f"/datasets/{DB}/intruder", [{"a": 1}], JSON_TYPE, wrong)
        delete = call(secured, "DELETE", f"/datasets/{DB}/rows", None, {}, wrong)
        forget = call(secured, "DELETE", f"/models/{MODEL_KEY}", None, {}, wrong)
        for response in (put, delete, forget):
            assert_challenged(response, response.request.method)
    assert sorted(mongo_client[DB].list_collection_names()) == ["rows"]
    assert mongo_client[DB]["rows"].count_documents({}) == len(ROWS)
    assert models.load(MODEL_KEY) is not None
    # The token is checked before the body limit: an unauthenticated client learns nothing more.
    huge = secured.request(
        "POST",
        "/predict/",
        data=b"{}",
        headers=JSON_TYPE,
        environ_overrides={"CONTENT_LENGTH": str(secured.params["max_body_bytes"] + 1)},
    )
    assert_challenged(huge, "POST")


def test_with_the_token_writes_go_through(secured, mongo_client):
    bearer = f"Bearer {TOKEN}"
    put = call(secured, "PUT", f"/datasets/{DB}/written", [{"a": 1}, {"a": 2}], JSON_TYPE, bearer)
    assert put.status_code == 200 and put.json()["inserted"] == 2
    assert call(secured, "DELETE", f"/datasets/{DB}/written", authorization=bearer).status_code == 204
    key = f"{MODEL_KEY}-copy"
    models = ModelStore(connect(secured.params["redis_url"], secured.params["models_db"]))
    models.save(key, models.load(MODEL_KEY)[0])
    assert call(secured, "DELETE", f"/models/{key}", authorization=bearer).status_code == 204
    assert models.load(key) is None
    predicted = call(secured, "POST", "/predict/", {"modelkey": MODEL_KEY, "record": {"x": 2.0}}, JSON_TYPE, bearer)
    assert predicted.status_code == 200 and predicted.json()["label"] == "yes"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic czNjcmV0LXRva2VuOg=="])
def test_health_needs_no_token(secured, authorization):
    for method in ("GET", "HEAD"):
        response = call(secured, method, "/health", authorization=authorization)
        assert response.status_code == 200 and "WWW-Authenticate" not in response.headers
    assert call(secured, "GET", "/health", authorization=authorization).json()["status"] == "ok"


def test_openapi_declares_the_bearer_scheme(secured):
    document = call(secured, "GET", "/openapi.json", authorization=f"Bearer {TOKEN}").json()
    schemes = document["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= next(iter(schemes.values())).items()
    name = next(iter(schemes))
    assert document["security"] == [{name: []}]
    assert document["paths"]["/health"]["get"]["security"] == []
    assert "401" in document["paths"]["/predict/"]["post"]["responses"]


def test_health_says_only_up_or_down_without_a_read_key(secured):
    keys = secured.app.extensions["prediction_service"].access.keys
    reader, scorer = keys.create("health-reader", ["read"]), keys.create("health-scorer", ["predict"])
    try:
        for authorization in (None, "Bearer wrong", f"Bearer {scorer[1]}"):
            assert call(secured, "GET", "/health", authorization=authorization).json() == {"status": "ok"}
        for authorization in (f"Bearer {TOKEN}", f"Bearer {reader[1]}"):
            report = call(secured, "GET", "/health", authorization=authorization).json()
            assert report["status"] == "ok" and report["redis"] == "ok" and "worker_names" in report
    finally:
        keys.revoke(reader[0]["id"])
        keys.revoke(scorer[0]["id"])
