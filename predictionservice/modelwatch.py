"""Model changes pushed to every web process, so a cached predictor needs no Redis call per request.

The model store publishes a model's key on its channel in the same transaction that saves or
deletes it, and the registry of named models publishes ``__registry__:<name>`` with each change
of a name (predictionservice.registry). A web process subscribes once (one connection, one daemon
thread) and evicts that key from its predictor cache, or that name's resolutions from its
references (predictionservice.references), as each message arrives: a sub-millisecond push instead of the version
token's ``HGET`` on every prediction (about 100 µs, most of what /predict/ cost over a bare
endpoint).

Pub/sub delivers only to connected subscribers, so the cache may trust itself only while the
subscription is known to be alive: ``healthy()`` is true from the moment the subscription is
confirmed until a ping goes unanswered for ``stale_after`` seconds or the connection drops. Then
the cache is emptied (messages may have been missed) and every lookup goes back to the per-request
version check until the subscription is back and confirmed (and the cache emptied once more, for
what changed in between). The thread holds its watch only weakly: a web app that is dropped (tests
build hundreds) stops its thread at the next tick.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)


class ModelWatch:
    """The subscription to a model store's change channel, and whether it can be trusted now."""

    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        on_change: Callable[[str], None],
        on_reset: Callable[[], None],
        ping_interval: float = 0.25,
    ):
        self.client = client
        self.channel = channel
        self.on_change = on_change
        self.on_reset = on_reset
        self.ping_interval = ping_interval
        self.stale_after = 4 * ping_interval
        self._heard = 0.0  # monotonic time of the last message or pong; 0 while unsubscribed
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.resets = 0  # times the cache was emptied because the subscription was lost or (re)made

    def healthy(self) -> bool:
        """True while the subscription is confirmed and heard from within stale_after seconds.
        The first call starts the subscriber (nothing starts at import or in the app factory)."""
        if self._thread is None:
            self.start()
        heard = self._heard
        return heard > 0.0 and time.monotonic() - heard < self.stale_after

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=_run, args=(weakref.ref(self), self._stop), name="model-watch", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _lost(self) -> None:
        if self._heard:
            log.warning("model change subscription lost: checking the version of each model per request")
        self._heard = 0.0
        self.resets += 1
        self.on_reset()

    def _heard_message(self, message: dict[str, Any], now: float) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            self.on_reset()  # what changed while nobody listened is forgotten, then trusted again
            self.resets += 1
            log.info("model change subscription on %s: cached predictors are trusted", self.channel)
        elif kind == "message":
            data = message.get("data")
            self.on_change(data.decode() if isinstance(data, bytes) else str(data))
        self._heard = now  # a pong, a message or the confirmation: the subscription is alive


def _session(ref: weakref.ref[ModelWatch], stop: threading.Event) -> None:
    """One subscription, until its connection fails, a ping goes unanswered, stop is set or the
    watch is gone (the watch is looked up afresh at every tick, never held across one)."""
    watch = ref()
    if watch is None:
        return
    pubsub, channel, interval = watch.client.pubsub(), watch.channel, watch.ping_interval
    del watch
    try:
        pubsub.subscribe(channel)
        pinged = started = time.monotonic()
        while not stop.is_set():
            message = pubsub.get_message(timeout=interval)
            watch, now = ref(), time.monotonic()
            if watch is None:
                return
            if message is not None:
                watch._heard_message(message, now)
            if now - (watch._heard or started) >= watch.stale_after:
                raise TimeoutError(f"no answer from Redis in {watch.stale_after} s")
            del watch
            if now - pinged >= interval:
                pubsub.ping()
                pinged = now
    finally:
        pubsub.close()


def _run(ref: weakref.ref[ModelWatch], stop: threading.Event) -> None:
    """The subscriber thread: subscribe, listen, and after a failure back off and subscribe again;
    ends when stopped or when its watch is gone."""
    backoff = 0.1
    while not stop.is_set():
        try:
            _session(ref, stop)  # returns at once when the watch is gone
            backoff = 0.1
        except Exception as exc:  # any failure of the subscription means: stop trusting the cache
            log.debug("model change subscription failed: %s", exc)
        watch = ref()
        if watch is None:
            return
        watch._lost()
        del watch
        stop.wait(backoff)
        backoff = min(backoff * 2, 2.0)
