"""web/jobs.py in process: the list of recent jobs, a queued job's place in its queue, and a job
document checked against a sample of its collection before it is queued (400, not 202 then
FAILED). Nothing here reaches a worker: the queue of the app under test has no consumer."""

from __future__ import annotations

import pytest

from helpers import JOB
from predictionservice.jobstore import FAILED, PENDING


def test_recent_jobs_newest_first_with_filters_and_a_bound(unconsumed):
    jobs = unconsumed.app.extensions["prediction_service"].jobs
    for i in range(4):
        jobs.create(f"j{i}", "training" if i != 2 else "predictall", {"name": "LogisticRegressionWrapper",
                    "inputCollection": "datasets.bank", "description": "bank", "tags": ["a"]})  # fmt: skip
    jobs.update("j1", FAILED, "no")
    listed = unconsumed.get("/jobs/").json()["jobs"]
    assert [j["job_id"] for j in listed] == ["j3", "j2", "j1", "j0"]
    assert listed[0]["lineage"] == {"algorithm": "LogisticRegressionWrapper", "input_collection": "datasets.bank",
                                    "description": "bank", "tags": ["a"]}  # fmt: skip
    assert [j["job_id"] for j in unconsumed.get("/jobs/?kind=predictall").json()["jobs"]] == ["j2"]
    assert [j["job_id"] for j in unconsumed.get("/jobs?status=FAILED").json()["jobs"]] == ["j1"]
    assert [j["job_id"] for j in unconsumed.get("/jobs/?status=pending&limit=2").json()["jobs"]] == ["j3", "j2"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("kind=train", "'kind' must be one of training, predictall, comparison, not 'train'"),
        ("status=DONE", "'status' must be one of PENDING, STARTED, SUBMITTED, COMPLETED, FAILED, not 'DONE'"),
        ("limit=0", "'limit' must be a whole number from 1 to 500, not '0'"),
        ("limit=501", "'limit' must be a whole number from 1 to 500"),
        ("limit=ten", "'limit' must be a whole number from 1 to 500, not 'ten'"),
    ],
)
def test_a_bad_list_filter_is_400_naming_what_is_allowed(client, query, message):
    answer = client.get(f"/jobs/?{query}")
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith(message)


def test_a_queued_job_says_where_it_stands_in_the_queue(unconsumed):
    ids = []
    for _ in range(3):
        answer = unconsumed.post("/train/", json={**JOB, "inputCollection": "datasets.bank"})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["job_id"])
    first, _, last = (unconsumed.get(f"/jobs/{job_id}").json() for job_id in ids)
    assert first["status"] == last["status"] == PENDING
    assert first["message"] == "waiting in queue 'nobody': position 1 of 3 (next to start)"
    assert last["message"] == "waiting in queue 'nobody': position 3 of 3 (2 jobs ahead of it)"
    services = unconsumed.app.extensions["prediction_service"]
    services.redis.delete(services.queue_key)  # as a worker takes them
    assert unconsumed.get(f"/training/status/{ids[0]}").json()["message"] == (
        f"job {ids[0]} was taken by a worker and is about to start"
    )


def bank_job(**schema_changes):
    return {**JOB, "inputCollection": "datasets.bank", "schema": {**JOB["schema"], **schema_changes}}


FEATURES = JOB["schema"]["features"]


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (
            bank_job(features=[{"key": "balanse"}, *FEATURES[1:]]),
            "feature field 'balanse' (did you mean 'balance'?) not found in datasets.bank",
        ),
        (
            bank_job(label={"key": "Y", "values": {"no": 0, "yes": 1}}),
            "label field 'Y' (did you mean 'y'?) not found in datasets.bank",
        ),
        (
            bank_job(label={"key": "y", "values": {"0": 0, "1": 1}}),
            "label 'y' in datasets.bank holds 'no', 'yes', none of schema.label.values ('0', '1')",
        ),
        (
            bank_job(label={"key": "y"}),
            "LogisticRegressionWrapper does binary classification or multi-class classification; "
            "schema.label 'y' is a numeric label",
        ),
        (
            bank_job(features=[{"key": "job"}, *FEATURES[2:]]),
            "feature 'job' is numeric in the schema but datasets.bank holds 'management', 'technician', "
            "'entrepreneur', ...; give the feature 'values' to make it categorical",
        ),
        (
            bank_job(features=[{"key": "age"}, {"key": "marital", "values": {"Married": 0, "Single": 1}}]),
            "feature 'marital' in datasets.bank holds 'married', 'single', 'divorced', none of its schema "
            "'values' ('Married', 'Single')",
        ),
        ({**JOB, "inputCollection": "bank"}, "'inputCollection': 'bank' has no database: expected 'db.collection'"),
        ({k: v for k, v in JOB.items() if k != "name"}, "job document needs the field 'name' (required: name, "),
    ],
)
def test_a_job_that_cannot_succeed_is_refused_at_submission(client, bank_collection, job, message):
    answer = client.post("/train/", json=job)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith(message), answer.json()["error"]["message"]


def test_numbers_with_a_decimal_comma_are_diagnosed(client, mongo_db):
    mongo_db.eu.insert_many([{"x": f"{i},5", "y": "yes" if i % 2 else "no"} for i in range(6)])
    job = {**JOB, "inputCollection": f"{mongo_db.name}.eu", "schema": {"label": JOB["schema"]["label"],
           "features": [{"key": "x"}]}}  # fmt: skip
    answer = client.post("/train/", json=job)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        f"feature 'x' is numeric in the schema but {mongo_db.name}.eu holds '0,5', '1,5', '2,5', ...: numbers with "
        "a decimal comma; upload the CSV delimited by ';', which reads '1,5' as 1.5"
    )


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        ("/train/", "inputCollection", lambda uri: {**JOB, "inputCollection": f"{uri}datasets.bank?replicaSet=r7"}),
        ("/train/", "outputCollection", lambda uri: {**JOB, "outputCollection": f"{uri}t.out?replicaSet=r7"}),
        (
            "/predictall/",
            "inputCollection",
            lambda uri: {"modelkey": "m", "inputCollection": f"{uri}d.in?replicaSet=r7", "outputCollection": "d.o"},
        ),
    ],
)
def test_a_replica_set_the_server_is_not_in_is_400_naming_the_option(client, bank_collection, path, field, body):
    """Issue 25, 3.7: an allowed option that cannot work on the server (replicaSet=r7 on a
    server in no replica set) held the request through pymongo's whole selection timeout and was
    answered 503 'MongoDB is unavailable', an outage for a client's slip."""
    uri = client.params["mongodb_uri"].split("?")[0].rstrip("/") + "/"
    answer = client.post(path, json=body(uri))
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert message.startswith(f"'{field}': the URI option replicaSet='r7' cannot work"), message
    assert "is not in a replica set" in message
