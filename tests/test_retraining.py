"""predictionservice/retraining.py and POST /registry/<name>/retrain, through Flask's test client on
the session's real Redis and MongoDB: the last job document queued again (with overrides), the
skip while a job of the name is queued (409 naming it, recorded), the 4xx of bad input with
nothing recorded, and one winner among retrains racing. No worker runs behind the app: every job
queued here is cancelled (DELETE /jobs/<id> takes its message off the queue)."""

from __future__ import annotations

import threading
import uuid

import pytest

from helpers import EXAMPLES, ONE_FEATURE_MODEL, XOR_JOB, InProcess
from predictionservice import datasetloader
from predictionservice.exceptions import RetrainSkipped
from predictionservice.jobqueue import Origin

pytestmark = pytest.mark.app

MODEL = {**ONE_FEATURE_MODEL, "task": "binary", "metrics": {"auc": 0.7}}


@pytest.fixture(scope="module")
def client(base_params):
    """The app in process with a queue of its own: the session's worker (when a system test has
    started it) reads the session's queue and would take the jobs queued here."""
    from modelservice import modelservice

    return InProcess(modelservice({**base_params, "queue_name": f"retrain-{uuid.uuid4().hex[:8]}"}))


@pytest.fixture()
def named(client, mongo_db):
    """A name of this test's own, version 1 stored as training stores it, with the job document it
    was trained from (xor.csv in a database of the test's own)."""
    datasetloader.load_csv(mongo_db["xor"], EXAMPLES / "xor.csv")
    services = client.app.extensions["prediction_service"]
    name = f"xor-{uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex
    job = {**XOR_JOB, "inputCollection": f"{mongo_db.name}.xor", "model": name}
    services.registry.add_version(name, key, MODEL, job)
    queued: list[str] = []
    yield name, services, queued
    for job_id in queued:
        client.request("DELETE", f"/jobs/{job_id}")
    if name in services.registry.names():
        services.registry.delete_name(name)
    services.registry.store.delete(key)


def retrain(client, name, queued, **kw):
    reply = client.post(f"/registry/{name}/retrain", **kw)
    if reply.status_code == 202:
        queued.append(reply.json()["job_id"])
    return reply


def test_a_retrain_queues_the_last_job_document_again(client, named):
    name, _services, queued = named
    reply = retrain(client, name, queued)
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["job_id"]
    assert reply.headers["Location"] == f"/training/status/{job_id}"
    status = client.get(f"/jobs/{job_id}").json()
    assert status["status"] == "PENDING" and status["lineage"]["model"] == name
    assert status["lineage"]["input_collection"].endswith(".xor")
    [record] = client.get(f"/registry/{name}").json()["retrains"]
    assert record["trigger"] == "manual" and record["outcome"] == "queued" and record["job_id"] == job_id


def test_a_retrain_while_one_is_queued_is_skipped_and_recorded_then_runs_once_it_ended(client, named):
    name, _services, queued = named
    first = retrain(client, name, queued).json()["job_id"]
    skipped = retrain(client, name, queued)
    assert skipped.status_code == 409, skipped.text
    error = skipped.json()["error"]
    assert first in error["message"] and error["details"][0]["job_id"] == first
    records = client.get(f"/registry/{name}").json()["retrains"]
    assert [(r["outcome"], r.get("running_job")) for r in records] == [("skipped", first), ("queued", None)]
    assert client.request("DELETE", f"/jobs/{first}").status_code == 200  # it ends (FAILED, cancelled)
    again = retrain(client, name, queued)
    assert again.status_code == 202, again.text


def test_a_job_of_the_name_sent_to_train_also_blocks_a_retrain(client, named):
    name, services, queued = named
    job = services.registry.last_job(name)
    trained = client.post("/train/", json=job)
    assert trained.status_code == 202, trained.text
    queued.append(trained.json()["job_id"])
    reply = retrain(client, name, queued)
    assert reply.status_code == 409 and trained.json()["job_id"] in reply.json()["error"]["message"]


def test_overrides_replace_fields_of_the_last_job_document(client, named):
    name, services, queued = named
    reply = retrain(client, name, queued, json={"numFolds": 2, "description": "retrained"})
    assert reply.status_code == 202, reply.text
    record = services.jobs.get(reply.json()["job_id"])
    assert record["parameters"]["numFolds"] == 2 and record["parameters"]["description"] == "retrained"
    assert client.get(f"/registry/{name}").json()["retrains"][0]["overrides"] == ["description", "numFolds"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"bogus": 1}, "bogus"), ({"numFolds": "two"}, "numFolds"), ({"model": "another"}, "model"), ([1, 2], "object")],
)
def test_bad_overrides_are_400_naming_the_field_and_nothing_is_recorded(client, named, body, field):
    name, _services, queued = named
    before = client.get(f"/registry/{name}").json()
    reply = retrain(client, name, queued, json=body)
    assert reply.status_code == 400, reply.text
    assert field in reply.json()["error"]["message"]
    assert client.get(f"/registry/{name}").json() == before and queued == []


def test_an_unknown_name_is_404_naming_those_there_are(client, named):
    name, _services, queued = named
    reply = retrain(client, "no-such-name", queued)
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert "no-such-name" in error["message"] and name in error["details"][0]["names"]


def test_a_name_without_a_job_document_is_409(client, named):
    _, services, queued = named
    bare = f"bare-{uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex
    services.registry.add_version(bare, key, MODEL)  # stored without parameters or a job document
    try:
        reply = retrain(client, bare, queued)
        assert reply.status_code == 409 and "POST /train/" in reply.json()["error"]["message"]
    finally:
        services.registry.delete_name(bare)
        services.registry.store.delete(key)


def test_of_retrains_racing_one_is_queued_the_others_skipped(client, named):
    name, services, queued = named
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def one() -> None:
        start.wait()
        try:
            queued.append(services.retrainer.retrain(name, None, Origin("test", None)))
            outcomes.append("queued")
        except RetrainSkipped:
            outcomes.append("skipped")

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["queued"] + ["skipped"] * 5
    records = client.get(f"/registry/{name}").json()["retrains"]
    assert sorted(r["outcome"] for r in records) == ["queued"] + ["skipped"] * 5
