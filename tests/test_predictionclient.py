"""predictionclient.client: every method against the real service (CherryPy, a Celery worker,
Spark), its answers held equal to the HTTP API's, the progress bar, and errors as one type."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from helpers import EXAMPLES, TOKEN, XOR_JOB, bar_percentages, monitored_name, named_model, register_name
from localservers import embedded
from predictionclient import Job, PredictionClient, PredictionServiceError
from predictionclient import client as client_module
from predictionservice.jobstore import FAILED, JobStore
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect

ROWS = list(csv.DictReader(io.StringIO((EXAMPLES / "xor.csv").read_text())))
RECORDS = [{"x1": float(r["x1"]), "x2": float(r["x2"]), "c": r["c"]} for r in ROWS[:25]]


@pytest.fixture(scope="module")
def api(service):
    return PredictionClient(service.url)


@pytest.fixture(scope="module")
def trained(api):
    """load_csv, schema and train with a progress bar, through the client: (final status, bar)."""
    loaded = api.load_csv(EXAMPLES / "xor.csv", "client.xor")
    assert loaded["inserted"] == 600
    schema = api.schema("client.xor", label="y")
    assert schema["label"] == {"key": "y", "values": {"no": 0, "yes": 1}}
    assert [f["key"] for f in schema["features"]] == ["x1", "x2", "c"]
    job = api.train({**XOR_JOB, "schema": schema}, inputCollection="client.xor")
    assert isinstance(job, Job) and job.kind == "training"
    bar = io.StringIO()
    final = job.wait(progress=True, timeout=600, file=bar)
    return final, bar.getvalue()


def test_train_waits_to_the_end_with_a_moving_progress_bar(trained):
    final, bar = trained
    assert final["status"] == "COMPLETED" and final["model_key"] == final["job_id"]
    assert set(final["metrics"]) >= {"auc", "accuracy"}
    shown = bar_percentages(bar)
    assert shown[-1] == 100 and len(set(shown)) >= 3, bar  # it moved on the way, and ended full
    assert f"COMPLETED: {final['message']}"[:100] in bar


def test_predict_one_many_and_a_dataframe_are_the_apis_answers(api, service, trained):
    key = trained[0]["model_key"]
    direct = service.post("/predict/", json={"modelkey": key, "records": RECORDS}).json()["predictions"]
    one = api.predict(key, RECORDS[0])
    assert one == direct[0] and set(one) == {"prediction", "label", "probability", "probabilities"}
    assert api.predict(key, RECORDS) == direct
    frame = pd.DataFrame(RECORDS, index=[f"r{i}" for i in range(len(RECORDS))])
    answers = api.predict(key, frame)
    assert list(answers.index) == list(frame.index)
    assert answers["probability"].tolist() == [d["probability"] for d in direct]
    assert answers["label"].tolist() == [d["label"] for d in direct]


def test_many_records_go_in_batches_and_keep_their_order(api, service, trained, monkeypatch):
    key = trained[0]["model_key"]
    monkeypatch.setattr("predictionclient.client.BATCH", 7)
    direct = service.post("/predict/", json={"modelkey": key, "records": RECORDS}).json()["predictions"]
    assert api.predict(key, RECORDS) == direct


def test_predict_with_explain_returns_the_apis_explanations(api, service, trained):
    """explain=True: each answer carries /predict/'s explanation (the trained forest explains the
    predicted class's probability), for a dict, a list and a DataFrame; without it, none."""
    key = trained[0]["model_key"]
    body = {"modelkey": key, "records": RECORDS, "explain": True}
    direct = service.post("/predict/", json=body).json()["predictions"]
    assert api.predict(key, RECORDS, explain=True) == direct
    one = api.predict(key, RECORDS[0], explain=True)
    assert one == direct[0]
    explanation = one["explanation"]
    assert explanation["output"] == "probability" and set(explanation["contributions"]) == {"x1", "x2", "c"}
    assert explanation["base"] + sum(explanation["contributions"].values()) == pytest.approx(
        max(one["probabilities"].values()), abs=1e-9
    )
    frame = api.predict(key, pd.DataFrame(RECORDS), explain=True)
    assert frame["explanation"].tolist() == [answer["explanation"] for answer in direct]
    assert "explanation" not in api.predict(key, RECORDS[0])


