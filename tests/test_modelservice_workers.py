"""Several Celery workers on one queue (distinct -n names): two jobs run at once, one on each,
and /health names every worker."""

from __future__ import annotations

import time

import pytest

from helpers import JOB, private_stack

LIGHT_JOB = {**JOB, "numFolds": 2, "regParam": [0.01]}


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, base_params, bank_over_http):
    stacks = [private_stack(tmp_path_factory, base_params, f"workers{i}", 10) for i in range(2)]
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


def test_two_trainings_run_at_once_on_two_workers(two_workers, bank_over_http):
    ids = []
    for stack in two_workers:
        answer = stack.post("/train/", json={**LIGHT_JOB, "inputCollection": bank_over_http})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["job_id"])
    results = [two_workers[0].wait_job(job_id) for job_id in ids]
    assert all(final["status"] == "COMPLETED" for final, _ in results), results
    (a_start, a_end), (b_start, b_end) = (running_interval(history) for _, history in results)
    assert a_start < b_end and b_start < a_end, "the two trainings did not overlap in time"
    logs = [stack.log("worker") for stack in two_workers]
    assert all("prediction_service.train" in log for log in logs), "each worker should have run one"
