"""A job's life on a worker through the worker's own stops and its store's faults, with real
processes: a clean stop of the worker (SIGTERM to its process group: Celery's warm shutdown, the
Spark JVM killed with it) gives the running job back to the queue with its attempts unchanged; a
Redis SIGKILLed and restarted on its AOF mid-training neither fails the job for a lost worker nor
loses a stored model; ``DELETE /jobs/<id>`` cancels a queued or a running job.

The stack here has a persistent redis-server of its own (so it can be killed and restarted), a
worker and a web server; MongoDB is the session's."""

from __future__ import annotations

import os
import signal
import time

import pytest

from helpers import JOB, ONE_FEATURE_MODEL, Service
from localservers import embedded
from predictionclient import PredictionClient, PredictionServiceError
from predictionservice.jobstore import JobStore, queue_position
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect

# A light grid (2 folds, 1 point) on bank-full: ~20 s of Spark work, long enough to be interrupted.
LIGHT_JOB = {**JOB, "numFolds": 2, "regParam": [0.01], "inputCollection": "datasets.bank"}
QUICK = {"job_heartbeat_interval": 2.0, "job_heartbeat_timeout": 12.0, "job_reaper_interval": 2.0}


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    """A persistent redis-server (AOF, fsync every second): [port, data directory, the server]."""
    port, data = embedded.free_port(), tmp_path_factory.mktemp("redis-aof")
    holder = [port, data, embedded.start_redis(port, data, persistent=True)]
    yield holder
    holder[2].stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, base_params, own_redis, bank_collection):
    started = Service(tmp_path_factory.mktemp("shutdown"), {**base_params, "redis_url": own_redis[2].url, **QUICK})
    yield started
    started.stop()


@pytest.fixture()
def worker_up(stack):
    """The stack's worker running (a test before may have stopped it)."""
    if "worker" in stack.exited():
        stack.restart("worker")
    stack.wait_healthy(timeout=90)
    return stack


def store(stack) -> JobStore:
    return JobStore(connect(stack.params["redis_url"]), 3600)


def submit(stack, job=LIGHT_JOB) -> str:
    answer = stack.post("/train/", json=job)
    assert answer.status_code == 202, answer.text
    return answer.json()["job_id"]


def wait_fitting(stack, job_id: str, timeout: float = 240.0) -> dict:
    """The job's record once Spark fits (its worker process beats): mid-training."""
    jobs, deadline = store(stack), time.monotonic() + timeout
    record = jobs.get(job_id) or {}
    while not (record.get("owner") and "fitting" in record.get("message", "")):
        assert time.monotonic() < deadline and record.get("status") not in ("COMPLETED", "FAILED"), record
        time.sleep(0.2)
        record = jobs.get(job_id) or {}
    return record


def test_a_clean_stop_mid_training_gives_the_job_back_and_the_next_worker_completes_it(worker_up, bank_sample):
    """Issue 25, section 1: the job ended 'FAILED: internal error (KeyError): 'p'' (billiard's
    SIGTERM handler raised SystemExit inside a py4j call; the next call read its stale answer), or
    was re-run as a lost worker's, attempts counting up."""
    stack = worker_up
    # job.json's grid (10 fits) on a ninth of the rows: a long fitting stage, read twice in seconds
    job_id = submit(stack, {**JOB, "inputCollection": bank_sample})
    assert wait_fitting(stack, job_id)["attempts"] == 1
    worker = stack.children["worker"]
    os.killpg(worker.pid, signal.SIGTERM)  # what ServiceProcesses.stop, make run and systemd do
    assert worker.wait(60) == 0, stack.log("worker")[-3000:]
    status = stack.get(f"/jobs/{job_id}").json()
    assert status["status"] == "PENDING", (status, stack.log("worker")[-3000:])
    assert status["attempts"] == 0, status  # the stop used up no attempt
    assert status["message"].startswith("waiting in queue"), status  # its message is back on the queue
    assert queue_position(connect(stack.params["redis_url"]), stack.params["queue_name"], job_id) is not None

    stack.restart("worker")
    final, history = stack.wait_job(job_id, timeout=300)
    assert final["status"] == "COMPLETED", final
    assert final["attempts"] == 1, final
    assert any("the worker running it was stopped" in step["message"] for step in history), history
    assert not any("previous worker process was lost" in step["message"] for step in history), history


