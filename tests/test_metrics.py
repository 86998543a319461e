"""GET /metrics (predictionservice/metrics.py, web/metrics.py), read with prometheus_client's own
parser: counters move by exactly the requests made, labels are route templates and never a raw
id, predictions are counted by algorithm, the cache's hits and misses and the model count follow
the store, and the job gauges follow a real training job from queued to completed."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from helpers import InProcess, Service, known_rows
from localservers import embedded
from modelservice import modelservice
from predictionservice.modelstore import ModelStore

SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "x"}, {"key": "c", "values": {"a": 0, "b": 1}}],
}
MODEL = {"name": "LogisticRegressionWrapper", "schema": SCHEMA, "coefficients": [0.5, 1.0, -1.0], "intercept": 0.2}
RECORDS = [{"x": 1.0, "c": "a"}, {"x": -2.0, "c": "b"}, {"x": 0.5, "c": "b"}]
PREDICTED = "prediction_service_predictions_total"


def scrape(service) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape by (name, labels)."""
    response = service.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: dict, after: dict, name: str) -> dict[frozenset, float]:
    """How each series of name moved between two scrapes (the unmoved left out)."""
    keys = {labels for (n, labels) in [*before, *after] if n == name}
    deltas = {labels: after.get((name, labels), 0.0) - before.get((name, labels), 0.0) for labels in keys}
    return {labels: delta for labels, delta in deltas.items() if delta}


@pytest.fixture()
def model_key(base_params):
    """A binary model in the session's model store, deleted afterwards."""
    client = redis.Redis.from_url(base_params["redis_url"].rsplit("/", 1)[0] + f"/{base_params['models_db']}")
    key = f"metrics-{uuid.uuid4().hex[:10]}"
    ModelStore(client).save(key, MODEL)
    yield key
    ModelStore(client).delete(key)
    client.close()


def test_the_request_counter_moves_by_exactly_the_requests_made(client, model_key):
    before = scrape(client)
    for _ in range(3):
        assert client.post("/predict/", json={"modelkey": model_key, "record": RECORDS[0]}).status_code == 200
    assert client.post("/predict", json={"modelkey": model_key, "records": RECORDS}).status_code == 200  # the twin
    assert client.get(f"/training/status/{uuid.uuid4().hex}").status_code == 404
    assert client.get(f"/v2/models/{model_key}").status_code == 200
    assert client.get("/no/such/route").status_code == 404
    after = scrape(client)
    counted = moved(before, after, "prediction_service_http_requests_total")
    assert counted == {
        frozenset({"method": "POST", "route": "/predict/", "status": "200"}.items()): 4.0,
        frozenset({"method": "GET", "route": "/training/status/<job_id>", "status": "404"}.items()): 1.0,
        frozenset({"method": "GET", "route": "/v2/models/<key>", "status": "200"}.items()): 1.0,
        frozenset({"method": "GET", "route": "unmatched", "status": "404"}.items()): 1.0,
        frozenset({"method": "GET", "route": "/metrics", "status": "200"}.items()): 1.0,  # the first scrape
    }
    timed = moved(before, after, "prediction_service_http_request_duration_seconds_count")
    assert timed[frozenset({"route": "/predict/"}.items())] == 4.0
    assert sum(timed.values()) == 8.0


def test_no_label_holds_a_raw_id_or_path(client, model_key):
    raw = [uuid.uuid4().hex for _ in range(4)]
    client.get(f"/jobs/{raw[0]}")
    client.get(f"/models/{raw[1]}")
    client.get(f"/datasets/{raw[2]}/x")
    client.post(f"/v2/models/{raw[3]}/infer", json={"inputs": []})
    client.post("/predict/", json={"modelkey": model_key, "record": RECORDS[0]})
    labels = {value for (_name, pairs) in scrape(client) for _key, value in pairs}
    assert not [label for label in labels if any(r in label for r in [*raw, model_key])]
    assert {"/jobs/<job_id>", "/models/<key>", "/datasets/<db>/<collection>", "/v2/models/<key>/infer"} <= labels


def test_predictions_are_counted_by_algorithm_over_predict_and_v2(client, model_key):
    before = scrape(client)
    client.post("/predict/", json={"modelkey": model_key, "records": RECORDS})
    client.post("/predict/", json={"modelkey": model_key, "record": RECORDS[0]})
    inputs = [
        {"name": "x", "shape": [2, 1], "datatype": "FP64", "data": [1.0, 2.0]},
        {"name": "c", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]},
    ]
    assert client.post(f"/v2/models/{model_key}/infer", json={"inputs": inputs}).status_code == 200
    client.post("/predict/", json={"modelkey": model_key, "record": {"x": "no", "c": "a"}})  # 400: not scored
    after = scrape(client)
    assert moved(before, after, "prediction_service_predictions_total") == {
        frozenset({"algorithm": "LogisticRegressionWrapper", "name": "", "version": ""}.items()): 6.0
    }


