"""web/: the blueprints, the guard, the one error envelope and the services accessor, in process
(Flask's test client: routes and handlers run exactly as under CherryPy, with no server)."""

from __future__ import annotations

import base64
import json

import pytest
import redis

from celeryapp import queue_key
from helpers import JOB, InProcess
from modelservice import BLUEPRINTS, modelservice
from predictionservice.datasets import schema_documents
from predictionservice.jobstore import JobStore
from predictionservice.mongotarget import CollectionRef
from web import pages
from web.services import Services, services


def test_each_resource_is_one_blueprint_of_module_level_views(client):
    assert {bp.name for bp in BLUEPRINTS} == {
        *(
            "jobs",
            "prediction",
            "feedback",
            "models",
            "registry",
            "datasets",
            "meta",
            "v2",
            "metrics",
            "keys",
            "audit",
            "monitor",
        )
    }
    # the pages: one blueprint per resource ('ui' serves '/', the token form and the static files)
    assert {bp.name for bp in pages.BLUEPRINTS} == {
        *(
            "ui",
            "model_pages",
            "job_pages",
            "training_pages",
            "dataset_pages",
            "key_pages",
            "registry_pages",
            "monitor_pages",
        )
    }
    endpoints = {rule.endpoint for rule in client.app.url_map.iter_rules()}
    assert {"jobs.submit_training", "prediction.predict", "models.show_model", "datasets.put_dataset"} <= endpoints
    assert "meta.health" in endpoints


def test_views_reach_their_collaborators_through_the_accessor(client):
    with client.app.app_context():
        assert isinstance(services(), Services)
        assert services() is client.app.extensions["prediction_service"]


def test_two_apps_share_nothing(base_params):
    first, second = modelservice(base_params), modelservice({**base_params, "auth_token": "t"})
    assert first.extensions["prediction_service"] is not second.extensions["prediction_service"]
    assert InProcess(first).get("/models/").status_code == 200
    assert InProcess(second).get("/models/").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no-such-route", 404, "not_found"),
        ("DELETE", "/predict/", 405, "method_not_allowed"),
        ("GET", "/predict", 405, "method_not_allowed"),  # the slashless twin
        ("GET", "/train", 405, "method_not_allowed"),
        ("POST", "/models", 405, "method_not_allowed"),
    ],
)
def test_routing_errors_are_the_error_envelope(client, method, path, status, code):
    answer = client.request(method, path)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code and set(answer.json()) == {"error"}
    if status == 405:
        assert "POST" in answer.headers["Allow"] or "GET" in answer.headers["Allow"]


def test_a_body_over_the_route_limit_is_413_before_it_is_read(client):
    limit = client.params["max_body_bytes"]
    answer = client.request(
        "POST",
        "/predict/",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": str(limit + 1)},
    )
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"
    assert str(limit) in answer.json()["error"]["message"]


