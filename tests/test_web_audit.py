"""The audit trail over HTTP (web/guard.py records, web/audit.py lists): every kind of change made
through the API today (training and scoring submitted, a model deleted through the API and through
its page, a job cancelled, a dataset written and dropped, a key made and revoked, a named model's
alias moved or removed, its policy set, the name deleted) leaves an entry
with the key's name (never its secret), the request id, the method, the route, the target and the
status, newest first; reads and predictions leave none; only an admin key reads it.

No request queues a job: the submissions carry bodies the service refuses (their attempt, and its
400, is what the trail keeps)."""

from __future__ import annotations

import re
import uuid

import pytest

from helpers import TINY_MODEL as MODEL
from helpers import InProcess
from modelservice import modelservice
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect

TOKEN = "audit-token"


@pytest.fixture()
def app(base_params, mongo_client):
    prefix = f"a{uuid.uuid4().hex[:8]}:"
    started = InProcess(modelservice({**base_params, "auth_token": TOKEN, "redis_key_prefix": prefix}))
    keys = started.app.extensions["prediction_service"].access.keys
    started.admin = keys.create("ops", ["admin", "read"])[1]
    started.trainer = keys.create("trainer", ["train", "read"])[1]
    started.store = ModelStore(connect(base_params["redis_url"], base_params["models_db"]), prefix)
    started.db = f"audit_{uuid.uuid4().hex[:8]}"
    yield started
    mongo_client.drop_database(started.db)


def as_key(secret: str, request_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {secret}"}
    return headers | ({"X-Request-ID": request_id} if request_id else {})


def latest(app) -> dict:
    response = app.get("/audit/", headers=as_key(app.admin), params={"limit": "1"})
    assert response.status_code == 200, response.text
    (entry,) = response.json()["entries"]
    return entry


CHANGES = [  # (kind, key, method, path template, body, route, status)
    ("train", "trainer", "POST", "/train/", {"name": "no-such-algorithm"}, "/train/", 400),
    ("predictall", "trainer", "POST", "/predictall/", {"modelkey": "nope"}, "/predictall/", 400),
    ("dataset write", "trainer", "PUT", "/datasets/{db}/rows", [{"x": 1}], "/datasets/<db>/<collection>", 200),
    ("job cancel", "admin", "DELETE", "/jobs/0123456789abcdef", None, "/jobs/<job_id>", 404),
    ("model delete", "admin", "DELETE", "/models/doomed", None, "/models/<key>", 204),
    ("key made", "admin", "POST", "/keys/", {"name": "new", "scopes": ["read"]}, "/keys/", 201),
    ("alias move", "admin", "PUT", "/registry/nameless/aliases/production", {"version": 1},
     "/registry/<name>/aliases/<alias>", 404),
    ("alias removal", "admin", "DELETE", "/registry/nameless/aliases/candidate", None,
     "/registry/<name>/aliases/<alias>", 404),
    ("policy", "admin", "PUT", "/registry/nameless/policy", {"min_delta": 0.01}, "/registry/<name>/policy", 404),
    ("name delete", "admin", "DELETE", "/registry/nameless", None, "/registry/<name>", 404),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "who", "method", "path", "body", "route", "status"), CHANGES, ids=[c[0] for c in CHANGES]
)
def test_each_kind_of_change_is_recorded(app, kind, who, method, path, body, route, status):
    app.store.save("doomed", MODEL)
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    secret = app.admin if who == "admin" else app.trainer
    response = app.request(method, path.format(db=app.db), json=body, headers=as_key(secret, request_id))
    assert response.status_code == status, response.text
    entry = latest(app)
    assert entry["key"] == ("ops" if who == "admin" else "trainer") and entry["key_id"]
    assert entry["request_id"] == request_id and entry["method"] == method
    assert entry["route"] == route and entry["target"] == path.format(db=app.db) and entry["status"] == status
    assert entry["time"].endswith("Z")
    assert secret not in response.text or kind == "key made"
    assert secret not in app.get("/audit/", headers=as_key(app.admin)).text


def test_a_dataset_drop_a_key_revoked_and_a_page_delete_are_recorded(app):
    assert (
        app.request("PUT", f"/datasets/{app.db}/rows", json=[{"x": 1}], headers=as_key(app.trainer)).status_code == 200
    )
    assert app.request("DELETE", f"/datasets/{app.db}/rows", headers=as_key(app.admin)).status_code == 204
    assert (latest(app)["method"], latest(app)["route"]) == ("DELETE", "/datasets/<db>/<collection>")
    made = app.post("/keys/", json={"name": "brief", "scopes": ["read"]}, headers=as_key(app.admin)).json()
    assert app.request("DELETE", f"/keys/{made['id']}", headers=as_key(app.admin)).status_code == 204
    entry = latest(app)
    assert (entry["route"], entry["target"], entry["status"]) == ("/keys/<id>", f"/keys/{made['id']}", 204)
    app.store.save("doomed", MODEL)
    page = app.get("/ui/models/doomed", headers=as_key(app.admin)).text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    deleted = app.post("/ui/models/doomed/delete", data={"csrf_token": token}, headers=as_key(app.admin))
    assert deleted.status_code in (302, 303) and app.store.load("doomed") is None
    entry = latest(app)
    assert (entry["key"], entry["route"], entry["target"]) == (
        "ops",
        "/ui/models/<key>/delete",
        "/ui/models/doomed/delete",
    )


def test_reads_predictions_and_refusals_leave_no_entry(app):
    app.store.save("kept", MODEL)
    before = app.get("/audit/", headers=as_key(app.admin)).json()["entries"]
    app.get("/models/", headers=as_key(app.trainer))
    app.post("/predict/", json={"modelkey": "kept", "record": {"x": 1}}, headers=as_key(app.admin))
    app.request("DELETE", "/models/kept", headers=as_key(app.trainer))  # 403: refused before its view
    app.request("DELETE", "/models/kept", headers=as_key("psk_wrong"))  # 401
    assert app.get("/audit/", headers=as_key(app.admin)).json()["entries"] == before
    assert app.store.load("kept") is not None


def test_newest_first_and_admin_only(app):
    for name in ("one", "two", "three"):
        app.post("/keys/", json={"name": name, "scopes": ["read"]}, headers=as_key(app.admin))
    entries = app.get("/audit/", headers=as_key(app.admin), params={"limit": "3"}).json()["entries"]
    assert [e["time"] for e in entries] == sorted((e["time"] for e in entries), reverse=True) and len(entries) == 3
    assert app.get("/audit/", headers=as_key(app.trainer)).status_code == 403
    assert app.get("/audit/", headers=as_key(app.admin), params={"limit": "0"}).status_code == 400
