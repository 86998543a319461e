"""The service end to end: real worker, real web server, real Redis, MongoDB and Spark."""

import json

import pytest
import redis

from helpers import JOB
from predictionservice.jobstore import STATES

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


def test_the_model_is_in_redis_db_1_and_served(service, bank_model):
    models = redis.Redis.from_url(service.params["redis_url"].rsplit("/", 1)[0] + "/1")
    stored = json.loads(models.get(bank_model))
    assert stored["numFeatures"] == len(stored["coefficients"]) == 51 and stored["numClasses"] == 2
    assert stored["name"] == "LogisticRegressionWrapper" and stored["created_at"]
    assert stored["parameters"]["regParam"] == JOB["regParam"]
    response = service.get(f"/models/{bank_model}")
    assert response.status_code == 200
    model = response.json()
    assert model["coefficients"] == stored["coefficients"] and model["schema"] == JOB["schema"]
    assert model["metrics"] == stored["metrics"] and model["model_key"] == bank_model
    listed = {m["model_key"]: m for m in service.get("/models/").json()["models"]}
    assert listed[bank_model]["num_features"] == 51 and listed[bank_model]["metrics"]["auc"] >= 0.90
    assert service.get(f"/jobs/{bank_model}").json()["status"] == "COMPLETED"


def test_a_missing_label_field_ends_failed_with_that_message(service, bank_over_http):
    job = {
        **JOB,
        "inputCollection": bank_over_http,
        "schema": {**JOB["schema"], "label": {"key": "outcome", "values": {"no": 0, "yes": 1}}},
    }
    final, _ = service.train(job)
    assert final["status"] == "FAILED"
    assert final["message"] == "label field 'outcome' not found in e2e.bank"
    assert "model_key" not in final
    assert service.get(f"/models/{final['job_id']}").status_code == 404


@pytest.mark.parametrize("path", ["/training/status/", "/predictall/status/", "/jobs/"])
def test_a_never_issued_id_is_404(service, path):
    response = service.get(path + "0123456789abcdef0123456789abcdef")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_job_kinds_do_not_mix(service, bank_model):
    assert service.get(f"/predictall/status/{bank_model}").status_code == 404
    assert service.get(f"/training/status/{bank_model}").status_code == 200


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


def test_location_header_and_trailing_slashes(service, bank_over_http):
    response = service.post(
        "/train",
        json={
            **JOB,
            "inputCollection": bank_over_http,
            "schema": {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "nope"}]},
        },
    )
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert response.headers["Location"] == f"/training/status/{job_id}"
    final, _ = service.wait_job(job_id)
    assert final["status"] == "FAILED" and final["message"] == "feature field 'nope' not found in e2e.bank"
    assert service.request("HEAD", f"/jobs/{job_id}").status_code == 200