def test_a_body_that_is_not_json_is_415_naming_what_to_send(client):
    answer = client.request("POST", "/predict/", data=b"modelkey=x", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert "Content-Type: application/json" in answer.json()["error"]["message"]


def test_a_bug_is_a_500_with_an_incident_id_and_no_trace(base_params, caplog):
    app = modelservice(base_params)

    @app.get("/boom")
    def boom():
        raise ZeroDivisionError("secret detail")

    answer = InProcess(app).get("/boom")
    assert answer.status_code == 500
    message = answer.json()["error"]["message"]
    assert message.startswith("internal error (incident ") and "secret" not in answer.text
    assert "Traceback" not in answer.text
    assert any("ZeroDivisionError" in (r.exc_text or "") for r in caplog.records)


# ------------------------------------------------------------------ issue 11, in process


WIDE = {str(i): i for i in range(10_001)}


def _job(**changes):
    return {**JOB, "inputCollection": "datasets.bank", **changes}


@pytest.mark.parametrize(
    ("host", "status"),
    [("127.0.0.1:5000", 200), ("localhost", 200), ("[::1]:8080", 200), ("LOCALHOST:1", 200),
     ("rebind.attacker.example", 400), ("127.0.0.1.nip.io:5000", 400), ("evil.example:127.0.0.1", 400)],
)  # fmt: skip
def test_only_the_servers_own_host_names_are_answered(client, host, status):
    """DNS rebinding: a page whose name resolves to 127.0.0.1 reaches a token-less loopback
    service with its own name in the Host header."""
    reply = client.get("/models/", headers={"Host": host})
    assert reply.status_code == status, reply.text
    if status == 400:
        assert reply.json()["error"]["code"] == "invalid_host" and "allowed_hosts" in reply.json()["error"]["message"]


def test_allowed_hosts_extend_the_host_names(base_params):
    named = InProcess(modelservice({**base_params, "allowed_hosts": ["predict.internal"]}))
    assert named.get("/health", headers={"Host": "predict.internal:5000"}).status_code == 200
    assert named.get("/health", headers={"Host": "other.internal"}).status_code == 400
    anything = InProcess(modelservice({**base_params, "allowed_hosts": ["*"]}))
    assert anything.get("/models/", headers={"Host": "other.internal"}).status_code == 200


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"regParam": [0.1 * i for i in range(1, 36)], "numFolds": 3}, "105 fits (35 grid points x 3 folds)"),
        ({"regParam": [0.1] * 10, "elasticNetParam": [0.5] * 5, "numFolds": 3}, "at most 100 per job (max_job_fits)"),
        ({"iterations": 5000}, "'iterations' is 5000; this server runs at most 1000 (max_iterations)"),
        (
            {
                "schema": {
                    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
                    "features": [{"key": "job", "values": WIDE}],
                }
            },
            "makes 10001 features",
        ),
    ],
)
def test_a_job_past_the_servers_caps_is_400_naming_the_cap(client, bank_collection, changes, words):
    reply = client.post("/train/", json=_job(**changes))
    assert reply.status_code == 400 and words in reply.json()["error"]["message"], reply.text


FOREST = {k: v for k, v in JOB.items() if k in ("inputCollection", "schema", "numFolds")}
HUNDRED_THOUSAND = {"no": 0, "yes": 1, **{f"c{i}": i for i in range(2, 100_000)}}  # bank's y, and more
FOREST = {**FOREST, "name": "RandomForestWrapper", "inputCollection": "datasets.bank"}


@pytest.fixture(scope="module")
def own_queue(base_params):
    """The app on a Redis database of its own, whose queue no worker reads: a job these tests
    should not be able to queue (without the caps) never reaches the session's worker."""
    url = base_params["redis_url"].rsplit("/", 1)[0] + "/6"
    queue = redis.Redis.from_url(url)
    yield InProcess(modelservice({**base_params, "redis_url": url}))
    queue.flushdb()
    queue.close()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (
            {"numTrees": [20, 500], "maxDepth": [5, 20]},
            "numTrees x 2^maxDepth is 500 x 2^20 = 524288000 nodes at most; this server grows at most 1048576 "
            "per fit (max_forest_nodes): lower numTrees or maxDepth (maxDepth 19 halves it)",
        ),
        ({"numTrees": [451], "maxDepth": [12]}, "451 x 2^12 = 1847296 nodes"),
        (
            {"schema": {"label": {"key": "y", "values": HUNDRED_THOUSAND}, "features": [{"key": "age"}]}},
            "the label maps 100000 classes; this server trains at most 1000 (max_label_classes)",
        ),
    ],
)
def test_a_model_past_the_servers_size_caps_is_400_naming_the_cap(own_queue, bank_collection, changes, words):
    """Issue 25, 3.8: a 100,000-class label map sat 11 minutes in Spark's planning, and 500 trees
    of depth 20 passed every other cap (some 800 times a 55 s job)."""
    reply = own_queue.post("/train/", json={**FOREST, **changes})
    assert reply.status_code == 400 and words in reply.json()["error"]["message"], reply.text


def test_a_forest_within_the_cap_is_queued(own_queue, bank_collection):
    forest = own_queue.post("/train/", json={**FOREST, "numTrees": [64], "maxDepth": [14]})  # 2^20 exactly
    assert forest.status_code == 202, forest.text


