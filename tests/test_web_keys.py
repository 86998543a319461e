"""web/keys.py, API keys over HTTP: an admin key makes keys (the secret answered once), lists them
without secrets and revokes them; a revoked key is refused at once by the replica that revoked it
and, through the change channel, by another replica (two apps from the factory on one Redis) whose
cache held it; bad input is 400, an unknown id 404."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from helpers import JOB, InProcess
from modelservice import modelservice

TOKEN = "keys-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture()
def params(base_params):
    return {
        **base_params,
        "auth_token": TOKEN,
        "redis_key_prefix": f"k{uuid.uuid4().hex[:8]}:",
        "model_watch_ping": 0.05,
    }


@pytest.fixture()
def app(params):
    return InProcess(modelservice(params))


def test_create_list_revoke(app):
    made = app.post("/keys/", json={"name": "scorer", "scopes": ["predict", "read"]}, headers=ADMIN)
    assert made.status_code == 201, made.text
    body = made.json()
    assert set(body) == {"id", "name", "scopes", "key", "created_at"} and body["scopes"] == ["predict", "read"]
    assert app.get("/models/", headers=bearer(body["key"])).status_code == 200
    listed = app.get("/keys/", headers=ADMIN)
    assert listed.status_code == 200 and body["key"] not in listed.text
    (key,) = listed.json()["keys"]
    assert set(key) == {"id", "name", "scopes", "created_at", "last_used_at"} and key["last_used_at"]
    assert app.request("DELETE", f"/keys/{body['id']}", headers=ADMIN).status_code == 204
    assert app.get("/models/", headers=bearer(body["key"])).status_code == 401
    assert app.get("/keys/", headers=ADMIN).json() == {"keys": []}


@pytest.mark.parametrize(
    "body",
    [{"name": "", "scopes": ["read"]}, {"name": "a", "scopes": ["superuser"]}, {"name": "a", "scopes": []},
     {"scopes": ["read"]}, {"name": "a"}, ["read"], {"name": "a", "scopes": "read"}],
)  # fmt: skip
def test_bad_input_is_400(app, body):
    response = app.post("/keys/", json=body, headers=ADMIN)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request", response.text
    assert app.get("/keys/", headers=ADMIN).json() == {"keys": []}


def test_unknown_key_id_is_404(app):
    response = app.request("DELETE", "/keys/0123456789abcdef", headers=ADMIN)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_only_admin_keys_manage_keys(app):
    reader = app.post("/keys/", json={"name": "r", "scopes": ["read", "train", "predict"]}, headers=ADMIN).json()
    for method, path in (("POST", "/keys/"), ("GET", "/keys/"), ("DELETE", f"/keys/{reader['id']}")):
        refused = app.request(method, path, json={"name": "x", "scopes": ["admin"]}, headers=bearer(reader["key"]))
        assert refused.status_code == 403 and "'admin'" in refused.json()["error"]["message"]
    admin = app.post("/keys/", json={"name": "ops", "scopes": ["admin"]}, headers=ADMIN).json()
    assert app.get("/keys/", headers=bearer(admin["key"])).status_code == 200


def test_without_a_token_the_service_makes_no_keys(base_params):
    app = InProcess(modelservice({**base_params, "redis_key_prefix": f"k{uuid.uuid4().hex[:8]}:"}))
    response = app.post("/keys/", json={"name": "a", "scopes": ["read"]})
    assert response.status_code == 409 and "auth_token" in response.json()["error"]["message"]


def test_revocation_reaches_the_other_replica(params):
    first, second = InProcess(modelservice(params)), InProcess(modelservice(params))
    made = first.post("/keys/", json={"name": "app", "scopes": ["read"]}, headers=ADMIN).json()
    keys = second.app.extensions["prediction_service"].access
    deadline = time.monotonic() + 10
    while not (keys.watch.healthy() and keys.keys._cache):  # the second replica trusts its cached copy
        assert second.get("/models/", headers=bearer(made["key"])).status_code == 200
        assert time.monotonic() < deadline, "the second replica never subscribed"
        time.sleep(0.01)
    assert first.request("DELETE", f"/keys/{made['id']}", headers=ADMIN).status_code == 204
    revoked = time.monotonic()
    while second.get("/models/", headers=bearer(made["key"])).status_code != 401:
        assert time.monotonic() - revoked < 0.1, "the other replica still takes the revoked key after 100 ms"
        time.sleep(0.002)
    assert first.get("/models/", headers=bearer(made["key"])).status_code == 401


def test_no_secret_in_metrics_or_the_audit_trail(app):
    made = app.post("/keys/", json={"name": "scorer", "scopes": ["read"]}, headers=ADMIN).json()
    app.get("/models/", headers=bearer(made["key"]))
    app.get("/models/", headers=bearer(made["key"] + "wrong"))
    for path in ("/metrics", "/audit/", "/keys/"):
        text = app.get(path, headers=ADMIN).text
        assert made["key"] not in text and TOKEN not in text, path


def test_keys_given_by_configuration_turn_the_keys_on(base_params):
    secret = "r" * 40
    params = {**base_params, "api_keys": [f"dash:read:{secret}"], "redis_key_prefix": f"k{uuid.uuid4().hex[:8]}:"}
    app = InProcess(modelservice(params))
    assert app.get("/models/").status_code == 401
    assert app.get("/models/", headers=bearer(secret)).status_code == 200
    refused = app.get("/keys/", headers=bearer(secret))
    assert refused.status_code == 403 and "'admin'" in refused.json()["error"]["message"]


def test_keys_given_by_configuration_are_listed_and_revoked_only_there(base_params):
    params = {**base_params, "api_keys": [f"ops:admin+read:{'a' * 40}", f"dash:read:{'r' * 40}"],
              "redis_key_prefix": f"k{uuid.uuid4().hex[:8]}:"}  # fmt: skip
    app = InProcess(modelservice(params))
    admin = bearer("a" * 40)
    listed = app.get("/keys/", headers=admin).json()["keys"]
    assert [(k["id"], k["name"], k["scopes"], k["source"]) for k in listed] == [
        ("config:dash", "dash", ["read"], "setting api_keys"),
        ("config:ops", "ops", ["read", "admin"], "setting api_keys"),
    ]
    assert "r" * 40 not in app.get("/keys/", headers=admin).text
    refused = app.request("DELETE", "/keys/config:dash", headers=admin)
    assert refused.status_code == 409 and "api_keys" in refused.json()["error"]["message"]
    assert app.get("/models/", headers=bearer("r" * 40)).status_code == 200


def test_each_key_holds_its_own_share_of_the_queue(base_params, bank_collection):
    """The queue's per-client share (max_queued_jobs_per_client) is a key's, wherever it is sent
    from; a job's cancel names the key. A queue of its own: no worker reads it."""
    url = base_params["redis_url"].rsplit("/", 1)[0] + "/5"
    app = InProcess(
        modelservice({**base_params, "redis_url": url, "auth_token": TOKEN, "max_queued_jobs_per_client": 1})
    )
    queue = redis.Redis.from_url(url)
    queue.flushdb()
    try:
        keys = app.app.extensions["prediction_service"].access.keys
        first, second = keys.create("team-a", ["train", "admin"])[1], keys.create("team-b", ["train"])[1]
        job = {**JOB, "inputCollection": "datasets.bank"}
        queued = app.post("/train/", json=job, headers=bearer(first))
        assert queued.status_code == 202, queued.text
        refused = app.post("/train/", json=job, headers=bearer(first))
        assert refused.status_code == 429 and "team-a" in refused.json()["error"]["message"]
        assert app.post("/train/", json=job, headers=bearer(second)).status_code == 202  # the same address
        cancelled = app.request("DELETE", f"/jobs/{queued.json()['job_id']}", headers=bearer(first))
        assert "with the key 'team-a'" in cancelled.json()["cancelled"]["by"]
    finally:
        queue.flushdb()
        queue.close()
