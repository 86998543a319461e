"""The prediction log in a real web server (CherryPy, modelserver.py) on a SecantusDB process of
its own: 8 clients for 20 s lose no entry (documents == answers); MongoDB stopped for 5 s in the
middle of a load: every request still answers, the loss is counted in /metrics (written + dropped
== answers) and logging resumes; a SIGTERM writes what is still queued before the process exits.
No worker: the model is stored directly (Redis databases 14 and 15 of the session's server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from helpers import ONE_FEATURE_MODEL, ROOT, KillableMongo, private_stack
from predictionclient import PredictionClient, PredictionServiceError
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect

pytestmark = pytest.mark.system  # a web server of its own
COLLECTION = "monitoring.predictions"
LOAD_SECONDS = 20.0


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    server = KillableMongo(tmp_path_factory.mktemp("plog-mongo"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, base_params, mongo):
    service = private_stack(tmp_path_factory, base_params, "prediction-log", 14, worker=False,
                            mongodb_uri=mongo.url, mongodb_timeout_ms=2000, prediction_log=True)  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(scope="module")
def model_key(stack):
    key = uuid.uuid4().hex
    ModelStore(connect(stack.params["redis_url"], stack.params["models_db"])).save(key, ONE_FEATURE_MODEL)
    return key


def counts(stack) -> dict[str, float]:
    text = stack.get("/metrics").text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("prediction_service_prediction_log_"):
            for sample in family.samples:
                name = sample.name.removeprefix("prediction_service_prediction_log_")
                found[name] = found.get(name, 0) + sample.value
    return found


def settled(stack, answers: int, timeout: float = 30.0) -> dict[str, float]:
    """The log's counts once every answer is written or counted lost."""
    deadline = time.monotonic() + timeout
    while True:
        found = counts(stack)
        if found["written_total"] + found["dropped_total"] >= answers and found["queue_depth"] == 0:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def load(stack, key: str, clients: int, seconds: float, prefix: str) -> tuple[int, list]:
    """clients threads predicting for seconds: the answers (all must be 200) and any failures."""
    answered, failures = [0] * clients, []
    stop_at = time.monotonic() + seconds

    def client(n: int) -> None:
        with requests.Session() as session:
            session.headers.update(stack.auth_headers())
            i = 0
            while time.monotonic() < stop_at:
                rid = f"{prefix}-{n}-{i}"
                try:
                    reply = session.post(stack.url + "/predict/", json={"modelkey": key, "record": {"x": 0.3}},
                                         headers={"X-Request-ID": rid}, timeout=10)  # fmt: skip
                except requests.RequestException as exc:
                    failures.append(repr(exc))
                    continue
                if reply.status_code != 200:
                    failures.append(reply.text)
                answered[n] += 1
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    return sum(answered), failures


def logged(mongo, prefix: str) -> int:
    db, collection = COLLECTION.split(".")
    with mongo.client(5000) as client:
        return client[db][collection].count_documents({"request_id": {"$regex": f"^{prefix}"}})