def test_one_client_holds_at_most_its_share_of_the_queue(base_params, bank_collection):
    """Issue 25, 3.8: one client could fill the queue (max_queued_jobs) for everyone. Each client
    address holds max_queued_jobs_per_client jobs waiting; a job that started frees its place."""
    url = base_params["redis_url"].rsplit("/", 1)[0] + "/5"  # a queue of its own: no worker reads it
    app = InProcess(modelservice({**base_params, "redis_url": url, "max_queued_jobs_per_client": 2}))
    queue = redis.Redis.from_url(url)
    queue.flushdb()

    def submit(address: str):
        return app.post("/train/", json=_job(), environ_base={"REMOTE_ADDR": address})

    try:
        first, second = submit("10.0.0.1"), submit("10.0.0.1")
        assert first.status_code == second.status_code == 202, first.text
        third = submit("10.0.0.1")
        assert third.status_code == 429 and third.headers["Retry-After"] == "30", third.text
        message = third.json()["error"]["message"]
        assert "2 jobs of this client (10.0.0.1) are waiting" in message and "max_queued_jobs_per_client" in message
        assert submit("10.0.0.2").status_code == 202  # another client still has its share
        JobStore(queue, 60).update(first.json()["job_id"], "STARTED", "taken by a worker")
        assert submit("10.0.0.1").status_code == 202
        assert submit("10.0.0.1").status_code == 429
        queue.delete(queue_key(base_params))  # the broker lost its queue (a restart without its data)
        assert submit("10.0.0.1").status_code == 202  # jobs that can never start do not hold the share
    finally:
        queue.flushdb()
        queue.close()


def test_a_full_queue_is_429_with_retry_after(base_params, bank_collection):
    """Issue 11, finding 4: 1,000 posts of 4 MB filled Redis. Jobs beyond max_queued_jobs wait
    at the client, and the job record keeps no second copy of the schema."""
    url = base_params["redis_url"].rsplit("/", 1)[0] + "/5"  # a queue of its own: no worker reads it
    app = InProcess(modelservice({**base_params, "redis_url": url, "max_queued_jobs": 2}))
    queue = redis.Redis.from_url(url)
    queue.flushdb()
    try:
        queue.rpush(queue_key(base_params), "waiting-1", "waiting-2")
        reply = app.post("/train/", json=_job())
        assert reply.status_code == 429 and reply.headers["Retry-After"] == "30", reply.text
        assert reply.json()["error"]["code"] == "too_many_requests" and "max_queued_jobs" in reply.text
        assert not [k for k in queue.scan_iter("job:*")]  # nothing recorded
        queue.lpop(queue_key(base_params))
        accepted = app.post("/train/", json=_job())
        assert accepted.status_code == 202, accepted.text
        record = JobStore(queue, 60).get(accepted.json()["job_id"])
        assert "schema" not in record["parameters"] and record["parameters"]["regParam"] == JOB["regParam"]
        message = json.loads(queue.lindex(queue_key(base_params), 0))
        (args, _, _) = json.loads(base64.b64decode(message["body"]))
        assert args[0]["document"]["schema"] == JOB["schema"]  # the one copy: the queued message (the typed job's)
    finally:
        queue.flushdb()
        queue.close()


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/0123456789abcdef0123456789abcdef:history",
        "/training/status/x:history",
        "/jobs/ABCDEF0123456789abcdef0123456789",
    ],
)
def test_a_job_id_of_another_form_is_404_not_a_redis_error(client, path):
    """Issue 11, finding 10: '<id>:history' reached the history list: WRONGTYPE, a 503."""
    reply = client.get(path)
    assert reply.status_code == 404 and "32 hexadecimal digits" in reply.json()["error"]["message"], reply.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/datasets/web_t/echo?mode=" + "m" * 20_000, b"a\n1\n"),
        ("GET", "/datasets/datasets/bank/schema?label=" + "l" * 20_000, None),
        ("GET", "/datasets/datasets/" + "b" * 250 + "/schema?label=y", None),
    ],
)
def test_a_long_query_value_is_not_echoed_back(client, bank_collection, method, path, body):
    """Issue 11, finding 11: a 20 KB ?mode= or ?label= came back as a 20 KB error."""
    reply = client.request(method, path, data=body, headers={"Content-Type": "text/csv"})
    assert 400 <= reply.status_code < 500 and len(reply.content) < 1000, reply.text[:300]


