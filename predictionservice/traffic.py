"""Shadow and split traffic of a named model (docs/API.md, "Traffic, the prediction log, feedback
and drift"): what ``PUT /registry/<name>/traffic`` stored (registry.Registry.set_traffic) put to
work on the requests to the bare name. No web framework.

* **Split**: the name's alias (the candidate) answers ``percent`` % of the requests to ``<name>``.
  Which ones: a stable hash of the request's ``routing_key`` when it has one (so a customer
  sticks to one variant: the same key always lands on the same side for a given name and
  percent), else a random draw. The answer's ``model`` says which version answered.
* **Shadow**: the candidate also scores every request to ``<name>``, off the request's thread:
  ``Shadow.submit`` puts the request on a bounded queue (the setting ``shadow_queue_size``) and
  one worker thread scores it and hands the answer to the prediction log with the variant
  ``shadow`` and the request's own id(s). A full queue drops the shadow score (counted), never
  delays the answer; a candidate that fails (a record it cannot read, a model gone) is counted,
  the answer never sees it. Without the prediction log there is nowhere for a shadow's answer to
  go: nothing is scored, each request is counted as dropped (``not_logged``).

A reference with an explicit alias or version (``name@alias``, ``name/3``) and a model key are
never rerouted: references.References attaches a ``Traffic`` only to a bare name's resolution,
read from the registry with its aliases (so a change reaches every replica with the change
channel's eviction), and only while the alias points to another version than production.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from predictionservice.backgroundqueue import STOP_SECONDS, BackgroundQueue
from predictionservice.predictionlog import SHADOW

if TYPE_CHECKING:
    from predictionservice.references import Resolved

log = logging.getLogger(__name__)

SPLIT = "split"
DROP_REASONS = ("queue_full", "not_logged", "stopped")  # why a shadow score was not made
PREFIX = "prediction_service_shadow_"
_HASH_SPACE = float(1 << 64)


@dataclass(frozen=True)
class Traffic:
    """A bare name's traffic setting, resolved: the mode, a split's percent, and the candidate."""

    mode: str
    percent: float
    candidate: Resolved


def to_candidate(name: str, routing_key: str | None, percent: float) -> bool:
    """Whether a split sends this request to the candidate: ``percent`` % of routing keys, each
    always the same way (a hash of the name and the key, uniform on [0, 1)); a random draw
    without a key."""
    if routing_key is None:
        return random.random() * 100.0 < percent
    digest = hashlib.blake2b(f"{name}\0{routing_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE * 100.0 < percent


def routed(resolved: Resolved | None, routing_key: str | None) -> tuple[Resolved | None, Resolved | None]:
    """(the version that answers, the version that shadows it or None) for a resolved reference."""
    traffic = resolved.traffic if resolved is not None else None
    if traffic is None:
        return resolved, None
    if traffic.mode == SHADOW:
        return resolved, traffic.candidate
    return (traffic.candidate if to_candidate(resolved.name, routing_key, traffic.percent) else resolved), None


class Shadow:
    """The bounded queue of requests a candidate shadows and the one thread that scores them (a
    ``BackgroundQueue``, started by the first request shadowed). ``delay`` (seconds each score
    waits first) is for tests only: a slow candidate."""

    def __init__(self, predictors: Any, prediction_log: Any, queue_size: int, delay: float = 0.0):
        self.predictors = predictors
        self.log = prediction_log
        self.delay = delay
        self._queue: BackgroundQueue[tuple] = BackgroundQueue("shadow", self._score_all, queue_size, DROP_REASONS)
        self._lock = threading.Lock()
        self.scored = 0  # shadow scores made and handed to the log
        self.failed: dict[str, int] = {}  # shadow scores the candidate failed, by the error's code

    @property
    def dropped(self) -> dict[str, int]:
        """Requests not shadowed, by reason (the queue's counts)."""
        return self._queue.dropped

    @property
    def started(self) -> bool:
        """Whether the worker thread was started (by a request put on the queue)."""
        return self._queue.started

    def submit(
        self,
        request_id: str | None,
        candidate: Resolved,
        records: Sequence[Any],
        top: int | None,
        *,
        single: bool,
        one: bool,
    ) -> None:
        """Queue a request for the candidate (``one``: scored as /predict/ scores its ``record``;
        ``single``: logged under the request's id itself). Never blocks."""
        if self.log is None or request_id is None:
            self._queue.drop("not_logged")
            return
        self._queue.put((request_id, candidate, records, top, single, one))

    def depth(self) -> int:
        return self._queue.depth()

    def start(self) -> None:
        self._queue.start()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Scores what is queued (for up to timeout seconds), then ends the worker; requests
        shadowed after are dropped (``stopped``). Call it before the log's stop."""
        self._queue.close(timeout)

    def flush(self, timeout: float = STOP_SECONDS) -> bool:
        """Waits until everything queued so far is scored or failed: for tests and the benchmark."""
        return self._queue.flush(timeout)

    def _score_all(self, items: list[tuple]) -> None:
        for item in items:  # one at a time: the queue's batch_size is 1
            self._score(*item)

    def _score(
        self, request_id: str, candidate: Resolved, records: Sequence[Any], top: int | None, single: bool, one: bool
    ) -> None:
        started = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        try:
            predictor = self.predictors.get(candidate.key)
            answers = [predictor.predict_one(records[0], top)] if one else predictor.predict(records, top)
        except Exception as exc:  # whatever the candidate does, the answer is not its business
            code = getattr(exc, "code", None)
            with self._lock:
                key = code if isinstance(code, str) else "internal_error"
                self.failed[key] = self.failed.get(key, 0) + 1
            log.debug("shadow %s of %s failed: %s", request_id, candidate.shown(), exc)
            return
        latency_ms = (time.perf_counter() - started) * 1000.0
        self.log.log(request_id, candidate.shown(), records, answers, latency_ms, single=single, variant=SHADOW)
        with self._lock:
            self.scored += 1

    def collector(self) -> ShadowCollector:
        return ShadowCollector(self)


class ShadowCollector:
    """The shadow's counts for /metrics, read at each scrape."""

    def __init__(self, shadow: Shadow):
        self.shadow = shadow

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        found = self.shadow
        yield CounterMetricFamily(PREFIX + "scored", "Shadow scores made by a candidate and handed to the prediction "
                                  "log (requests).", value=found.scored)  # fmt: skip
        dropped = CounterMetricFamily(
            PREFIX + "dropped",
            "Requests a candidate did not shadow, by reason: queue_full (the shadow's queue was full), "
            "not_logged (the prediction log is off: nowhere to put the answer), stopped.",
            labels=["reason"],
        )
        for reason in DROP_REASONS:
            dropped.add_metric([reason], found.dropped[reason])
        yield dropped
        failed = CounterMetricFamily(
            PREFIX + "failed", "Shadow scores the candidate failed (the answer was not affected), by error code.",
            labels=["error"],
        )  # fmt: skip
        with found._lock:
            counts = dict(found.failed)
        for code, count in sorted(counts.items()):
            failed.add_metric([code], count)
        yield failed
        yield GaugeMetricFamily(PREFIX + "queue_depth", "Requests waiting for the shadow's worker.",
                                value=found.depth())  # fmt: skip
