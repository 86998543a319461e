"""predictionservice/driftcheck.py and scheduler.run_scheduled (docs/API.md, "Retraining on drift"):
a schedule with "when": "drift" checks the window of logged predictions since its last check and
retrains only when it drifted. Run through the app's own collaborators, in process, on the
session's real Redis and MongoDB, with a queue of this module's own that no worker reads (each
job queued is cancelled after). The model is the synthetic one of tests/helpers.py (its profile
made in numpy from a seeded population); the log documents are written in the prediction log's
format (how they get there is test_flow_prediction_log's). The flow with a real scheduler, worker
and promotion gate is test_flow_schedules'."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from helpers import DRIFT_CATEGORIES, DRIFT_MODEL, EXAMPLES, XOR_JOB, InProcess, logged, population
from predictionservice import datasetloader
from predictionservice.driftcheck import DriftCheck
from predictionservice.jobqueue import Origin
from scheduler import run_scheduled

pytestmark = pytest.mark.app


@pytest.fixture(scope="module")
def client(base_params):
    """The app in process with a queue of its own (the session's worker must not take its jobs)."""
    from modelservice import modelservice

    return InProcess(modelservice({**base_params, "queue_name": f"drift-{uuid.uuid4().hex[:8]}"}))


@pytest.fixture()
def named(client, mongo_db, mongo_client):
    """A name whose version 1 (production) is the synthetic profiled model, trained (as far as
    a retrain knows) from xor.csv in a database of the test's own; scheduled on drift. Its log
    documents, jobs and entry go after the test."""
    datasetloader.load_csv(mongo_db["xor"], EXAMPLES / "xor.csv")
    services = client.app.extensions["prediction_service"]
    name, key = f"drift-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    job = {**XOR_JOB, "inputCollection": f"{mongo_db.name}.xor", "model": name}
    services.registry.add_version(name, key, DRIFT_MODEL, job)
    reply = client.request("PUT", f"/registry/{name}/schedule", json={"every_seconds": 3600, "when": "drift"})
    assert reply.status_code == 200, reply.text
    db, collection = client.params["prediction_log_collection"].split(".", 1)
    log = mongo_client[db][collection]
    check = DriftCheck(services.registry, services.monitor, services.retrainer, lag_seconds=0)
    yield name, key, log, check
    for record in client.get(f"/registry/{name}").json()["retrains"]:
        if record.get("job_id"):
            client.request("DELETE", f"/jobs/{record['job_id']}")
    log.delete_many({"model.model_key": key})
    services.registry.delete_name(name)
    services.registry.store.delete(key)


def shifted(records: list[dict], seed: int) -> list[dict]:
    """x1 moved by one standard deviation and the categories' frequencies swapped around; x2 (the
    score's one input) left alone."""
    rng = np.random.default_rng(seed)
    categories = rng.choice(list(DRIFT_CATEGORIES), len(records), p=[0.3, 0.5, 0.15, 0.04, 0.01])
    return [{**r, "x1": r["x1"] + 1.0, "c": str(c)} for r, c in zip(records, categories, strict=True)]


def log_window(log, name: str, key: str, records: list[dict]) -> None:
    """Predictions of version 1 logged now (after the last check: its until is in the past)."""
    time.sleep(0.01)
    log.insert_many(logged(name, key, 1, records, [None] * len(records), datetime.now(UTC)))


def last_check(client, name: str) -> dict:
    return client.get(f"/registry/{name}/schedule").json()["last_check"]


def test_a_drifted_window_retrains_with_its_report_and_an_undrifted_one_does_not(client, named):
    name, key, log, check = named
    log_window(log, name, key, population(300, seed=31))  # drawn like the training data
    assert run_scheduled(check, name) is None
    calm = last_check(client, name)
    assert (calm["outcome"], calm["count"], calm["drifted"], calm["version"]) == ("no drift", 300, [], 1)
    assert client.get(f"/registry/{name}").json()["retrains"] == []

    log_window(log, name, key, shifted(population(300, seed=32), seed=33))
    job_id = run_scheduled(check, name)
    assert job_id is not None
    found = last_check(client, name)
    assert found["since"] == calm["until"] and found["count"] == 300  # the window since the last check only
    assert (found["outcome"], found["job_id"], sorted(found["drifted"])) == ("retrained", job_id, ["c", "x1"])
    [record] = client.get(f"/registry/{name}").json()["retrains"]
    assert (record["trigger"], record["outcome"], record["job_id"]) == ("drift", "queued", job_id)
    assert record["drifted"] == found["drifted"]
    trigger = client.get(f"/jobs/{job_id}").json()["trigger"]  # the job keeps the report
    assert (trigger["kind"], trigger["version"], trigger["model_key"], trigger["count"]) == ("drift", 1, key, 300)
    assert (trigger["since"], trigger["until"]) == (found["since"], found["until"])
    assert trigger["features"]["x1"]["drifted"] and trigger["features"]["x1"]["p_value"] < 1e-6
    assert not trigger["features"]["x2"]["drifted"] and trigger["score_drifted"] is False

    log_window(log, name, key, shifted(population(300, seed=34), seed=35))
    assert run_scheduled(check, name) is None  # drifted again, but the retrain's job is still queued
    skipped = last_check(client, name)
    assert (skipped["outcome"], skipped["running_job"]) == ("skipped", job_id)
    assert skipped["since"] == found["until"]


def test_an_empty_window_advances_and_a_check_that_cannot_be_made_keeps_its_window(client, named):
    name, key, log, check = named
    assert run_scheduled(check, name) is None
    empty = last_check(client, name)
    assert empty["outcome"] == "no predictions" and empty["count"] == 0 and empty["until"] > empty["since"]
    assert client.request("DELETE", f"/registry/{name}/aliases/production").status_code in (200, 204)
    log_window(log, name, key, shifted(population(300, seed=36), seed=37))
    assert run_scheduled(check, name) is None
    failed = last_check(client, name)
    assert failed["outcome"] == "error" and "production" in failed["message"]
    assert failed["until"] == failed["since"] == empty["until"]  # not checked: the next check reads it again
    assert client.request("PUT", f"/registry/{name}/aliases/production", json={"version": 1}).status_code == 200
    job_id = run_scheduled(check, name)
    assert job_id is not None and last_check(client, name)["since"] == empty["until"]


def test_a_check_is_kept_only_on_the_schedule_it_was_made_for(client, named):
    name, _key, _log, check = named
    schedule = client.get(f"/registry/{name}").json()["schedule"]
    assert schedule["when"] == "drift"
    replaced = client.request("PUT", f"/registry/{name}/schedule", json={"cron": "0 3 * * *", "when": "drift"})
    assert replaced.status_code == 200
    services = client.app.extensions["prediction_service"]
    old = {**schedule, "created_at": (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    check.tick(name, old, Origin("test", "drift check"))
    assert "last_check" not in services.registry.entry(name)["schedule"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"every_seconds": 60, "when": "sometimes"}, "when"),
        ({"when": "drift"}, ""),
        ({"every_seconds": 60, "cron": "0 3 * * *", "when": "drift"}, ""),
        ({"every_seconds": 60, "when": "drift", "if": 1}, "if"),
    ],
)
def test_a_schedule_body_with_a_bad_when_is_refused_naming_it(client, named, body, field):
    name = named[0]
    reply = client.request("PUT", f"/registry/{name}/schedule", json=body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["details"][0]["field"] == field and "drift" in error["message"]
    assert client.get(f"/registry/{name}/schedule").json()["when"] == "drift"  # unchanged


def test_a_refused_retrain_keeps_the_window_for_the_next_check(client, named, mongo_db):
    name, key, log, check = named
    mongo_db.drop_collection("xor")  # the retrain's input is gone: its submission is refused
    log_window(log, name, key, shifted(population(300, seed=38), seed=39))
    assert run_scheduled(check, name) is None
    refused = last_check(client, name)
    assert refused["outcome"] == "failed" and "xor" in refused["message"]
    assert refused["until"] == refused["since"]  # checked again at the next tick, with what came since
    [record] = client.get(f"/registry/{name}").json()["retrains"]
    assert (record["trigger"], record["outcome"], sorted(record["drifted"])) == ("drift", "failed", ["c", "x1"])
