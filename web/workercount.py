"""The Celery workers that answer, counted by one background ping for ``/health``.

A Celery ping is a broadcast that waits for answers (half a second at least), holds a pooled
broker connection while its producer takes another, and asked from every request thread it hung
the web server for good: 12 clients polling ``/health`` took all of kombu's connections and each
thread then waited for one more (issue 25). So one daemon thread of each web process pings, on a
broker connection of its own, every ``worker_ping_interval`` seconds, and ``/health`` reads what
it last heard: no request waits for the workers, however many ask.

The server starts the thread and stops it when it stops; an app served otherwise (in process,
in tests) starts it at its first question. The thread holds its count only weakly: an app that is
dropped stops its thread at the next tick.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

log = logging.getLogger(__name__)

PING_TIMEOUT = 0.5  # seconds a ping waits for the workers' answers


class WorkerCount:
    """The names of the workers that answered the last ping, while that ping is recent."""

    def __init__(self, celery: Any, interval: float):
        self.celery = celery
        self.interval = interval
        # a count older than this is not reported: the pinging thread is stuck or gone
        self.stale_after = 3 * interval + PING_TIMEOUT + 5.0
        self._names: list[str] = []
        self._heard = 0.0  # monotonic time of the last ping that completed; 0 before the first
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def names(self) -> list[str]:
        """The workers that answered the last ping; none when it is stale or yet to come."""
        if self._thread is None:
            self.start()
        if time.monotonic() - self._heard > self.stale_after:
            return []
        return list(self._names)

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=_run, args=(weakref.ref(self), self._stop), name="worker-count", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop pinging (the server's shutdown); a ping under way ends within its own timeout."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def ping(self) -> None:
        """One ping on a broker connection of its own (never one of the pool's request threads
        share), its answers kept; a broker that does not answer counts no workers."""
        try:
            with self.celery.connection_for_write() as connection:
                answers = self.celery.control.ping(timeout=PING_TIMEOUT, connection=connection) or []
            names = sorted(name for answer in answers for name in answer)
        except Exception as exc:  # no broker: no workers to report
            log.debug("worker ping failed: %s", exc)
            names = []
        self._names, self._heard = names, time.monotonic()


def _run(ref: weakref.ref[WorkerCount], stop: threading.Event) -> None:
    """The pinging thread: a ping, a wait, again, until stopped or its count is dropped (the count
    is looked up afresh at every tick, never held across a wait)."""
    while not stop.is_set():
        count = ref()
        if count is None:
            return
        count.ping()
        interval = count.interval
        del count
        stop.wait(interval)