def test_explaining_a_model_stored_before_explanations_raises_the_apis_conflict(api, service, trained):
    store = ModelStore(connect(service.params["redis_url"], service.params["models_db"]))
    model, _ = store.load(trained[0]["model_key"])
    old = f"client-old-{uuid.uuid4().hex[:8]}"
    store.save(old, {**model, "trees": [{k: v for k, v in t.items() if k != "cover"} for t in model["trees"]]})
    try:
        with pytest.raises(PredictionServiceError) as caught:
            api.predict(old, RECORDS[:3], explain=True)
        assert (caught.value.code, caught.value.status) == ("conflict", 409)
        assert "retrain" in caught.value.message
        assert len(api.predict(old, RECORDS[:3])) == 3
    finally:
        store.delete(old)


def test_a_missing_value_in_a_dataframe_is_the_apis_error_naming_the_field(api, trained):
    frame = pd.DataFrame(RECORDS[:3])
    frame.loc[1, "x2"] = float("nan")
    with pytest.raises(PredictionServiceError) as caught:
        api.predict(trained[0]["model_key"], frame)
    assert caught.value.code == "invalid_record" and caught.value.status == 400
    assert caught.value.details[0]["field"] == "x2" and caught.value.details[0]["index"] == 1


def test_predict_all_scores_a_collection(api, service, trained):
    job = api.predict_all(trained[0]["model_key"], "client.xor", "client.xor_scored")
    assert job.kind == "predictall"
    final = job.wait(timeout=600)
    assert final["status"] == "COMPLETED" and final["rows"] == 600
    scored = api.dataset("client.xor_scored")
    assert scored["count"] == 600 and {"score", "probability", "value"} <= set(scored["fields"])


def test_a_failed_job_raises_with_its_message_unless_told_not_to(api, service):
    jobs = JobStore(connect(service.params["redis_url"]), 600)
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "training", {})
    jobs.update(job_id, FAILED, "no usable rows in client.nothing")
    with pytest.raises(PredictionServiceError) as caught:
        api.job(job_id).wait()
    assert caught.value.code == "job_failed" and caught.value.message == "no usable rows in client.nothing"
    assert api.job(job_id).wait(raise_on_failure=False)["status"] == FAILED


def test_api_errors_are_one_type_with_the_apis_code_and_message(api, service):
    with pytest.raises(PredictionServiceError) as caught:
        api.predict("no-such-model", RECORDS[0])
    assert (caught.value.code, caught.value.status) == ("not_found", 404)
    assert (
        caught.value.message
        == service.post("/predict/", json={"modelkey": "no-such-model", "record": {}}).json()["error"]["message"]
    )
    with pytest.raises(PredictionServiceError) as caught:
        api.train({"name": "NoSuchAlgorithm", "inputCollection": "client.xor", "schema": XOR_JOB["schema"]})
    assert caught.value.code == "unknown_algorithm" and "NoSuchAlgorithm" in str(caught.value)
    with pytest.raises(PredictionServiceError) as caught:
        api.schema("client.never_loaded", "y")
    assert caught.value.code == "not_found"
    with pytest.raises(PredictionServiceError) as caught:
        api.schema("no-dot", "y")
    assert caught.value.code == "invalid_request" and "db.collection" in caught.value.message


def test_an_unreachable_service_is_the_same_error_type():
    with pytest.raises(PredictionServiceError) as caught:
        PredictionClient(f"http://127.0.0.1:{embedded.free_port()}", timeout=5).models()
    assert caught.value.code == "unreachable"


def test_url_and_token_default_to_the_environment(token_service, monkeypatch):
    monkeypatch.setenv("PREDICTION_SERVICE_URL", token_service.url)
    monkeypatch.delenv("PREDICTION_SERVICE_TOKEN", raising=False)
    with pytest.raises(PredictionServiceError) as caught:
        PredictionClient().models()
    assert (caught.value.code, caught.value.status) == ("unauthorized", 401)
    monkeypatch.setenv("PREDICTION_SERVICE_TOKEN", TOKEN)
    assert isinstance(PredictionClient().models(), list)
    assert PredictionClient(token="wrong").url == token_service.url
    with pytest.raises(PredictionServiceError):
        PredictionClient(token="wrong").models()
    monkeypatch.delenv("PREDICTION_SERVICE_URL")
    assert PredictionClient().url == "http://localhost:5000"


def test_load_records_and_append(api):
    assert api.load_records(pd.DataFrame(RECORDS[:4]), "client.small")["inserted"] == 4
    assert api.load_csv(b"x1,x2,c\n1,2,a\n", "client.small", "append")["inserted"] == 1
    assert api.dataset("client.small")["count"] == 5


class Writes(io.BytesIO):
    """A binary file that counts the writes it was given."""

    writes = 0

    def write(self, chunk) -> int:
        self.writes += 1
        return super().write(chunk)