def test_under_load_every_answer_is_logged(stack, mongo, model_key):
    before = counts(stack)
    answers, failures = load(stack, model_key, 8, LOAD_SECONDS, "load")
    assert not failures, failures[:3]
    after = settled(stack, before["written_total"] + answers)
    assert after["dropped_total"] == before["dropped_total"] == 0
    assert after["written_total"] - before["written_total"] == answers
    assert logged(mongo, "load-") == answers
    print(f"{answers} answers in {LOAD_SECONDS} s with 8 clients, every one logged")


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="needs a MongoDB server of its own to stop")
def test_mongodb_down_for_5_s_fails_no_request_and_the_loss_is_counted(stack, mongo, model_key):
    before = counts(stack)
    result: dict = {}

    def clients() -> None:
        result["answers"], result["failures"] = load(stack, model_key, 4, 11.0, "outage")

    thread = threading.Thread(target=clients)
    thread.start()
    time.sleep(3.0)
    mongo.stop()  # SIGTERM: a SIGKILL could lose writes it had acknowledged, which no log can count
    time.sleep(5.0)
    mongo.restart()
    thread.join(60)
    assert not result["failures"], result["failures"][:3]
    answers = result["answers"]
    after = settled(stack, before["written_total"] + before["dropped_total"] + answers)
    written = after["written_total"] - before["written_total"]
    dropped = after["dropped_total"] - before["dropped_total"]
    assert dropped > 0 and written > 0, after
    assert written + dropped == answers, (written, dropped, answers)
    assert after["failed_writes_total"] > before["failed_writes_total"]
    assert logged(mongo, "outage-") >= written  # an insert cut by the stop may have been written whole
    # logging resumed: what is answered now is written
    again, failures = load(stack, model_key, 2, 1.0, "resumed")
    assert not failures
    settled(stack, after["written_total"] + after["dropped_total"] + again)
    assert logged(mongo, "resumed-") == again


def test_the_client_and_the_cli_send_feedback(stack, mongo, model_key, tmp_path):
    client = PredictionClient(stack.url, stack.params.get("auth_token") or None)
    rid = f"client-{uuid.uuid4().hex}"
    assert client.predict(model_key, {"x": 0.9}, request_id=rid)["label"] == "yes"
    client.predict(model_key, [{"x": 0.1}, {"x": 0.2}], request_id=rid + "b")
    deadline = time.monotonic() + 10
    while logged(mongo, rid) < 3:  # the single record and the batch's two
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.feedback(rid, "no") == {"stored": 1, "documents": 1}
    assert client.feedback_many({f"{rid}b/0": "no", f"{rid}b/1": "yes"}) == {"stored": 2, "documents": 2}
    with pytest.raises(PredictionServiceError) as refused:
        client.feedback(rid, "perhaps")
    assert refused.value.status == 400 and "'perhaps'" in str(refused.value)
    cli = [sys.executable, "-m", "predictionclient", "--url", stack.url, "--json", "feedback"]
    done = subprocess.run([*cli, rid, "yes"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and json.loads(done.stdout) == {"stored": 1, "documents": 1}, done.stderr
    labels = tmp_path / "labels.csv"
    labels.write_text(f"request_id,label\n{rid}b/0,yes\n{rid}b/1,no\n")
    done = subprocess.run([*cli, "--file", str(labels)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and json.loads(done.stdout)["stored"] == 2, done.stderr
    done = subprocess.run([*cli, "no-such-request", "yes"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1 and "'no-such-request'" in done.stderr
    db, collection = COLLECTION.split(".")
    with mongo.client(5000) as mongo_client:
        found = {d["request_id"]: d["feedback"]["label"] for d in mongo_client[db][collection].find(
            {"request_id": {"$regex": f"^{rid}"}})}  # fmt: skip
    assert found == {rid: "yes", f"{rid}b/0": "yes", f"{rid}b/1": "no"}


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="needs a MongoDB server of its own to pause")
def test_a_stopping_server_writes_what_is_queued(stack, mongo, model_key):
    """MongoDB paused (SIGSTOP): answers wait in the queue; SIGTERM to the web server, MongoDB
    resumed a moment later: the server writes every one of them before it exits. Last: it ends
    the module's server."""
    os.killpg(mongo.server.pid, signal.SIGSTOP)
    try:
        answers, failures = load(stack, model_key, 2, 0.5, "stopping")  # within the 2 s socket timeout
        assert not failures and answers > 0
        assert counts(stack)["queue_depth"] > 0
        web = stack.children["web"]
        os.kill(web.pid, signal.SIGTERM)
        time.sleep(0.2)
    finally:
        os.killpg(mongo.server.pid, signal.SIGCONT)
    web.wait(30)
    assert logged(mongo, "stopping-") == answers