def test_predictions_by_reference_are_counted_by_name_and_version(client, model_key):
    """A reference's records carry the name and version that served them (a key's: empty labels),
    over /predict/ and V2; an alias moved moves the count to the new version."""
    registry = client.app.extensions["prediction_service"].registry
    name, keys = f"m-{uuid.uuid4().hex[:8]}", [uuid.uuid4().hex, uuid.uuid4().hex]
    for key in keys:
        registry.add_version(name, key, {**MODEL, "task": "binary"})
    try:
        before = scrape(client)
        client.post("/predict/", json={"modelkey": name, "records": RECORDS})
        client.post("/predict/", json={"modelkey": f"{name}@candidate", "record": RECORDS[0]})
        client.post("/predict/", json={"modelkey": model_key, "record": RECORDS[0]})
        inputs = [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]},
                  {"name": "c", "shape": [1, 1], "datatype": "BYTES", "data": ["a"]}]  # fmt: skip
        assert client.post(f"/v2/models/{name}/versions/2/infer", json={"inputs": inputs}).status_code == 200
        moved_to = client.request("PUT", f"/registry/{name}/aliases/production", json={"version": 2})
        assert moved_to.status_code == 200
        client.post("/predict/", json={"modelkey": name, "record": RECORDS[0]})
        after = scrape(client)
    finally:
        registry.delete_name(name)
        for key in keys:
            registry.store.delete(key)
    algorithm = "LogisticRegressionWrapper"
    assert moved(before, after, "prediction_service_predictions_total") == {
        frozenset({"algorithm": algorithm, "name": name, "version": "1"}.items()): 3.0,
        frozenset({"algorithm": algorithm, "name": name, "version": "2"}.items()): 3.0,
        frozenset({"algorithm": algorithm, "name": "", "version": ""}.items()): 1.0,
    }


def test_name_and_version_labels_are_bounded(redis_db):
    """Past MAX_MODEL_SERIES (name, version) pairs a new pair is counted as 'other': retraining
    every hour for a year must not grow a scrape without end."""
    from predictionservice import metrics as metrics_module
    from predictionservice.jobstore import JobStore

    class NoCache:
        hits = misses = 0
        watch = None

    counted = metrics_module.Metrics(JobStore(redis_db, 60), ModelStore(redis_db), NoCache(), redis_db, "q")
    limit = metrics_module.MAX_MODEL_SERIES
    for version in range(1, limit + 11):
        counted.predicted("A", 1, "bank", version)
    counted.predicted("A", 2, "bank", 1)  # a pair seen before the cap keeps its series
    counted.predicted("A", 1)
    get = counted.registry.get_sample_value
    families = [f for f in counted.registry.collect() if f.name == "prediction_service_predictions"]
    series = {s.labels["version"] for f in families for s in f.samples}
    assert len(series) == limit + 2  # the pairs, 'other' and the key's empty label
    assert get(PREDICTED, {"algorithm": "A", "name": "other", "version": "other"}) == 10
    assert get(PREDICTED, {"algorithm": "A", "name": "bank", "version": "1"}) == 3
    assert get(PREDICTED, {"algorithm": "A", "name": "", "version": ""}) == 1


def test_the_cache_hits_and_misses_and_the_model_count(client, model_key, base_params):
    before = scrape(client)
    for _ in range(3):
        client.post("/predict/", json={"modelkey": model_key, "record": RECORDS[0]})
    client.post("/predict/", json={"modelkey": "no-such-model", "record": RECORDS[0]})
    after = scrape(client)
    hits, misses = "prediction_service_model_cache_hits_total", "prediction_service_model_cache_misses_total"
    assert value(after, hits) - value(before, hits) == 2.0  # the first lookup compiled it
    assert value(after, misses) - value(before, misses) == 2.0  # ... and so did the unknown model
    store = ModelStore(redis.Redis.from_url(base_params["redis_url"].rsplit("/", 1)[0] + "/1"))
    assert value(after, "prediction_service_models") == store.count() >= 1
    store.delete(model_key)
    assert value(scrape(client), "prediction_service_models") == store.count()
    assert value(after, "prediction_service_redis_up") == 1.0


def test_the_model_watch_is_shown_healthy_once_subscribed(client, model_key):
    client.post("/predict/", json={"modelkey": model_key, "record": RECORDS[0]})  # starts the subscriber
    watch = client.app.extensions["prediction_service"].predictors.watch
    deadline = time.monotonic() + 5
    while not watch.healthy() and time.monotonic() < deadline:
        time.sleep(0.01)
    samples = scrape(client)
    assert value(samples, "prediction_service_model_watch_healthy") == 1.0
    assert value(samples, "prediction_service_model_watch_resets_total") == watch.resets >= 1


def test_metrics_off_is_a_404_and_nothing_is_counted(base_params):
    app = modelservice({**base_params, "metrics": False})
    quiet = InProcess(app)
    assert quiet.get("/health").status_code == 200
    response = quiet.get("/metrics")
    assert response.status_code == 404 and "setting 'metrics'" in response.json()["error"]["message"]
    assert app.extensions["prediction_service"].metrics is None
    assert quiet.get("/health").headers["X-Request-ID"]  # request ids do not depend on metrics