def test_a_scoring_job_into_its_own_input_spelt_as_a_uri_is_refused(client):
    host = client.params["mongodb_uri"].split("//", 1)[1].split("/", 1)[0]
    body = {
        "modelkey": "m",
        "inputCollection": "datasets.bank",
        "outputCollection": f"mongodb://{host}/datasets.bank?w=1",
    }
    reply = client.post("/predictall/", json=body)
    assert reply.status_code == 400 and "must differ from 'inputCollection'" in reply.text, reply.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/datasets/web_t/surrogates", b'[{"a": "\\ud800"}]'),
        ("/datasets/web_t/surrogates", b'[{"\\udc00": 1}]'),
        ("/train/", json.dumps(_job()).replace("datasets.bank", "datasets.b\\ud800").encode()),
        ("/predictall/", b'{"modelkey": "m", "inputCollection": "d.a", "outputCollection": "d.\\udfff"}'),
    ],
)
def test_a_lone_surrogate_is_400_naming_it(client, path, body):
    """Issue 11, finding 6: '\\ud800' has no UTF-8 form; MongoDB's encoder raised (a 500)."""
    method = "PUT" if path.startswith("/datasets") else "POST"
    reply = client.request(method, path, data=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and "lone UTF-16 surrogate" in reply.text, reply.text


def test_the_schema_endpoint_reads_a_sample_and_caps_classes_of_numbers(base_params, mongo_db):
    mongo_db.wide.insert_many([{"n": i, "x": float(i % 7), "c": "abc"[i % 3]} for i in range(1000)])
    path = f"/datasets/{mongo_db.name}/wide/schema"
    full = InProcess(modelservice(base_params))
    reply = full.get(path, params={"label": "n"})  # a number: a regression target, however many values
    assert reply.status_code == 200 and reply.json()["label"] == {"key": "n"}, reply.text
    reply = full.get(path, params={"label": "n", "task": "classification"})
    assert reply.status_code == 400 and "more than 100 distinct values" in reply.text, reply.text
    sampled = InProcess(modelservice({**base_params, "schema_sample_docs": 50}))
    reply = sampled.get(path, params={"label": "n", "task": "classification"})  # 50 documents: 50 classes
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["label"]["values"]) == 50
    assert reply.json()["features"] == [{"key": "x"}, {"key": "c", "values": {"a": 0, "b": 1, "c": 2}}]
    with sampled.app.app_context():
        with services().mongo.collection(CollectionRef(base_params["mongodb_uri"], mongo_db.name, "wide")) as coll:
            assert len(list(schema_documents(coll, 50))) == 50


def test_the_jobs_list_checks_its_query(client):
    assert isinstance(client.get("/jobs/").json()["jobs"], list)
    for query in ({"kind": "nope"}, {"status": "done"}, {"limit": "0"}, {"limit": "x"}, {"limit": "501"}):
        answer = client.get("/jobs/", params=query)
        assert answer.status_code == 400, query
        assert next(iter(query)) in answer.json()["error"]["message"]


def test_answers_are_compact_json_whatever_the_payload_holds():
    import numpy as np

    from web.jsonio import json_bytes

    payload = {"p": np.float64(0.25), "n": np.int64(3), "v": np.array([1.5, 2.0]), "s": "café", "l": [True, None]}
    assert json.loads(json_bytes(payload)) == {"p": 0.25, "n": 3, "v": [1.5, 2.0], "s": "café", "l": [True, None]}
    assert b" " not in json_bytes({"a": [1, 2], "b": {"c": 1}})
    assert json.loads(json_bytes({1: "x", "big": 2**70})) == {"1": "x", "big": 2**70}  # the standard encoder's
