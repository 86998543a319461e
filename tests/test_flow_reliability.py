"""Celery reliability with real processes: a pool process SIGKILLed mid-training, a job that keeps
losing its worker, a job past its time limit. Each stack here has Redis databases of its own, so
its worker never takes the session service's jobs."""

import os
import signal
import time
from pathlib import Path

import pytest

from helpers import JOB, private_stack
from localservers.embedded import child_pids
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect


@pytest.fixture(scope="module")
def fragile(tmp_path_factory, base_params, bank_sample):
    stack = private_stack(tmp_path_factory, base_params, "fragile", 2, job_max_attempts=2)
    yield stack
    stack.stop()


# A lighter grid than job.json (2 folds, 1 grid point): the point here is the worker's life cycle.
LIGHT_JOB = {**JOB, "numFolds": 2, "regParam": [0.01]}


def _submit(stack, source):
    response = stack.post("/train/", json={**LIGHT_JOB, "inputCollection": source})
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def _kill_pool_when_spark_runs(stack, job_id, attempt=1, timeout=240.0):
    """SIGKILL the worker's pool process once the job's given attempt is fitting (Spark work
    under way); its pid and the pids of its Spark JVMs. The record of a killed attempt still says
    'fitting': the attempt count tells the re-run apart, so an idle new pool process is never the
    one killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = stack.get(f"/jobs/{job_id}").json()
        assert status["status"] not in ("COMPLETED", "FAILED"), status
        fitting = status["status"] == "SUBMITTED" and status["message"].startswith("fitting fold")
        if fitting and status["attempts"] == attempt:
            pools = stack.pool_pids()
            assert len(pools) == 1, pools
            jvms = [pid for pid in child_pids(pools[0]) if _command(pid) == "java"]
            os.kill(pools[0], signal.SIGKILL)
            return pools[0], jvms
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the fitting stage")


def _wait_replaced(stack, old_pid, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pools = stack.pool_pids()
        if pools and old_pid not in pools:
            return
        time.sleep(0.2)
    raise AssertionError("the worker did not replace its pool process")


def test_a_pool_process_killed_mid_training_is_rerun_to_completion(fragile, bank_sample):
    job_id = _submit(fragile, bank_sample)
    killed, jvms = _kill_pool_when_spark_runs(fragile, job_id)
    _wait_replaced(fragile, killed)
    final, history = fragile.wait_job(job_id, timeout=600)
    assert final["status"] == "COMPLETED", final
    assert final["attempts"] == 2
    assert any("attempt 2 of 2: the previous worker process was lost" in s["message"] for s in history)
    # Idempotent: the re-run wrote the model under the same key, once.
    models = ModelStore(connect(fragile.params["redis_url"], fragile.params["models_db"]))
    assert list(models.keys()) == [job_id]
    assert final["model_key"] == job_id and final["metrics"]["auc"] >= 0.85
    # The killed process's Spark JVM exited with it (its stdin closed): no orphan left.
    assert jvms, "the pool process ran no Spark JVM when it was killed"
    assert [pid for pid in jvms if _command(pid) == "java"] == []


def test_a_job_that_keeps_losing_its_worker_ends_failed(fragile, bank_sample):
    job_id = _submit(fragile, bank_sample)
    for attempt in (1, 2):
        killed, _ = _kill_pool_when_spark_runs(fragile, job_id, attempt)
        _wait_replaced(fragile, killed)
    final, _ = fragile.wait_job(job_id, timeout=120)
    assert final["status"] == "FAILED"
    assert final["message"].startswith("gave up after 2 attempts: the worker process running this job was lost")
    assert final["attempts"] == 3


def test_a_job_past_its_time_limit_ends_failed_and_the_worker_recovers(
    tmp_path_factory, base_params, bank_collection, mongo_db
):
    # 60 s: the slow job takes many minutes; the light one after it (600 rows) starts a new Spark
    # session on a machine the other test stream keeps busy, in 15-20 s
    stack = private_stack(tmp_path_factory, base_params, "slow", 4, job_time_limit=60)
    try:
        slow = {**JOB, "inputCollection": bank_collection.full_name, "numFolds": 5, "tol": 1e-12, "iterations": 500,
                "regParam": [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1]}  # fmt: skip
        response = stack.post("/train/", json=slow)
        assert response.status_code == 202
        final, _ = stack.wait_job(response.json()["job_id"], timeout=150)
        assert final["status"] == "FAILED"
        assert final["message"] == "the job exceeded its time limit of 60 s and was stopped"
        # The pool process discarded its interrupted Spark session: the next job runs on a new one.
        mongo_db.small.insert_many(list(bank_collection.find({}, {"_id": 0}, limit=600)))
        response = stack.post("/train/", json={**LIGHT_JOB, "inputCollection": f"{mongo_db.name}.small"})
        final, _ = stack.wait_job(response.json()["job_id"], timeout=180)
        assert final["status"] == "COMPLETED", final
    finally:
        stack.stop()


def _command(pid: int) -> str | None:
    """A live process's command name; None once it is gone (or only a zombie is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return None if stat.rsplit(")", 1)[1].split()[0] == "Z" else stat[stat.index("(") + 1 : stat.rindex(")")]
