"""web/workercount.py: the background ping that counts the workers for /health, on a real Celery
app over the session's Redis (a database no worker listens on) and over a broker that does not
answer: a count is there without any request waiting for it, a broker down counts none and
breaks nothing, and the thread ends when stopped or when its count is dropped. (Workers that
answer are test_flow_workers.py's.)"""

from __future__ import annotations

import gc
import threading
import time

import pytest

from celeryapp import make_celery
from localservers import embedded
from predictionservice.config import load_parameters
from web.workercount import WorkerCount


def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)


def celery_on(url: str):
    return make_celery(load_parameters(environ={}, overrides={"redis_url": url}), set_as_current=False)


def pinging() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "worker-count"]


@pytest.fixture()
def quiet_broker(redis_url):
    return redis_url.rsplit("/", 1)[0] + "/13"  # no worker of the session listens on it


def test_the_first_question_starts_the_ping_and_no_worker_is_none(quiet_broker):
    count = WorkerCount(celery_on(quiet_broker), interval=0.1)
    try:
        assert count.names() == []  # never waits for the ping
        until(lambda: count._heard > 0)
        assert count.names() == []
    finally:
        count.stop()


def test_a_broker_that_does_not_answer_counts_no_workers():
    celery = celery_on(f"redis://127.0.0.1:{embedded.free_port()}/0")
    celery.conf.update(broker_connection_timeout=0.5, broker_connection_max_retries=1)  # 2 s, not kombu's 6
    count = WorkerCount(celery, interval=0.1)
    count.ping()  # raises nothing
    assert count._heard > 0 and count.names() == []
    count.stop()


def test_stop_ends_the_thread(quiet_broker):
    count = WorkerCount(celery_on(quiet_broker), interval=0.1)
    count.start()
    thread = count._thread
    count.stop(timeout=5)
    assert thread is not None and not thread.is_alive()


def test_a_dropped_count_stops_its_thread_at_the_next_tick(quiet_broker):
    before = set(pinging())
    count = WorkerCount(celery_on(quiet_broker), interval=0.1)
    count.start()
    (thread,) = set(pinging()) - before
    del count
    gc.collect()
    until(lambda: not thread.is_alive())
