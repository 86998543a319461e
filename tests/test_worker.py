"""worker.py: the worker's app (its tasks and settings) and a job's life cycle; with it the
messages a failed job ends with (predictionservice/failures.py) and the reaper (reaper.py).
The job life cycle itself (run_job) runs in real worker processes in test_flow_*.py."""

from __future__ import annotations

import time

import pymongo
import pymongo.errors
import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError

import reaper
import worker
from celeryapp import PREDICTALL_TASK, TRAIN_TASK, celery_settings, queue_key
from localservers import embedded
from predictionservice import failures
from predictionservice.exceptions import InvalidSchema
from predictionservice.jobstore import JobStore, job_key
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import with_db
from predictionservice.registry import Registry


def test_a_service_error_ends_the_job_with_its_own_message(base_params):
    assert failures.failure_message(InvalidSchema("label field 'y' not found"), base_params["job_time_limit"]) == (
        "label field 'y' not found"
    )


def test_time_limits_are_named_with_the_limit_even_inside_a_py4j_error(base_params):
    limit = base_params["job_time_limit"]
    expected = f"the job exceeded its time limit of {limit} s and was stopped"
    assert failures.failure_message(TimeLimitExceeded(), base_params["job_time_limit"]) == expected
    assert failures.failure_message(SoftTimeLimitExceeded(), base_params["job_time_limit"]) == expected

    class Py4JNetworkError(Exception):
        pass

    wrapped = Py4JNetworkError("Answer from Java side is empty")
    wrapped.cause = SoftTimeLimitExceeded()  # py4j keeps what it caught as .cause
    assert failures.failure_message(wrapped, base_params["job_time_limit"]) == expected


def test_a_lost_pool_process_and_a_spark_failure_read_as_such(base_params):
    assert "worker process running this job was lost" in failures.failure_message(
        WorkerLostError(), base_params["job_time_limit"]
    )
    spark_error = type("AnalysisException", (Exception,), {"__module__": "pyspark.errors"})(
        "Job aborted.\nTraceback ...\nValueError: could not convert 'x'\n"
    )
    assert (
        failures.failure_message(spark_error, base_params["job_time_limit"])
        == "the Spark job failed: ValueError: could not convert 'x'"
    )
    assert failures.failure_message(KeyError("k"), base_params["job_time_limit"]) == "internal error (KeyError): 'k'"


def test_the_root_cause_is_the_last_error_line_and_is_bounded():
    text = "py4j.Py4JException: outer\n  at x\npymongo.errors.OperationFailure: " + "z" * 1000
    cause = failures.root_cause(text)
    assert cause.startswith("OperationFailure: zzz") and len(cause) == 300
    assert failures.root_cause("") == ""
    assert failures.root_cause("no error word here\nsecond") == "no error word here"


def test_the_worker_app_has_both_tasks_on_the_service_queue(base_params):
    app = worker.make_worker(base_params)
    assert {TRAIN_TASK, PREDICTALL_TASK} <= set(app.tasks)
    assert app.conf.task_default_queue == base_params["queue_name"] == "prediction_service"
    assert app.tasks[TRAIN_TASK].params is base_params or app.tasks[TRAIN_TASK].params == base_params


def test_celery_settings_follow_celerys_advice_for_long_jobs(base_params):
    settings = celery_settings({**base_params, "job_time_limit": 3600})
    assert settings["task_acks_late"] and settings["task_reject_on_worker_lost"]
    assert settings["worker_prefetch_multiplier"] == 1
    assert settings["broker_transport_options"]["visibility_timeout"] > 3600
    assert settings["task_soft_time_limit"] < settings["task_time_limit"] == 3600