def test_export_streams_the_apis_export_to_a_path_or_a_file(api, service, tmp_path):
    """export() is GET /datasets/<db>/<collection>/export, byte for byte, in either format; a
    collection larger than a chunk arrives in several writes, not read whole first."""
    many = [{**RECORDS[i % len(RECORDS)], "n": i} for i in range(4000)]
    assert api.load_records(many, "client.exported")["inserted"] == len(many)
    for fmt in ("csv", "jsonl"):
        expected = service.get(f"/datasets/client/exported/export?format={fmt}").content
        assert len(expected) > 2 * client_module.EXPORT_CHUNK
        path = tmp_path / f"exported.{fmt}"
        assert api.export("client.exported", path, fmt) == len(expected)
        assert path.read_bytes() == expected
        out = Writes()
        assert api.export("client.exported", out, format=fmt) == len(expected)
        assert out.getvalue() == expected and out.writes > 2
    assert len(path.read_text().splitlines()) == len(many)  # jsonl: a line a document


def test_exporting_what_is_not_there_raises_the_apis_error_and_writes_no_file(api, service, tmp_path):
    target = tmp_path / "nothing.csv"
    with pytest.raises(PredictionServiceError) as caught:
        api.export("client.nothing_here", target)
    api_error = service.get("/datasets/client/nothing_here/export").json()["error"]
    assert (caught.value.code, caught.value.status, caught.value.message) == ("not_found", 404, api_error["message"])
    assert not target.exists()
    api.load_records(RECORDS[:2], "client.exported_small")
    with pytest.raises(PredictionServiceError) as caught:
        api.export("client.exported_small", tmp_path / "x.xml", format="xml")
    assert (caught.value.code, caught.value.status) == ("invalid_request", 400)


def test_models_model_jobs_and_delete(api, trained):
    key = trained[0]["model_key"]
    assert key in [m["model_key"] for m in api.models()]
    model = api.model(key)
    assert model["name"] == "RandomForestWrapper" and model["schema"]["label"]["key"] == "y"
    assert key in [j["job_id"] for j in api.jobs()]
    assert [j["job_id"] for j in api.jobs(kind="training", limit=1)] == [api.jobs(kind="training")[0]["job_id"]]
    assert all(j["status"] == "COMPLETED" for j in api.jobs(status="COMPLETED"))
    api.delete_model(key)
    with pytest.raises(PredictionServiceError) as caught:
        api.model(key)
    assert (caught.value.code, caught.value.status) == ("not_found", 404)
    with pytest.raises(PredictionServiceError):
        api.delete_model(key)


def test_registry_lists_and_shows_names_and_promote_moves_an_alias(api, service):
    """registry() and registry(name) are GET /registry/ and /registry/<name>; promote moves
    production (or another alias) and a prediction by the name follows it at once."""
    with named_model(service.params, prefix="client") as (name, keys):
        listed = next(m for m in api.registry() if m["name"] == name)
        assert listed == next(m for m in service.get("/registry/").json()["models"] if m["name"] == name)
        assert listed["aliases"] == {"production": 1, "candidate": 2}
        assert api.registry(name) == service.get(f"/registry/{name}").json()
        assert api.predict(name, {"x": 0.4})["model"] == {"name": name, "version": 1, "model_key": keys[0]}
        entry = api.promote(name, 2)
        assert entry["aliases"]["production"] == 2 and entry["history"][0]["why"] == "manual"
        answer = api.predict(name, {"x": 0.4})
        assert answer["label"] == "yes" and answer["model"]["version"] == 2
        assert api.promote(name, 1, alias="staging")["aliases"] == {"production": 2, "candidate": 2, "staging": 1}
        for wrong, code, status in (((name, 9), "not_found", 404), ((f"x{name}", 1), "not_found", 404),
                                    ((name, 1, "Bad"), "invalid_request", 400)):  # fmt: skip
            with pytest.raises(PredictionServiceError) as caught:
                api.promote(*wrong)
            assert (caught.value.code, caught.value.status) == (code, status), caught.value
        assert api.registry(name)["aliases"] == {"production": 2, "candidate": 2, "staging": 1}


