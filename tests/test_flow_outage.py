"""A dependency that stops answering: every route that needs it is 503 with the error shape (never
a 500, never a stale model), /health names what is down, what does not need it keeps working, and
the service recovers by itself when it is back.

Each test runs the app in process (no worker) on servers of its own, so stopping them touches no
other test: a persistent redis-server restarted on the same port and data, a MongoDB server stopped.
"""

from __future__ import annotations

import os
import uuid

import pytest

from helpers import ONE_FEATURE_MODEL, InProcess
from localservers import embedded
from modelservice import modelservice
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect

MODEL_KEY = f"outage-{uuid.uuid4().hex[:8]}"
MODEL = ONE_FEATURE_MODEL
PREDICT = {"modelkey": MODEL_KEY, "record": {"x": 1.0}}


def assert_unavailable(response, *, naming: str) -> dict:
    assert response.status_code == 503, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == "service_unavailable"
    assert naming.lower() in body["error"]["message"].lower()
    assert "Traceback" not in response.text
    return body


def test_redis_down_is_503_everywhere_it_is_needed_and_the_service_recovers(tmp_path_factory, base_params):
    port, data = embedded.free_port(), tmp_path_factory.mktemp("redis")
    redis_server = embedded.start_redis(port, data, persistent=True)
    ModelStore(connect(redis_server.url, base_params["models_db"])).save(MODEL_KEY, MODEL)
    params = {**base_params, "redis_url": redis_server.url, "redis_timeout": 1.0}
    try:
        service = InProcess(modelservice(params))
        served = service.post("/predict/", json=PREDICT)
        assert served.status_code == 200, served.text  # now cached in the web process
        redis_server.stop()

        health = service.get("/health")
        body = assert_unavailable(health, naming="redis")
        assert body["status"] == "unavailable: redis" and body["redis"].startswith("down")
        assert body["mongo"] == "ok" and body["workers"] == 0 and body["error"]["details"] == ["redis"]
        # The cached model is not served blind: its freshness cannot be checked.
        assert_unavailable(service.post("/predict/", json=PREDICT), naming="redis")
        assert_unavailable(service.get("/models/"), naming="redis")
        assert_unavailable(service.get(f"/models/{MODEL_KEY}"), naming="redis")
        assert_unavailable(service.get("/jobs/" + "0" * 32), naming="redis")
        assert_unavailable(service.request("DELETE", f"/models/{MODEL_KEY}"), naming="redis")

        redis_server = embedded.start_redis(port, data, persistent=True)
        service.wait_healthy(timeout=30)
        again = service.post("/predict/", json=PREDICT)
        assert again.status_code == 200 and again.json() == served.json()
    finally:
        redis_server.stop()


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="needs a MongoDB server of its own to stop")
def test_mongodb_down_is_503_for_data_routes_while_online_prediction_goes_on(tmp_path_factory, base_params, redis_url):
    mongo_server = embedded.start_mongo(embedded.free_port(), tmp_path_factory.mktemp("mongo"), use_mongod=False)
    models = ModelStore(connect(redis_url, base_params["models_db"]))
    models.save(MODEL_KEY, MODEL)
    params = {**base_params, "mongodb_uri": mongo_server.url, "mongodb_timeout_ms": 1000}
    try:
        service = InProcess(modelservice(params))
        loaded = service.request(
            "PUT", "/datasets/outage/rows", data=b"x,y\n1,yes\n0,no\n", headers={"Content-Type": "text/csv"}
        )
        assert loaded.status_code == 200, loaded.text
        mongo_server.stop()

        body = assert_unavailable(service.get("/health"), naming="mongo")
        assert body["status"] == "unavailable: mongo" and body["redis"] == "ok" and body["mongo"].startswith("down")
        assert_unavailable(service.get("/datasets/outage/rows"), naming="mongodb")
        assert_unavailable(service.get("/datasets/outage/rows/schema", params={"label": "y"}), naming="mongodb")
        assert_unavailable(
            service.request("PUT", "/datasets/outage/rows", data=b"x,y\n", headers={"Content-Type": "text/csv"}),
            naming="mongodb",
        )
        assert_unavailable(service.request("DELETE", "/datasets/outage/rows"), naming="mongodb")
        job = {
            "name": "LogisticRegressionWrapper",
            "inputCollection": "outage.rows",
            "schema": MODEL["schema"],
        }
        assert_unavailable(service.post("/train/", json=job), naming="mongodb")
        # Online prediction needs Redis only.
        assert service.post("/predict/", json=PREDICT).status_code == 200
    finally:
        mongo_server.stop()
        models.delete(MODEL_KEY)
