"""sparkprogress.py: the fold callback moves a job through its folds, from any number of threads."""

import threading

import pytest

from predictionservice.sparkprogress import fold_progress


class Recorder:
    """What a MessageHandler is to the callback: something with progress(message, fraction)."""

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    def progress(self, message, fraction):
        with self.lock:
            self.seen.append((message, fraction))


def test_each_fit_moves_the_job_one_step_and_the_last_says_done():
    handler = Recorder()
    step = fold_progress(handler, folds=3, grid=2)
    for _ in range(6):
        step()
    messages = [m for m, _ in handler.seen]
    assert messages[0] == "fitting fold 1 of 3 (1 of 6 fits done)"
    assert messages[2] == "fitting fold 2 of 3 (3 of 6 fits done)"
    assert messages[-1] == "cross-validation done (6 fits)"
    fractions = [f for _, f in handler.seen]
    assert fractions == sorted(fractions) and fractions[0] > 0.15 and fractions[-1] == pytest.approx(0.85)


def test_fits_reported_from_several_threads_are_each_counted_once():
    """CrossValidator evaluates from several threads when its parallelism is above one."""
    handler = Recorder()
    step = fold_progress(handler, folds=5, grid=40)
    threads = [threading.Thread(target=lambda: [step() for _ in range(50)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(handler.seen) == 200
    fractions = [f for _, f in handler.seen]
    assert fractions == sorted(fractions)  # the count and its report move together, under one lock
    assert handler.seen[-1] == ("cross-validation done (200 fits)", pytest.approx(0.85))
