"""predictionservice/alloweddbs.py, the databases the service is given: by default ``datasets`` and
those it created through its own API. A database another application created on the same MongoDB
server cannot be listed, read, exported, trained on, scored or written, through any route or
page (403 naming the setting datasets_allowed_dbs), until the setting names it; a PUT to a new
database still works, and that database is the service's from then on, on every replica.

The app runs in process under a Redis prefix of its own; no request queues a job (each is refused
for its database, or carries a body the service refuses)."""

from __future__ import annotations

import re
import uuid

import pytest

from helpers import JOB, InProcess
from helpers import TINY_MODEL as MODEL
from modelservice import modelservice
from predictionservice.alloweddbs import AllowedDatabases
from predictionservice.exceptions import Forbidden
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect


def test_named_written_and_every(redis_db):
    given = AllowedDatabases(redis_db, "p:", ["datasets"])
    assert given.allows("datasets") and not given.allows("crm")
    with pytest.raises(Forbidden, match="datasets_allowed_dbs"):
        given.check("crm")
    with pytest.raises(Forbidden):
        given.check_write("crm", lambda db: True)  # someone else's
    given.check_write("mine", lambda db: False)  # new: the service's from now on
    assert AllowedDatabases(redis_db, "p:", []).allows("mine")  # another replica knows it too
    assert given.visible(["crm", "datasets", "mine"]) == ["datasets", "mine"]
    assert AllowedDatabases(redis_db, "p:", ["*"]).visible(["crm"]) == ["crm"]


@pytest.fixture()
def setup(base_params, mongo_client):
    prefix, foreign, mine = f"d{uuid.uuid4().hex[:8]}:", f"crm_{uuid.uuid4().hex[:8]}", f"mine_{uuid.uuid4().hex[:8]}"
    params = {**base_params, "datasets_allowed_dbs": ["datasets"], "redis_key_prefix": prefix}
    mongo_client[foreign]["users"].insert_many([{"x": 1.0, "y": "yes", "password_hash": "secret"} for _ in range(3)])
    ModelStore(connect(base_params["redis_url"], base_params["models_db"]), prefix).save("m", MODEL)
    yield InProcess(modelservice(params)), params, foreign, mine
    for db in (foreign, mine):
        mongo_client.drop_database(db)


def refused(response, db: str) -> None:
    assert response.status_code == 403, response.text[:300]
    if response.headers["Content-Type"].startswith("application/json"):
        error = response.json()["error"]
        assert error["code"] == "forbidden" and "datasets_allowed_dbs" in error["message"] and db in error["message"]
    else:
        assert "datasets_allowed_dbs" in response.text


def test_a_foreign_database_is_invisible_through_every_route(setup, mongo_client):
    app, _, foreign, _ = setup
    listed = app.get("/datasets/").json()["datasets"]
    assert foreign not in {d["db"] for d in listed}
    for path in (f"/datasets/{foreign}/users", f"/datasets/{foreign}/users/schema?label=y",
                 f"/datasets/{foreign}/users/export?format=jsonl", f"/datasets/{foreign}/nothing"):  # fmt: skip
        refused(app.get(path), foreign)
    refused(app.request("PUT", f"/datasets/{foreign}/users", json=[{"x": 2}]), foreign)
    refused(app.request("PUT", f"/datasets/{foreign}/new", json=[{"x": 2}]), foreign)
    refused(app.request("DELETE", f"/datasets/{foreign}/users"), foreign)
    refused(app.post("/train/", json={**JOB, "inputCollection": f"{foreign}.users"}), foreign)
    scoring = {"modelkey": "m", "inputCollection": f"{foreign}.users", "outputCollection": "datasets.out"}
    refused(app.post("/predictall/", json=scoring), foreign)
    into = {"modelkey": "m", "inputCollection": "datasets.in", "outputCollection": f"{foreign}.stolen"}
    refused(app.post("/predictall/", json=into), foreign)
    assert foreign not in app.get("/ui/datasets").text
    refused(app.get(f"/ui/datasets/{foreign}/users"), foreign)
    assert sorted(mongo_client[foreign].list_collection_names()) == ["users"]
    assert mongo_client[foreign]["users"].count_documents({}) == 3
    assert app.get("/jobs/").json()["jobs"] == []


def test_a_new_database_written_through_the_api_is_the_service_s(setup):
    app, params, _, mine = setup
    assert app.request("PUT", f"/datasets/{mine}/rows", json=[{"x": 1}, {"x": 2}]).status_code == 200
    assert f"{mine}.rows" in {d["dataset"] for d in app.get("/datasets/").json()["datasets"]}
    other = InProcess(modelservice(params))  # another replica knows it too
    assert other.get(f"/datasets/{mine}/rows").json()["count"] == 2
    assert other.request("PUT", f"/datasets/{mine}/more", json=[{"x": 3}]).status_code == 200


def test_the_setting_gives_a_database(setup):
    _, params, foreign, _ = setup
    given = InProcess(modelservice({**params, "datasets_allowed_dbs": ["datasets", foreign]}))
    assert given.get(f"/datasets/{foreign}/users").json()["count"] == 3
    assert foreign in {d["db"] for d in given.get("/datasets/").json()["datasets"]}
    assert re.search(foreign, given.get("/ui/datasets").text)