def test_a_pymongo_error_shown_in_a_job_names_no_internal_host(base_params):
    """Issue 11, finding 19: a job's message showed pymongo's text whole ('127.0.0.1:27017:
    [Errno 111] ...', every server of the topology)."""
    port = embedded.free_port()  # nothing listens there
    client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=200)
    try:
        with pytest.raises(pymongo.errors.ServerSelectionTimeoutError) as caught:
            client.admin.command("ping")
    finally:
        client.close()
    assert f"127.0.0.1:{port}" in str(caught.value)
    message = failures.failure_message(caught.value, base_params["job_time_limit"])
    assert message.startswith("internal error (ServerSelectionTimeoutError): <host>: [Errno 111]"), message
    assert "127.0.0.1" not in message and str(port) not in message


def test_the_queue_name_and_key_prefix_are_settings(base_params):
    """Two services sharing one Redis knowingly: each its own queue and its own keys, Celery's too."""
    params = {**base_params, "queue_name": "svc_b", "redis_key_prefix": "b:"}
    settings = celery_settings(params)
    assert settings["task_default_queue"] == "svc_b"
    assert settings["broker_transport_options"]["global_keyprefix"] == "b:"
    assert settings["result_backend_transport_options"]["global_keyprefix"] == "b:"
    assert queue_key(params) == "b:svc_b"
    assert "global_keyprefix" not in celery_settings(base_params)["broker_transport_options"]


LOST_ID = "0123456789abcdef0123456789abcdef"


def _silent_job(redis_db, params) -> JobStore:
    """A running job whose worker last beat long ago, in the stores' database (db 9)."""
    jobs = JobStore(redis_db, 3600)
    jobs.create(LOST_ID, "training", {})
    jobs.update(LOST_ID, "SUBMITTED", "fitting fold 1 of 2", 0.2)
    jobs.heartbeat(LOST_ID, "another-host:1")
    redis_db.zadd("jobs:alive", {LOST_ID: time.time() - 10 * params["job_heartbeat_timeout"]})
    return jobs


def test_the_reaper_takes_no_silence_during_a_redis_outage_for_a_lost_worker(base_params, redis_db):
    """Issue 25, 3.6: beats missed while Redis was away (or lost in its restart) are the outage's;
    within job_heartbeat_timeout of Redis starting, or of the reaper failing to reach it, the
    reaper leaves a silent job alone."""
    uptime = redis_db.info("server")["uptime_in_seconds"]
    params = {**base_params, "redis_url": with_db(base_params["redis_url"], 9), "job_heartbeat_timeout": uptime + 60}
    jobs = _silent_job(redis_db, params)
    app = worker.make_worker(params)
    assert reaper.reap(app, jobs, params) == []  # Redis has been up for less than the timeout
    quick = {**params, "job_heartbeat_timeout": 0.5}
    assert reaper.reap(app, jobs, quick, unreachable_at=time.time()) == []  # just now unreachable
    assert jobs.get(LOST_ID)["status"] == "SUBMITTED"
    assert reaper.reap(app, jobs, quick, unreachable_at=time.time() - 5) == [LOST_ID]  # silence while Redis heard
    assert jobs.get(LOST_ID)["message"] == (
        "the worker running this job was lost and its queued message is gone; submit it again"
    )


def test_a_job_whose_message_a_redis_restart_lost_fails_naming_the_restart(base_params, redis_db):
    params = {**base_params, "redis_url": with_db(base_params["redis_url"], 9), "job_heartbeat_timeout": 0.5}
    jobs = _silent_job(redis_db, params)
    uptime = redis_db.info("server")["uptime_in_seconds"]
    redis_db.hset(job_key(LOST_ID), "created_at", repr(time.time() - uptime - 100))  # submitted before Redis started
    assert reaper.reap(worker.make_worker(params), jobs, params) == [LOST_ID]
    final = jobs.get(LOST_ID)
    assert final["status"] == "FAILED"
    assert "Redis (the broker) restarted" in final["message"] and "after the job was submitted" in final["message"]


class _Request:
    id = LOST_ID


class _Task:
    """What a job's life cycle reads of its Celery task: its id, its job store, and the mirror of
    its state (a courtesy, not checked here)."""

    request = _Request()

    def __init__(self, jobs: JobStore):
        self.jobs = jobs

    def update_state(self, **_: object) -> None:
        pass


