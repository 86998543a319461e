"""predictionservice/backgroundqueue.py with real threads: items handled in order and in batches
by weight, a full queue dropping and counting at once (the worker held on an Event, never a
sleep), close draining what waits and counting what comes after, a handler that raises not ending
the worker, and no thread before the first item."""

from __future__ import annotations

import threading
import time

import pytest

from predictionservice.backgroundqueue import BackgroundQueue

pytestmark = pytest.mark.unit

REASONS = ("queue_full", "stopped", "mine")
WAIT = 10.0  # generous bound for a thread to reach a point: a hang fails, nothing is timed


class Recorder:
    """A handler that records its batches; while ``hold`` is clear it waits inside a batch (the
    worker busy), and ``entered`` tells the test it got there."""

    def __init__(self, fail_on: object = None):
        self.batches: list[list] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list) -> None:
        self.entered.set()
        assert self.hold.wait(WAIT)
        if self.fail_on in items:
            raise RuntimeError("a handler's own failure")
        self.batches.append(list(items))

    @property
    def handled(self) -> list:
        return [item for batch in self.batches for item in batch]


def busy(queue: BackgroundQueue, recorder: Recorder) -> None:
    """Puts one item and waits until the worker holds it (the queue is then empty)."""
    recorder.hold.clear()
    recorder.entered.clear()
    assert queue.put("held")
    assert recorder.entered.wait(WAIT)


def test_items_are_handled_in_order_by_one_named_daemon_thread():
    seen_by: set[str] = set()
    recorder = Recorder()

    def handle(items: list) -> None:
        seen_by.add(threading.current_thread().name)
        assert threading.current_thread().daemon
        recorder(items)

    queue = BackgroundQueue("unit-queue", handle, 100, REASONS)
    assert not queue.started
    for i in range(50):
        assert queue.put(i)
    assert queue.flush(WAIT)
    assert recorder.handled == list(range(50)) and seen_by == {"unit-queue"}
    assert queue.dropped == {"queue_full": 0, "stopped": 0, "mine": 0} and queue.depth() == 0
    assert queue.close(WAIT)


def test_a_batch_takes_what_waits_up_to_batch_size_by_weight():
    recorder = Recorder()
    queue = BackgroundQueue("batches", recorder, 100, REASONS, batch_size=10)
    busy(queue, recorder)
    for i in range(8):
        assert queue.put(i, weight=3)  # 3 + 3 + 3 + 3 >= 10: four a batch
    assert queue.depth() == 8
    recorder.hold.set()
    assert queue.flush(WAIT)
    assert recorder.batches == [["held"], [0, 1, 2, 3], [4, 5, 6, 7]]
    queue.close(WAIT)


def test_a_full_queue_drops_at_once_and_counts_by_weight():
    recorder = Recorder()
    queue = BackgroundQueue("full", recorder, 3, REASONS, batch_size=100)
    busy(queue, recorder)
    accepted = [queue.put(i, weight=2) for i in range(10)]
    assert accepted == [True] * 3 + [False] * 7  # the caller is never made to wait
    assert queue.dropped["queue_full"] == 14 and queue.depth() == 3
    queue.drop("mine", 5)
    assert queue.dropped == {"queue_full": 14, "stopped": 0, "mine": 5}
    recorder.hold.set()
    assert queue.flush(WAIT)
    assert recorder.handled == ["held", 0, 1, 2]
    queue.close(WAIT)


def test_close_drains_what_waits_and_drops_what_comes_after():
    recorder = Recorder()
    queue = BackgroundQueue("close", recorder, 100, REASONS)
    busy(queue, recorder)
    for i in range(20):
        queue.put(i)
    results: list[bool] = []
    closer = threading.Thread(target=lambda: results.append(queue.close(WAIT)))
    closer.start()
    deadline = time.monotonic() + WAIT
    while not queue.closing and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not queue.put("late", weight=4)  # close was asked: counted, not queued
    recorder.hold.set()
    closer.join(WAIT)
    assert results == [True] and recorder.handled == ["held", *range(20)]
    assert queue.dropped["stopped"] == 4 and not queue.put("later")
    assert queue.dropped["stopped"] == 5 and queue.depth() == 0


def test_close_gives_up_after_its_timeout_and_says_so():
    recorder = Recorder()
    queue = BackgroundQueue("stuck", recorder, 100, REASONS)
    busy(queue, recorder)
    queue.put("waiting")
    assert queue.close(0.05) is False  # the worker is held: what waits is not handled in time
    assert queue.depth() == 1
    recorder.hold.set()
    assert queue.flush(WAIT) and recorder.handled == ["held", "waiting"]


def test_a_handler_that_raises_does_not_end_the_worker():
    recorder = Recorder(fail_on="bad")
    queue = BackgroundQueue("raises", recorder, 100, REASONS)
    for item in ("a", "bad", "b"):
        queue.put(item)
        assert queue.flush(WAIT)
    assert recorder.handled == ["a", "b"]
    assert queue.close(WAIT)


def test_closing_an_unstarted_queue_starts_nothing():
    queue = BackgroundQueue("idle", Recorder(), 10, REASONS)
    queue.drop("mine")
    assert queue.close(WAIT) and not queue.started
    assert not queue.put("x") and not queue.started and queue.dropped == {"queue_full": 0, "stopped": 1, "mine": 1}


def test_the_reasons_must_hold_the_queue_s_own():
    with pytest.raises(ValueError, match="queue_full"):
        BackgroundQueue("bad", Recorder(), 10, ("stopped", "mine"))


def test_with_a_linger_items_put_one_by_one_go_in_one_batch():
    """Each item put after the last was handled: without a linger each is a batch of its own;
    with one, what comes within it joins the first item's batch (fewer, fuller handle calls)."""
    for linger, expected in ((0.0, [[0], [1], [2], [3]]), (WAIT, [[0, 1, 2, 3]])):
        recorder = Recorder()
        background = BackgroundQueue("lingering", recorder, 100, REASONS, batch_size=4, linger_seconds=linger)
        for i in range(4):
            background.put(i)
            if linger == 0.0:
                assert background.flush(WAIT)  # handled before the next is put
        assert background.flush(WAIT) and recorder.batches == expected, linger
        background.close()


def test_a_close_ends_the_linger_at_once_and_the_item_is_handled():
    recorder = Recorder()
    background = BackgroundQueue("closing", recorder, 100, REASONS, batch_size=100, linger_seconds=60.0)
    background.put("first")
    started = time.monotonic()
    assert background.close(WAIT)
    assert recorder.batches == [["first"]] and time.monotonic() - started < WAIT  # not the 60 s linger


def test_a_full_batch_ends_the_linger_and_the_rest_waits_for_the_next():
    """A linger of a minute: the batch that fills is handled at once (not after the minute), and
    what comes after it goes in the next batch, whose linger a close ends."""
    recorder = Recorder()
    background = BackgroundQueue("filling", recorder, 100, REASONS, batch_size=3, linger_seconds=60.0)
    started = time.monotonic()
    for i in range(3):
        background.put(i)
    assert background.flush(WAIT) and recorder.batches == [[0, 1, 2]]
    background.put(3)
    assert background.close(WAIT) and recorder.batches == [[0, 1, 2], [3]]
    assert time.monotonic() - started < 2 * WAIT  # neither batch waited out the minute
