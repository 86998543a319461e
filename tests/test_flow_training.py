"""The training flow end to end: a job submitted over HTTP, trained by a real worker with Spark,
its status followed, its model stored and served; what submission refuses. Real web server, Redis,
MongoDB and Spark."""

import json
import re
import time

import pytest
import redis
import requests

from helpers import JOB, Service
from localservers import embedded
from predictionservice.jobstore import STATES

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")

ORDER = {state: i for i, state in enumerate(STATES)}


def test_training_end_to_end(service, bank_training):
    final, seen = bank_training
    assert final["status"] == "COMPLETED", final
    statuses = [s["status"] for s in seen]
    assert statuses == sorted(statuses, key=ORDER.get), statuses  # never moves backwards
    assert statuses[-1] == "COMPLETED" and "SUBMITTED" in statuses
    assert "FAILURE" not in statuses and "SUCCESS" not in statuses
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0
    messages = [s["message"] for s in seen if s["status"] == "SUBMITTED"]
    assert any(m.startswith("reading e2e.bank") for m in messages)
    assert any(m.startswith("fitting fold 1 of 3") for m in messages)
    assert any("fold 3 of 3" in m for m in messages), messages
    assert any(m.startswith("evaluating") for m in messages) and any(m.startswith("saving") for m in messages)
    assert final["model_key"] == final["job_id"]
    assert final["metrics"]["auc"] >= 0.90
    assert 0 < final["metrics"]["area_under_pr"] < 1 and 0.85 < final["metrics"]["accuracy"] < 1
    assert final["invalid_rows"] == 2  # the two rows whose job is not one of job.json's categories


@pytest.fixture(scope="module")
def trained(bank_training):
    """The end-to-end training's model (conftest's bank_model is trained on a sample)."""
    final, _ = bank_training
    assert final["status"] == "COMPLETED", final
    return final["model_key"]


def test_the_model_is_in_redis_db_1_and_served(service, trained):
    models = redis.Redis.from_url(service.params["redis_url"].rsplit("/", 1)[0] + "/1")
    stored = json.loads(models.get(trained))
    assert stored["num_features"] == len(stored["coefficients"]) == 51 and stored["num_classes"] == 2
    assert stored["name"] == "LogisticRegressionWrapper" and stored["created_at"]
    assert stored["parameters"]["regParam"] == JOB["regParam"]
    response = service.get(f"/models/{trained}")
    assert response.status_code == 200
    model = response.json()
    assert model["coefficients"] == stored["coefficients"] and model["schema"] == JOB["schema"]
    assert model["metrics"] == stored["metrics"] and model["model_key"] == trained
    assert model["num_features"] == 51 and model["num_classes"] == 2 and "numFeatures" not in model
    listed = {m["model_key"]: m for m in service.get("/models/").json()["models"]}
    assert listed[trained]["num_features"] == 51 and listed[trained]["metrics"]["auc"] >= 0.90
    assert listed[trained]["description"] == "who subscribes a term deposit"
    assert listed[trained]["tags"] == ["uci"]
    assert listed[trained]["lineage"] == {"algorithm": "LogisticRegressionWrapper", "input_collection": "e2e.bank",
                                             "label": "y", "task": "binary classification"}  # fmt: skip
    assert ISO.match(model["created_at"])
    history = service.get(f"/jobs/{trained}", params={"history": "1"}).json()["history"]
    assert history and all(ISO.match(step["updated_at"]) for step in history)
    recent = service.get("/jobs/", params={"kind": "training", "status": "COMPLETED"}).json()["jobs"]
    assert trained in [job["job_id"] for job in recent]
    assert service.get(f"/jobs/{trained}").json()["status"] == "COMPLETED"


def test_a_missing_label_field_is_refused_at_submission(service, bank_over_http):
    job = {
        **JOB,
        "inputCollection": bank_over_http,
        "schema": {**JOB["schema"], "label": {"key": "outcome", "values": {"no": 0, "yes": 1}}},
    }
    response = service.post("/train/", json=job)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message == "label field 'outcome' (did you mean 'poutcome'?) not found in e2e.bank"
    assert service.get("/jobs/", params={"status": "PENDING"}).json()["jobs"] == []  # nothing was queued


@pytest.mark.parametrize("path", ["/training/status/", "/predictall/status/", "/jobs/"])
def test_a_never_issued_id_is_404(service, path):
    response = service.get(path + "0123456789abcdef0123456789abcdef")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_job_kinds_do_not_mix(service, trained):
    assert service.get(f"/predictall/status/{trained}").status_code == 404
    assert service.get(f"/training/status/{trained}").status_code == 200


