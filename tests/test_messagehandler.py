"""messagehandler.py: a job's progress reports, written to a real job store (Redis db 9).

The task is a tiny stand-in for a bound Celery task: like Celery's, its ``request`` is
thread-local, so only the thread that runs the task sees the job id.
"""

import threading

import pytest

from localservers import embedded
from messagehandler import MessageHandler
from predictionservice.jobstore import COMPLETED, FAILED, STARTED, SUBMITTED, JobStore
from predictionservice.redisclient import connect


class FakeRequest(threading.local):
    id = None


class FakeTask:
    def __init__(self, job_id, jobs, fail_update_state=False):
        self.request = FakeRequest()
        self.request.id = job_id  # set in this thread only, as Celery does for the running task
        self.jobs = jobs
        self.calls = []
        self.fail_update_state = fail_update_state

    def update_state(self, task_id=None, state=None, meta=None):
        self.calls.append({"task_id": task_id, "state": state, "meta": meta})
        if self.fail_update_state:
            raise ConnectionError("result backend away")


@pytest.fixture()
def jobs(redis_db):
    return JobStore(redis_db, 600)


def test_the_fake_request_is_thread_local(jobs):
    task = FakeTask("j1", jobs)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(task.request.id))
    thread.start()
    thread.join()
    assert seen == [None] and task.request.id == "j1"


def test_update_writes_the_record_and_mirrors_non_final_states(jobs):
    jobs.create("j1", "training", {})
    task = FakeTask("j1", jobs)
    handler = MessageHandler(task)
    assert handler.jobs is jobs
    assert handler.update(STARTED, "job j1 started", 0.0) is True
    assert handler.update(SUBMITTED, "reading datasets.bank", 0.05) is True
    record = jobs.get("j1")
    assert (record["status"], record["message"], record["progress"]) == (SUBMITTED, "reading datasets.bank", 0.05)
    assert task.calls == [
        {"task_id": "j1", "state": STARTED, "meta": {"message": "job j1 started", "progress": 0.0}},
        {"task_id": "j1", "state": SUBMITTED, "meta": {"message": "reading datasets.bank", "progress": 0.05}},
    ]


@pytest.mark.parametrize("final", [COMPLETED, FAILED])
def test_final_states_are_recorded_but_not_mirrored(jobs, final):
    jobs.create("j1", "training", {})
    task = FakeTask("j1", jobs)
    handler = MessageHandler(task)
    assert handler.update(final, "the end", model_key="j1") is True
    record = jobs.get("j1")
    assert (record["status"], record["message"], record["model_key"]) == (final, "the end", "j1")
    assert task.calls == []


def test_an_update_on_a_final_job_returns_false_and_does_not_call_update_state(jobs):
    jobs.create("j1", "training", {})
    task = FakeTask("j1", jobs)
    handler = MessageHandler(task)
    handler.update(COMPLETED, "done", 1.0)
    assert handler.update(SUBMITTED, "a late step", 0.5) is False
    assert handler.update(FAILED, "a late failure") is False
    assert task.calls == []
    record = jobs.get("j1")
    assert (record["status"], record["message"]) == (COMPLETED, "done")


def test_an_update_of_a_job_without_record_returns_false(jobs):
    task = FakeTask("never-created", jobs)
    assert MessageHandler(task).update(STARTED, "hello", 0.0) is False
    assert task.calls == []
    assert jobs.get("never-created") is None


def test_job_id_is_the_id_captured_at_construction_even_from_another_thread(jobs):
    jobs.create("j1", "training", {})
    task = FakeTask("j1", jobs)
    handler = MessageHandler(task)
    results = []

    def report():  # what Spark's CrossValidator does: report from a thread of its own
        results.append((handler.job_id, task.request.id, handler.update(SUBMITTED, "fold 2 of 3", 0.4)))

    thread = threading.Thread(target=report)
    thread.start()
    thread.join()
    assert results == [("j1", None, True)]
    record = jobs.get("j1")
    assert (record["status"], record["message"], record["progress"]) == (SUBMITTED, "fold 2 of 3", 0.4)
    assert task.calls == [{"task_id": "j1", "state": SUBMITTED, "meta": {"message": "fold 2 of 3", "progress": 0.4}}]


def test_a_failing_update_state_does_not_undo_the_record(jobs):
    jobs.create("j1", "training", {})
    task = FakeTask("j1", jobs, fail_update_state=True)
    assert MessageHandler(task).update(SUBMITTED, "step", 0.2) is True
    assert len(task.calls) == 1
    assert jobs.get("j1")["status"] == SUBMITTED


def test_progress_is_a_submitted_step(jobs):
    jobs.create("j1", "training", {})
    task = FakeTask("j1", jobs)
    MessageHandler(task).progress("fitting fold 1 of 3", 0.15)
    record = jobs.get("j1")
    assert (record["status"], record["message"], record["progress"]) == (SUBMITTED, "fitting fold 1 of 3", 0.15)
    assert [h["status"] for h in jobs.history("j1")] == [SUBMITTED]


def test_an_explicit_job_store_wins_over_the_tasks(jobs, redis_db):
    other = JobStore(redis_db, 60)
    other.create("j1", "training", {})
    task = FakeTask("j1", jobs=None)
    handler = MessageHandler(task, other)
    assert handler.jobs is other
    assert handler.update(STARTED, "started", 0.0) is True
    assert jobs.get("j1")["status"] == STARTED  # same database: the one record moved


def test_a_redis_blip_does_not_kill_the_job_and_its_final_state_lands(tmp_path):
    """Issue 11, finding 16: Redis away for a moment made the progress update raise inside
    CrossValidator (the job died) and the FAILED update raise too (the record stayed SUBMITTED).
    A step is skipped; the final state is retried until Redis is back (the same data: AOF)."""
    port = embedded.free_port()
    server = embedded.start_redis(port, tmp_path, persistent=True)
    client = connect(server.url, timeout=0.5)
    jobs = JobStore(client, 600)
    jobs.create("blip", "training", {})
    handler = MessageHandler(FakeTask("blip", jobs))
    handler.update(STARTED, "job blip started", 0.0)
    server.stop()
    restarted: list = []
    back = threading.Timer(1.0, lambda: restarted.append(embedded.start_redis(port, tmp_path, persistent=True)))
    try:
        assert handler.update(SUBMITTED, "fitting fold 2 of 3", 0.4) is False  # skipped, not raised
        back.start()
        assert handler.update(COMPLETED, "model trained", 1.0) is True  # retried until Redis answered
        back.join()
        record = jobs.get("blip")
        assert (record["status"], record["message"]) == (COMPLETED, "model trained")
        assert [h["status"] for h in jobs.history("blip")] == [STARTED, COMPLETED]
    finally:
        back.cancel()
        if back.ident is not None:
            back.join()
        for started in restarted:
            started.stop()
        client.close()