STORED = ONE_FEATURE_MODEL


def test_a_redis_restart_mid_training_neither_fails_the_job_for_a_lost_worker_nor_loses_a_model(worker_up, own_redis):
    """Issue 25, sections 3.6 and 4: Redis SIGKILLed and restarted on its AOF while a job trains.
    The job ended FAILED 'the worker running this job was lost and its queued message is gone'
    (Celery terminated it on the broker connection loss, and its message was not restored) and
    never ran again."""
    stack = worker_up
    port, data, server = own_redis
    models = ModelStore(connect(stack.params["redis_url"], stack.params["models_db"]))
    models.save("kept-before-the-restart", STORED)
    job_id = submit(stack)
    wait_fitting(stack, job_id)
    before = stack.get("/models/").json()["models"]
    assert "kept-before-the-restart" in {m["model_key"] for m in before}
    time.sleep(1.5)  # the AOF is written every second
    server.process.kill()
    server.stop()
    time.sleep(3)  # a restart takes a moment: every client notices the outage
    own_redis[2] = embedded.start_redis(port, data, persistent=True)

    final, history = stack.wait_job(job_id, timeout=300)
    assert final["status"] == "COMPLETED", (final, history)
    after = {m["model_key"]: m for m in stack.get("/models/").json()["models"]}
    assert {m["model_key"] for m in before} | {job_id} == set(after)
    for key in after:
        assert stack.get(f"/models/{key}").status_code == 200, key
    assert models.load("kept-before-the-restart")[0]["coefficients"] == [2.0]
    assert final["attempts"] == 1, history


def test_delete_cancels_a_queued_and_a_running_job_and_refuses_an_ended_or_unknown_one(worker_up):
    """Issue 25, 3.8: no way to cancel a job. DELETE /jobs/<id>: a queued job never runs; a running
    one's Spark work stops and it ends FAILED as cancelled, with who and when; an ended job is 409,
    an unknown id 404. Through the Python client as well. It runs after the Redis restart on
    purpose: a worker that lived through an outage still sees a cancel."""
    stack = worker_up
    client = PredictionClient(stack.url)
    running, queued = submit(stack), submit(stack)
    wait_fitting(stack, running)

    answer = stack.request("DELETE", f"/jobs/{queued}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "FAILED" and answer.json()["message"].startswith("cancelled at ")
    assert "request id" in answer.json()["cancelled"]["by"], answer.json()

    cancelled = client.cancel(running)
    assert cancelled["status"] == "FAILED" and cancelled["message"].startswith("cancelled at "), cancelled
    deadline = time.monotonic() + 60  # the worker looks every second and cancels its Spark job group
    while f"job {running} stopped: it was cancelled" not in stack.log("worker"):
        history = stack.get(f"/jobs/{running}", params={"history": "1"}).json().get("history")
        assert time.monotonic() < deadline, (history, stack.log("worker")[-3000:])
        time.sleep(0.5)
    final, history = stack.wait_job(running)
    assert final == {**cancelled, "updated_at": final["updated_at"]}, (final, cancelled)
    assert not any(step["status"] == "COMPLETED" for step in history), history
    assert stack.get(f"/models/{running}").status_code == 404
    assert stack.get(f"/jobs/{queued}", params={"history": "1"}).json()["history"][-1]["status"] == "FAILED"
    assert f"job {queued} STARTED" not in stack.log("worker")  # the queued one never ran

    with pytest.raises(PredictionServiceError) as ended:
        client.cancel(running)
    assert ended.value.status == 409 and ended.value.code == "conflict", ended.value.message
    assert "already ended FAILED" in ended.value.message
    for unknown in ("0123456789abcdef0123456789abcdef", "not-a-job-id"):
        answer = stack.request("DELETE", f"/jobs/{unknown}")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", answer.text
