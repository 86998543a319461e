"""predictionservice/predictionlog.py and POST /feedback/ (predictionservice/feedback.py,
web/feedback.py), through Flask's test client on the session's real Redis and MongoDB: every
answered /predict/ and V2 infer logged in the defined format (the drift monitor reads it), batch
ids, the sample rate, the writer's full queue dropping and counting without blocking, /metrics,
the indexes, and feedback (single, batch, last wins, 404, 400). Models are stored directly, as
training stores them. The real server (load, MongoDB stopped, the stop's flush) is
test_flow_prediction_log.py."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import ONE_FEATURE_MODEL, InProcess
from predictionservice.predictionlog import SHADOW, LogSettings, PredictionLog

pytestmark = pytest.mark.app

REGRESSOR = {
    "name": "LinearRegressionWrapper",
    "schema": {"label": {"key": "y"}, "features": [{"key": "x"}]},
    "coefficients": [2.0],
    "intercept": 0.5,
}


def make_app(base_params, **settings):
    from modelservice import modelservice

    collection = f"plog{uuid.uuid4().hex[:8]}.predictions"
    return InProcess(modelservice({**base_params, "prediction_log": True, "prediction_log_collection": collection,
                                   **settings}))  # fmt: skip


def services(app):
    return app.app.extensions["prediction_service"]


@pytest.fixture(scope="module")
def app(base_params, mongo_client):
    made = make_app(base_params)
    yield made
    log = services(made).prediction_log
    log.stop()
    mongo_client.drop_database(log.collection.database.name)


@pytest.fixture(scope="module")
def models(app):
    """A classifier by key, the same under a name (version 1), and a regressor by key."""
    found = services(app)
    key, named_key, regressor = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    name = f"plog-{uuid.uuid4().hex[:8]}"
    found.models.save(key, ONE_FEATURE_MODEL)
    found.registry.add_version(name, named_key, ONE_FEATURE_MODEL)
    found.models.save(regressor, REGRESSOR)
    yield {"key": key, "name": name, "named_key": named_key, "regressor": regressor}
    found.registry.delete_name(name)
    for each in (key, named_key, regressor):
        found.models.delete(each)


def logged(app, request_id_prefix: str) -> list[dict]:
    log = services(app).prediction_log
    assert log.flush(10)
    found = log.collection.find({"request_id": {"$regex": f"^{request_id_prefix}"}}, {"_id": 0})
    return sorted(found, key=lambda d: d["request_id"])


def post(app, path, body, request_id):
    reply = app.post(path, json=body, headers={"X-Request-ID": request_id})
    assert reply.status_code == 200, reply.text
    assert reply.headers["X-Request-ID"] == request_id
    return reply.json()


def test_every_answer_is_logged_in_the_defined_format(app, models):
    rid = f"fmt-{uuid.uuid4().hex}"
    before = datetime.now(UTC)
    one = post(app, "/predict/", {"modelkey": models["key"], "record": {"x": 0.9}}, rid)
    documents = logged(app, rid)
    assert len(documents) == 1
    (document,) = documents
    assert set(document) == {"request_id", "time", "model", "variant", "record", "answer", "latency_ms"}
    assert document["request_id"] == rid and document["variant"] == "answer"
    assert document["model"] == {"name": None, "version": None, "model_key": models["key"]}
    assert document["record"] == {"x": 0.9}
    assert document["answer"] == {k: v for k, v in one.items() if k != "modelkey"}  # the record's answer
    assert isinstance(document["time"], datetime)  # a BSON date
    assert before.replace(microsecond=0, tzinfo=None) <= document["time"] <= datetime.now(UTC).replace(tzinfo=None)
    assert 0 < document["latency_ms"] < 5000


def test_a_batch_logs_each_record_under_id_slash_index_and_a_name_its_version(app, models):
    rid = f"batch-{uuid.uuid4().hex}"
    records = [{"x": 0.1 * i} for i in range(12)]
    answer = post(app, "/predict/", {"modelkey": models["name"], "records": records}, rid)
    documents = {d["request_id"]: d for d in logged(app, rid)}
    assert set(documents) == {f"{rid}/{i}" for i in range(12)}
    for i, record in enumerate(records):
        document = documents[f"{rid}/{i}"]
        assert document["record"] == record and document["answer"] == answer["predictions"][i]
        assert document["model"] == {"name": models["name"], "version": 1, "model_key": models["named_key"]}


def test_v2_infer_is_logged_one_row_under_the_id_and_rows_as_a_batch(app, models):
    rid = f"v2-{uuid.uuid4().hex}"
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [0.7]}]}
    post(app, f"/v2/models/{models['key']}/infer", body, rid)
    (one,) = logged(app, rid)
    assert one["request_id"] == rid and one["record"] == {"x": 0.7} and one["answer"]["label"] == "yes"
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [3], "data": [0.1, 0.2, 0.9]}]}
    post(app, f"/v2/models/{models['name']}/versions/1/infer", body, rid + "b")
    rows = logged(app, rid + "b")
    assert [d["request_id"] for d in rows] == [f"{rid}b/{i}" for i in range(3)]
    assert [d["answer"]["label"] for d in rows] == ["no", "no", "yes"] and rows[0]["model"]["version"] == 1


def test_a_refused_request_is_not_logged(app, models):
    rid = f"bad-{uuid.uuid4().hex}"
    reply = app.post("/predict/", json={"modelkey": models["key"], "record": {}}, headers={"X-Request-ID": rid})
    assert reply.status_code == 400
    assert logged(app, rid) == []


def test_the_sample_rate_thins_the_log(base_params, models, mongo_client):
    for sample, low, high in ((0.0, 0, 0), (0.5, 60, 140)):
        thinned = make_app(base_params, prediction_log_sample=sample)
        rid = f"sample-{uuid.uuid4().hex}"
        for i in range(200):
            post(thinned, "/predict/", {"modelkey": models["key"], "record": {"x": 0.5}}, f"{rid}-{i:03d}")
        count = len(logged(thinned, rid))
        assert low <= count <= high, (sample, count)
        services(thinned).prediction_log.stop()
        mongo_client.drop_database(services(thinned).prediction_log.collection.database.name)


def test_the_indexes_and_the_retention_s_ttl(base_params, models, mongo_client):
    kept = make_app(base_params, prediction_log_retention_days=7)
    post(kept, "/predict/", {"modelkey": models["key"], "record": {"x": 0.5}}, f"ttl-{uuid.uuid4().hex}")
    log = services(kept).prediction_log
    assert log.flush(10)
    indexes = {tuple(k for k, _ in index["key"].items()): index for index in log.collection.list_indexes()}
    # the reads' own (feedback, the monitor) and the TTL: each more index is paid by every insert
    assert set(indexes) == {("_id",), ("request_id",), ("model.model_key", "time"), ("time",)}
    assert indexes[("time",)]["expireAfterSeconds"] == 7 * 86400
    log.stop()
    mongo_client.drop_database(log.collection.database.name)


def test_a_full_queue_drops_and_counts_without_blocking():
    """MongoDB does not answer (nothing listens): the writer waits on its first insert, the queue
    of 5 fills, and every further request is dropped at once and counted."""
    from localservers.embedded import free_port

    settings = LogSettings(f"mongodb://127.0.0.1:{free_port()}/", prediction_log_queue_size=5, mongodb_timeout_ms=1500)
    log = PredictionLog(settings)
    answers = [{"prediction": 1}]
    started = time.perf_counter()
    for i in range(1000):
        log.log(f"r{i}", {"model_key": "k"}, [{"x": 1}], answers, 1.0, single=True)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"1000 requests took {elapsed:.2f} s to log"
    assert 1000 - 6 <= log.dropped["queue_full"] <= 1000 - 5  # 5 wait, the writer may hold one
    families = {f.name: f for f in text_string_to_metric_families(exposition(log))}
    dropped = {s.labels["reason"]: s.value for s in families["prediction_service_prediction_log_dropped"].samples}
    assert dropped["queue_full"] == log.dropped["queue_full"]
    assert families["prediction_service_prediction_log_queue_depth"].samples[0].value >= 4
    log.stop(timeout=10)  # what waits is tried, fails, and is counted
    assert log.dropped["write_failed"] + log.dropped["queue_full"] == 1000 and log.written == 0
    assert log.failed_writes >= 1
    log.log("late", {"model_key": "k"}, [{"x": 1}], answers, 1.0, single=True)
    assert log.dropped["stopped"] == 1


def exposition(log: PredictionLog) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(log.collector())
    return generate_latest(registry).decode()


def test_metrics_show_the_log_s_counters(app, models):
    post(app, "/predict/", {"modelkey": models["key"], "record": {"x": 0.5}}, f"m-{uuid.uuid4().hex}")
    assert services(app).prediction_log.flush(10)
    text = app.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["prediction_service_prediction_log_written"].samples[0].value >= 1
    reasons = {s.labels["reason"] for s in families["prediction_service_prediction_log_dropped"].samples}
    assert reasons == {"queue_full", "write_failed", "unencodable", "stopped"}
    assert "prediction_service_prediction_log_queue_depth" in families


# --- feedback -------------------------------------------------------------------------------


def feedback(app, body, status=200):
    reply = app.post("/feedback/", json=body)
    assert reply.status_code == status, reply.text
    return reply.json()


def test_feedback_is_stored_on_every_document_of_the_request_and_the_last_stays(app, models):
    rid = f"fb-{uuid.uuid4().hex}"
    post(app, "/predict/", {"modelkey": models["key"], "record": {"x": 0.9}}, rid)
    log = services(app).prediction_log
    log.log(rid, {"name": None, "version": None, "model_key": models["key"]}, [{"x": 0.9}], [{"prediction": 0}],
            1.0, single=True, variant=SHADOW)  # fmt: skip
    logged(app, rid)
    assert feedback(app, {"request_id": rid, "label": "no"}) == {"stored": 1, "documents": 2}
    assert feedback(app, {"request_id": rid, "label": "yes"}) == {"stored": 1, "documents": 2}
    documents = logged(app, rid)
    assert sorted(d["variant"] for d in documents) == ["answer", "shadow"]
    for document in documents:
        assert document["feedback"]["label"] == "yes" and isinstance(document["feedback"]["time"], datetime)


def test_feedback_for_a_batch_s_records(app, models):
    rid = f"fbb-{uuid.uuid4().hex}"
    post(app, "/predict/", {"modelkey": models["name"], "records": [{"x": 0.1}, {"x": 0.8}, {"x": 0.3}]}, rid)
    logged(app, rid)
    body = {"records": [{"request_id": f"{rid}/0", "label": "no"}, {"request_id": f"{rid}/1", "label": "no"},
                        {"request_id": f"{rid}/1", "label": "yes"}]}  # fmt: skip
    assert feedback(app, body) == {"stored": 3, "documents": 2}
    labels = {d["request_id"]: d.get("feedback", {}).get("label") for d in logged(app, rid)}
    assert labels == {f"{rid}/0": "no", f"{rid}/1": "yes", f"{rid}/2": None}


def test_feedback_for_an_unknown_request_is_404_naming_it_and_stores_nothing(app, models):
    rid = f"fbu-{uuid.uuid4().hex}"
    post(app, "/predict/", {"modelkey": models["key"], "record": {"x": 0.9}}, rid)
    logged(app, rid)
    body = {"records": [{"request_id": rid, "label": "yes"}, {"request_id": "never-answered", "label": "no"}]}
    error = feedback(app, body, 404)["error"]
    assert error["code"] == "not_found" and "'never-answered'" in error["message"] and rid not in error["message"]
    assert "feedback" not in logged(app, rid)[0]


def test_feedback_with_a_label_the_model_cannot_have_is_400(app, models):
    rid = f"fbl-{uuid.uuid4().hex}"
    post(app, "/predict/", {"modelkey": models["key"], "record": {"x": 0.9}}, rid)
    post(app, "/predict/", {"modelkey": models["regressor"], "record": {"x": 0.9}}, rid + "r")
    logged(app, rid)
    error = feedback(app, {"request_id": rid, "label": "maybe"}, 400)["error"]
    assert "'maybe'" in error["message"] and "'no', 'yes'" in error["message"]
    error = feedback(app, {"request_id": rid + "r", "label": "high"}, 400)["error"]
    assert "not a number" in error["message"]
    assert feedback(app, {"request_id": rid + "r", "label": 2.25}) == {"stored": 1, "documents": 1}
    both = {"records": [{"request_id": rid, "label": "yes"}, {"request_id": rid + "r", "label": "x"}]}
    error = feedback(app, both, 400)["error"]
    assert error["details"][0]["field"] == "records[1].label"
    assert "feedback" not in logged(app, rid)[0]  # nothing stored from a refused body
    for body in ({"request_id": rid}, {"label": "yes"}, {"records": []}, {"request_id": rid, "label": True},
                 {"records": [{"request_id": rid, "label": "yes"}] * 1001}):  # fmt: skip
        assert feedback(app, body, 400)["error"]["code"] == "invalid_request", body


def test_feedback_needs_the_predict_scope():
    from web.scopes import ROUTE_SCOPES

    assert ROUTE_SCOPES["feedback.store_feedback"] == "predict"


def test_a_reported_records_error_is_not_logged_and_the_others_keep_their_index():
    from predictionservice.predictionlog import documents

    model = {"name": None, "version": None, "model_key": "k"}
    records = [{"x": 1}, {"x": "bad"}, {"x": 3}]
    answers = [{"prediction": 1.0}, {"error": {"code": "invalid_record"}}, {"prediction": 3.0}]
    written = list(documents((time.time(), "req", model, "answer", records, answers, 1.0, False)))
    assert [(d["request_id"], d["record"], d["answer"]) for d in written] == [
        ("req/0", records[0], answers[0]),
        ("req/2", records[2], answers[2]),
    ]