def test_a_job_cancelled_during_its_last_step_leaves_nothing_and_says_so(redis_db, caplog):
    """A cancel (DELETE /jobs/<id>) that lands after the worker's last look for it, while the job
    stores its model: the COMPLETED update is refused (the record ended FAILED as cancelled), what
    the job made is undone, and the worker's log says the job stopped for the cancel."""
    jobs = JobStore(redis_db, 3600)
    jobs.create(LOST_ID, "training", {})
    undone: list[str] = []

    def work(handler):
        jobs.cancel(LOST_ID, "a test")  # the DELETE arrives while the model is being stored
        return {"message": "trained", "undo": lambda: undone.append("model removed")}

    task = _Task(jobs)
    with caplog.at_level("INFO", logger=worker.log.name):
        worker._attempt(task, worker.MessageHandler(task, jobs), work, worker.StopRequest(LOST_ID))
    assert undone == ["model removed"]
    assert jobs.get(LOST_ID)["status"] == "FAILED" and jobs.get(LOST_ID)["message"].startswith("cancelled at ")
    assert f"job {LOST_ID} stopped: it was cancelled as its last step ran" in caplog.text


def test_jobs_queued_by_the_previous_version_still_run(service, xor_model):
    """A deploy may happen with jobs in the queue: the previous web process sent the job document
    itself (defaults applied) as the task's one argument. The new worker runs both kinds of such
    messages to COMPLETED, as it runs its own."""
    import uuid

    from celeryapp import make_celery
    from helpers import XOR_JOB
    from predictionservice.redisclient import connect
    from RandomForestWrapper import RandomForestWrapper

    params = service.params
    app = make_celery(params, set_as_current=False)
    jobs = JobStore(connect(params["redis_url"]), params["job_ttl"], params["redis_key_prefix"])

    def send_plain(task: str, document: dict) -> str:
        """As the previous web process did: the record, then the document itself as the message."""
        job_id = uuid.uuid4().hex
        jobs.create(job_id, "training" if task == TRAIN_TASK else "predictall", document)
        app.send_task(task, args=[document], task_id=job_id, queue=params["queue_name"])
        return job_id

    trained = send_plain(TRAIN_TASK, RandomForestWrapper.with_defaults({**XOR_JOB, "description": "queued before"}))
    final, _ = service.wait_job(trained, timeout=300)
    assert final["status"] == "COMPLETED" and final["kind"] == "training", final
    assert final["lineage"]["description"] == "queued before" and final["model_key"] == trained
    scored = send_plain(PREDICTALL_TASK, {"modelkey": xor_model, "inputCollection": "examples.xor",
                                          "outputCollection": "examples.xor_previous"})  # fmt: skip
    final, _ = service.wait_job(scored, timeout=300)
    assert final["status"] == "COMPLETED" and final["kind"] == "predictall", final
    assert final["rows"] > 0 and "into examples.xor_previous" in final["message"]


def test_a_named_jobs_undone_model_takes_its_version_and_aliases_with_it(redis_db):
    """A cancel that lands as a named job stores its model: the undo removes the model, its
    version and the production alias the first version took; a plain job's undo only the model."""
    store = ModelStore(redis_db)
    registry = Registry(store)
    registry.add_version("churn", LOST_ID, {"name": "LogisticRegressionWrapper", "task": "binary"})
    assert worker.version_words(store, LOST_ID, "churn") == "; version 1 of 'churn'"
    assert worker.version_words(store, LOST_ID, None) == ""
    worker.undo_model(store, LOST_ID, "churn")
    assert store.load(LOST_ID) is None
    entry = registry.show("churn")
    assert entry["versions"] == [] and entry["aliases"] == {}
    store.save("plain", {"name": "LogisticRegressionWrapper"})
    worker.undo_model(store, "plain", None)
    assert store.load("plain") is None