def test_retrain_and_schedule_a_named_model(api, service, trained):
    name = register_name(service.params, {**XOR_JOB, "inputCollection": "client.xor"}, "client")
    job = api.retrain(name, numFolds=2)
    try:
        assert isinstance(job, Job) and job.kind == "training"
        assert job.status()["lineage"]["model"] == name
        with pytest.raises(PredictionServiceError) as caught:
            api.retrain(name)  # its job is still queued or running
        assert caught.value.code == "conflict" and caught.value.details[0]["job_id"] == job.id
    finally:
        job.cancel()
    assert [r["outcome"] for r in api.named_model(name)["retrains"]] == ["skipped", "queued"]
    shown = api.schedule(name, cron="0 3 * * *")
    assert shown["cron"] == "0 3 * * *" and shown["next_run_at"].endswith("T03:00:00.000Z")
    assert api.get_schedule(name) == shown == api.named_model(name)["schedule"]
    assert api.schedule(name, every_seconds=3600)["every_seconds"] == 3600
    on_drift = api.schedule(name, every_seconds=3600, when="drift")
    assert on_drift["when"] == "drift" and api.get_schedule(name)["when"] == "drift"
    with pytest.raises(PredictionServiceError) as caught:
        api.schedule(name, every_seconds=3600, when="sometimes")
    assert caught.value.code == "invalid_request" and caught.value.details[0]["field"] == "when"
    api.delete_schedule(name)
    with pytest.raises(PredictionServiceError) as caught:
        api.get_schedule(name)
    assert caught.value.code == "not_found"
    with pytest.raises(PredictionServiceError) as caught:
        api.schedule(name, cron="0 25 * * *")
    assert caught.value.code == "invalid_request" and "hour" in caught.value.message
    with pytest.raises(ValueError):
        api.schedule(name)
    service.request("DELETE", f"/registry/{name}")


def test_monitor_is_the_apis_report(api, service, mongo_client):
    name, key, cleanup = monitored_name(service.params, mongo_client)
    try:
        since = "2026-01-01T00:00:00Z"
        report = api.monitor(name, since=since)
        assert report == service.get(f"/registry/{name}/monitor", params={"since": since}).json()
        assert report["model_key"] == key and report["count"] == 40 and report["drifted"] == ["x"]
        assert report["quality"]["labelled"] == 20 and report["quality"]["accuracy"] == 0.75
        assert api.monitor(name)["count"] == 40  # the server's default window: the last 24 h
        recent = datetime.now(UTC) - timedelta(hours=2)
        assert api.monitor(name, since=recent, version=1)["count"] == 40
        assert api.monitor(name, since="2999-01-01T00:00:00Z")["count"] == 0
        with pytest.raises(PredictionServiceError) as caught:
            api.monitor(name, version="7")
        assert caught.value.status == 404 and "versions: 1" in str(caught.value)
    finally:
        cleanup()


def test_traffic_shadows_splits_shows_and_ends_a_names_traffic(api, service):
    """traffic(name, shadow=) and traffic(name, split=, percent=) are PUT /registry/<name>/traffic,
    get_traffic GET, delete_traffic DELETE; a split really lets the candidate answer its share;
    the API's refusals are PredictionServiceError with its code."""
    with named_model(service.params, prefix="client") as (name, _):
        shadow = api.traffic(name, shadow="candidate")
        assert (shadow["alias"], shadow["mode"]) == ("candidate", "shadow") and "percent" not in shadow
        assert api.get_traffic(name) == shadow == service.get(f"/registry/{name}/traffic").json()
        assert {api.predict(name, {"x": 0.4})["model"]["version"] for _ in range(5)} == {1}  # shadow: never answers
        split = api.traffic(name, split="candidate", percent=30)
        assert (split["mode"], split["percent"]) == ("split", 30) and api.registry(name)["traffic"] == split
        assert {api.predict(name, {"x": 0.4})["model"]["version"] for _ in range(60)} == {1, 2}
        for wrong, says in (({"split": "staging", "percent": 30}, "staging"), ({"shadow": "production"}, "production"),
                            ({"split": "candidate", "percent": 100}, "percent"), ({"split": "candidate"}, "percent"),
                            ({"shadow": "candidate", "percent": 5}, "percent")):  # fmt: skip
            with pytest.raises(PredictionServiceError) as caught:
                api.traffic(name, **wrong)
            assert (caught.value.code, caught.value.status) == ("invalid_request", 400) and says in caught.value.message
        assert api.get_traffic(name) == split  # a refused setting changed nothing
        with pytest.raises(PredictionServiceError) as caught:
            api.traffic(f"x{name}", shadow="candidate")
        assert (caught.value.code, caught.value.status) == ("not_found", 404)
        for neither_or_both in ({}, {"shadow": "candidate", "split": "candidate"}):
            with pytest.raises(ValueError):
                api.traffic(name, **neither_or_both)
        api.delete_traffic(name)
        assert api.registry(name)["traffic"] is None
        for call in (api.get_traffic, api.delete_traffic):
            with pytest.raises(PredictionServiceError) as caught:
                call(name)
            assert (caught.value.code, caught.value.status) == ("not_found", 404) and "no traffic" in str(caught.value)
