"""Several Celery workers on one queue (distinct -n names): two jobs run at once, one on each,
/health names every worker, and a job whose worker is SIGKILLed (main process, pool and Spark)
is re-queued by the other worker's reaper and completes there."""

from __future__ import annotations

import os
import signal
import time

import pytest

from helpers import JOB, private_stack
from predictionservice.jobstore import JobStore
from predictionservice.redisclient import connect

LIGHT_JOB = {**JOB, "numFolds": 2, "regParam": [0.01]}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, base_params, bank_sample):
    quick = {"job_heartbeat_interval": 2.0, "job_heartbeat_timeout": 12.0, "job_reaper_interval": 2.0}
    stacks = [private_stack(tmp_path_factory, base_params, f"workers{i}", 10, **quick) for i in range(2)]
    deadline = time.monotonic() + 60  # the second worker joins the first one's broker
    while stacks[0].get("/health").json()["workers"] < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    yield stacks
    for stack in stacks:
        stack.stop()


def running_interval(history: list[dict]) -> tuple[str, str]:
    started = next(s["updated_at"] for s in history if s["status"] == "STARTED")
    ended = next(s["updated_at"] for s in history if s["status"] in ("COMPLETED", "FAILED"))
    return started, ended


def test_health_names_every_worker(two_workers):
    deadline = time.monotonic() + 30  # a ping answered late on a busy machine counts no worker
    health = two_workers[0].get("/health").json()
    while health["workers"] < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        health = two_workers[0].get("/health").json()
    assert health["workers"] == 2 and len(health["worker_names"]) == 2, (health, two_workers[1].log("worker")[-2000:])
    assert {s.worker_name.split("@")[0] for s in two_workers} == {n.split("@")[0] for n in health["worker_names"]}


def test_two_trainings_run_at_once_on_two_workers(two_workers, bank_sample):
    ids = []
    for stack in two_workers:
        answer = stack.post("/train/", json={**LIGHT_JOB, "inputCollection": bank_sample})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["job_id"])
    results = [two_workers[0].wait_job(job_id) for job_id in ids]
    assert all(final["status"] == "COMPLETED" for final, _ in results), results
    (a_start, a_end), (b_start, b_end) = (running_interval(history) for _, history in results)
    assert a_start < b_end and b_start < a_end, "the two trainings did not overlap in time"
    logs = [stack.log("worker") for stack in two_workers]
    assert all("prediction_service.train" in log for log in logs), "each worker should have run one"


def test_a_job_whose_worker_is_killed_completes_on_the_other_within_two_minutes(two_workers, bank_sample):
    first = two_workers[0]
    jobs = JobStore(connect(first.params["redis_url"]), 3600)
    answer = first.post("/train/", json={**LIGHT_JOB, "inputCollection": bank_sample})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    deadline = time.monotonic() + 120
    record = jobs.get(job_id) or {}
    while not (record.get("owner") and "fitting" in record.get("message", "")):
        assert time.monotonic() < deadline and record.get("status") not in ("COMPLETED", "FAILED"), record
        time.sleep(0.3)
        record = jobs.get(job_id) or {}
    pid = int(record["owner"].rsplit(":", 1)[1])
    victim = next(stack for stack in two_workers if pid in stack.pool_pids())
    os.killpg(victim.children["worker"].pid, signal.SIGKILL)  # main process, pool and its Spark JVM
    killed = time.monotonic()
    survivor = next(stack for stack in two_workers if stack is not victim)
    final, history = survivor.wait_job(job_id, timeout=120)
    assert final["status"] == "COMPLETED", final
    assert time.monotonic() - killed <= 120
    assert final["attempts"] == 2
    assert any("attempt 2 of" in step["message"] for step in history), history