def test_a_scrape_with_redis_down_says_so_and_still_answers(tmp_path, base_params):
    server = embedded.start_redis(embedded.free_port(), tmp_path, persistent=False)
    try:
        app = InProcess(modelservice({**base_params, "redis_url": server.url, "redis_timeout": 1.0}))
        app.get("/health")
        assert value(scrape(app), "prediction_service_redis_up") == 1.0
    finally:
        server.stop()
    samples = scrape(app)
    assert value(samples, "prediction_service_redis_up") == 0.0
    assert value(samples, "prediction_service_http_requests_total", method="GET", route="/health", status="200") == 1
    assert not [name for name, _ in samples if name.startswith("prediction_service_jobs")]


# ------------------------------------------------------------- a training job, queued to completed


@pytest.fixture(scope="module")
def own_redis(base_params):
    """Databases 5 (jobs, queue) and 6 (models) of the session's Redis: no other worker polls them."""
    base = base_params["redis_url"].rsplit("/", 1)[0]
    clients = [redis.Redis.from_url(f"{base}/{db}") for db in (5, 6)]
    for c in clients:
        c.flushdb()
    yield {**base_params, "redis_url": f"{base}/5", "models_db": 6}
    for c in clients:
        c.flushdb()
        c.close()


@pytest.fixture(scope="module")
def queued(tmp_path_factory, own_redis, mongo_client):
    """A web server with no worker, a dataset uploaded through it and a training job submitted:
    the job stays queued until the test starts a worker."""
    web = Service(tmp_path_factory.mktemp("metrics-web"), own_redis, worker=False)
    db = f"t_metrics_{uuid.uuid4().hex[:8]}"
    rows, schema, _ = known_rows("logistic", 300, seed=3)
    try:
        assert web.request("PUT", f"/datasets/{db}/rows", json=rows).status_code == 200
        before = scrape(web)
        job = {"name": "LogisticRegressionWrapper", "inputCollection": f"{db}.rows", "schema": schema, "numFolds": 2}
        response = web.post("/train/", json=job, headers={"X-Request-ID": "trace-metrics-1"})
        assert response.status_code == 202, response.text
        yield web, response.json()["job_id"], before
    finally:
        web.stop()
        mongo_client.drop_database(db)


def training(samples: dict) -> dict[str, float]:
    return {
        status: value(samples, "prediction_service_jobs", kind="training", status=status)
        for status in ("PENDING", "STARTED", "SUBMITTED", "COMPLETED", "FAILED")
    }


def test_a_queued_job_is_pending_in_the_gauges_and_the_queue(queued):
    web, job_id, before = queued
    now = scrape(web)
    assert training(now)["PENDING"] == training(before)["PENDING"] + 1
    assert value(now, "prediction_service_queue_length") == value(before, "prediction_service_queue_length") + 1
    assert web.get(f"/jobs/{job_id}").json()["status"] == "PENDING"


def test_the_submitting_requests_id_is_in_the_job_record_and_the_access_log(queued):
    web, job_id, _ = queued
    assert web.get(f"/jobs/{job_id}").json()["request_id"] == "trace-metrics-1"
    log = web.logged(lambda log: '"POST /train/ HTTP/1.1" 202' in log)
    line = next(line for line in log.splitlines() if '"POST /train/ HTTP/1.1" 202' in line)
    assert line.endswith(" trace-metrics-1")


def test_the_job_gauges_follow_the_job_to_completed(queued, tmp_path_factory, own_redis):
    web, job_id, before = queued
    total = sum(training(before).values()) + 1
    worker = Service(tmp_path_factory.mktemp("metrics-worker"), own_redis, worker=True)
    seen = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            samples = scrape(web)
            counts = training(samples)
            assert sum(counts.values()) == total, counts  # the job is counted once, in one status
            status = web.get(f"/jobs/{job_id}").json()["status"]
            seen.append(status)
            if status in ("COMPLETED", "FAILED"):
                break
            time.sleep(0.3)
    finally:
        worker.stop()
    assert seen[-1] == "COMPLETED", web.get(f"/jobs/{job_id}").json()
    after = training(scrape(web))
    assert after["COMPLETED"] == training(before)["COMPLETED"] + 1
    assert after["PENDING"] == training(before)["PENDING"]
    samples = scrape(web)
    assert value(samples, "prediction_service_queue_length") == 0
    count = value(samples, "prediction_service_job_duration_seconds_count", kind="training")
    assert count == value(before, "prediction_service_job_duration_seconds_count", kind="training") + 1
    assert value(samples, "prediction_service_job_duration_seconds_sum", kind="training") > 0
    assert value(samples, "prediction_service_job_duration_seconds_bucket", kind="training", le="+Inf") == count
    assert value(samples, "prediction_service_models") == 1