@pytest.mark.parametrize("name", ["canary_algorithm", "os", "LogisticRegressionWrapper.os", "../x", ""])
def test_an_algorithm_outside_the_allowlist_is_400_and_nothing_is_imported(service, bank_over_http, name):
    response = service.post("/train/", json={**JOB, "name": name, "inputCollection": bank_over_http})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("unknown_algorithm", "invalid_request")
    assert not service.canary_mark.exists()


def test_submission_refuses_what_cannot_run(service, bank_over_http):
    missing = service.post("/train/", json={**JOB, "inputCollection": "e2e.nothing_here"})
    assert missing.status_code == 404 and "e2e.nothing_here" in missing.json()["error"]["message"]
    bad_schema = {**JOB, "schema": {**JOB["schema"], "features": [{"key": "age"}, {"key": "age"}]}}
    response = service.post("/train/", json=bad_schema)
    assert response.status_code == 400 and "listed twice" in response.json()["error"]["message"]
    response = service.post("/train/", json={**JOB, "numFolds": 1})
    assert response.status_code == 400 and "numFolds" in response.json()["error"]["message"]


def test_the_inferred_schema_trains_as_well_as_job_json(service, bank_over_http, bank_training):
    response = service.get("/datasets/e2e/bank/schema", params={"label": "y"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["label"] == {"key": "y", "values": {"no": 0, "yes": 1}}
    assert [f["key"] for f in schema["features"]] == [f["key"] for f in JOB["schema"]["features"]]
    final, _ = service.train({**JOB, "inputCollection": bank_over_http, "schema": schema})
    assert final["status"] == "COMPLETED", final
    assert final["invalid_rows"] == 0  # inferred categories cover every value
    reference = bank_training[0]["metrics"]["auc"]
    assert final["metrics"]["auc"] >= 0.90 and abs(final["metrics"]["auc"] - reference) < 0.005


def test_location_header_and_trailing_slashes(service, mongo_client):
    """A job the sample cannot fault (its one class shows only on the whole data) is queued and
    FAILS on the worker with a message a person can act on."""
    mongo_client["e2e"]["oneclass"].drop()
    mongo_client["e2e"]["oneclass"].insert_many([{"age": 20 + i, "y": "no"} for i in range(20)])
    schema = {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "age"}]}
    response = service.post("/train", json={**JOB, "inputCollection": "e2e.oneclass", "schema": schema})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert response.headers["Location"] == f"/training/status/{job_id}"
    final, _ = service.wait_job(job_id)
    assert final["status"] == "FAILED"
    assert final["message"] == "label 'y' in e2e.oneclass has only one class ('no'): nothing to learn"
    assert service.request("HEAD", f"/jobs/{job_id}").status_code == 200
    assert job_id in [j["job_id"] for j in service.get("/jobs/?status=FAILED").json()["jobs"]]


def test_the_spark_ui_address_is_in_a_running_jobs_status(tmp_path, base_params, mongo_client):
    """With spark_ui on, a job's status gives the Spark UI while the job runs (and the UI answers
    there); off by default. Its own queue and keys: the session's worker never takes its job."""
    mongo_client["e2e"]["ui"].drop()
    mongo_client["e2e"]["ui"].insert_many([{"age": i % 50, "y": "yes" if i % 3 else "no"} for i in range(300)])
    assert base_params["spark_ui"] is False
    params = {**base_params, "spark_ui": True, "spark_ui_port": embedded.free_port(), "queue_name": "ui_test",
              "redis_key_prefix": "ui:"}  # fmt: skip
    service = Service(tmp_path, params)
    try:
        schema = {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "age"}]}
        job_id = service.post("/train/", json={**JOB, "inputCollection": "e2e.ui", "schema": schema}).json()["job_id"]
        seen, page = None, None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = service.get(f"/jobs/{job_id}").json()
            if status["status"] in ("COMPLETED", "FAILED"):
                break
            if "spark_ui" in status and page is None:
                seen = status["spark_ui"]
                page = requests.get(seen + "/jobs/", timeout=10)
            time.sleep(0.1)
        assert status["status"] == "COMPLETED", status
        assert seen is not None and seen.startswith("http://127.0.0.1:")
        assert page.status_code == 200 and "Spark" in page.text
        assert "spark_ui" not in status  # a finished job's UI address is no longer shown
    finally:
        service.stop()
