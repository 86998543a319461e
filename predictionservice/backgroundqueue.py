"""A bounded queue with one daemon worker thread: work the request's thread hands off and must
never wait for (the prediction log's writes, a shadow's scores).

Why bounded, and why ``put`` never blocks: the request's thread is the one a caller waits on.
When the worker falls behind, waiting for room would pass its slowness on to every answer, and
an unbounded queue would pass it on to the process's memory instead. So a full queue drops the
item at once and counts it by reason (``queue_full``), and so does a queue that was closed
(``stopped``); the owner counts its own reasons (a failed write, say) with ``drop``. What is
dropped is always counted, so /metrics says how much was lost and why.

The worker starts with the first item put (a process that never logs or shadows has no idle
thread), takes the items in batches of up to ``batch_size`` (by weight: a request of n records
weighs n documents), and hands each batch to ``handle``. ``close`` drains the queue within a
timeout (also at interpreter exit), ``flush`` waits until what was put so far is handled (tests
and benchmarks).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
QUEUE_FULL, STOPPED = "queue_full", "stopped"  # the drops the queue counts itself
POLL_SECONDS = 0.1  # how often an idle worker looks whether it is asked to stop
STOP_SECONDS = 10.0  # how long a close waits for the queue to be handled
FLUSH_POLL_SECONDS = 0.005


class BackgroundQueue(Generic[T]):
    """Items put by any thread, handled in order by one worker thread named ``name``.

    ``reasons``: every reason a drop may be counted under (the dict ``dropped`` has each, from 0,
    so /metrics shows a reason before its first drop); it must hold ``queue_full`` and
    ``stopped``. ``handle`` gets a non-empty list of items; what it raises is logged and the
    worker goes on (a dead worker would turn every later item into a silent ``queue_full``)."""

    def __init__(
        self,
        name: str,
        handle: Callable[[list[T]], None],
        size: int,
        reasons: Iterable[str],
        *,
        batch_size: int = 1,
        poll_seconds: float = POLL_SECONDS,
        linger_seconds: float = 0.0,
    ):
        self.name = name
        self.handle = handle
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.linger_seconds = linger_seconds
        self.dropped = dict.fromkeys(reasons, 0)  # items (by weight) not handled, by reason
        missing = {QUEUE_FULL, STOPPED} - self.dropped.keys()
        if missing:
            raise ValueError(f"reasons must hold {sorted(missing)}")
        self._queue: queue.Queue[tuple[int, T]] = queue.Queue(size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._weight = 0  # the weight queued and not yet taken (under _lock)
        self._filled = threading.Event()  # set when _weight reaches batch_size, or on close: ends a linger

    # --- the putting side: cheap, never blocks --------------------------------------------------

    def put(self, item: T, weight: int = 1) -> bool:
        """Queues item (``weight``: what it counts for in a batch and in a drop). False, and the
        drop counted, when the queue is full or closed."""
        if self._stopping.is_set():
            self.drop(STOPPED, weight)
            return False
        if self._thread is None:
            self.start()
        try:
            self._queue.put_nowait((weight, item))
        except queue.Full:
            self.drop(QUEUE_FULL, weight)
            return False
        if self.linger_seconds > 0:
            with self._lock:
                self._weight += weight
                filled = self._weight >= self.batch_size
            if filled:
                self._filled.set()
        return True

    def drop(self, reason: str, count: int = 1) -> None:
        """Counts count items lost for reason (one of ``reasons``)."""
        with self._lock:
            self.dropped[reason] += count

    def depth(self) -> int:
        """Items waiting for the worker."""
        return self._queue.qsize()

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def closing(self) -> bool:
        """Whether close was asked: from then on every put is dropped (``stopped``)."""
        return self._stopping.is_set()

    # --- the worker -----------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the worker (once; ``put`` does it for the first item)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        atexit.register(self.close)

    def close(self, timeout: float = STOP_SECONDS) -> bool:
        """Handles what is queued (for up to timeout seconds), then ends the worker; items put
        after are dropped (``stopped``). False, and a warning, if items were left after timeout."""
        self._stopping.set()
        self._filled.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s: %d items not handled within %s s of the close", self.name, self.depth(), timeout)
            return False
        return True

    def flush(self, timeout: float = STOP_SECONDS) -> bool:
        """Waits until every item put so far is handled (or dropped by ``handle``). False after
        timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(FLUSH_POLL_SECONDS)
        return True

    def _run(self) -> None:
        while True:
            items = self._take()
            if items:
                try:
                    self.handle(items)
                except Exception:
                    log.exception("%s: %d items failed", self.name, len(items))
                finally:
                    for _ in items:
                        self._queue.task_done()
            elif self._stopping.is_set():
                return

    def _take(self) -> list[T]:
        """The next batch: the first item waited for (briefly, to notice a close), then what else
        comes within ``linger_seconds`` of it, up to batch_size by weight. Lingering trades a few
        milliseconds of the item's delay for fewer, fuller batches: each ``handle`` call has a
        fixed cost (an insert's round trip and command), paid by the process the answers come
        from. The linger is one wait on an event that only a full batch or a close sets, so the
        items put meanwhile wake nobody: waiting on the queue itself would wake this thread at
        every put, a thread switch the putting request pays for. Without a linger (0) the batch
        is what is queued already: batches grow with the load, and a quiet service handles each
        item at once."""
        try:
            weight, first = self._queue.get(timeout=self.poll_seconds)
        except queue.Empty:
            return []
        items, total = [first], weight
        if self.linger_seconds > 0:
            self._filled.wait(self.linger_seconds)
        while total < self.batch_size:
            try:
                weight, item = self._queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            total += weight
        if self.linger_seconds > 0:
            self._taken(total)
        return items

    def _taken(self, weight: int) -> None:
        """The weight just taken leaves the count; the event stays set only for a full batch."""
        with self._lock:
            self._weight -= weight
            if self._weight < self.batch_size and not self._stopping.is_set():
                self._filled.clear()
