"""The prediction log (docs/API.md, "Traffic, the prediction log, feedback and drift"): every
answered request's records and answers, written to MongoDB by a background thread, never in the
request's way. No web framework: the core's ``Predictions`` hands each answered request to
``PredictionLog.log`` (a tuple put on a bounded queue, nothing encoded), and the writer thread
turns it into documents and inserts them in batches.

One document per record, the format the drift monitor and POST /feedback/ read::

    {request_id, time, model: {name, version, model_key}, variant: "answer"|"shadow",
     record, answer, latency_ms}

``request_id`` is the request's X-Request-ID for a single record (``/predict/``'s ``record``, a
one-row V2 request), ``<id>/<i>`` for the i-th (0-based) record of a batch; ``model``'s name and
version are null for a request by model key; ``answer`` is the record's answer as /predict/
answers it (without ``modelkey`` and ``model``, which the document says already); ``time`` is a
BSON date (UTC) of the answer. Feedback is stored on the documents later (``feedback``).

What cannot be logged is counted, never waited for: a request answered while the queue is full
(``queue_full``), documents MongoDB did not take (``write_failed``: down, or a document it
refuses), a document BSON cannot hold (``unencodable``), a request answered after the writer was
stopped (``stopped``). ``collector()`` shows the counts to /metrics.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bson
import pymongo
import pymongo.errors
from bson.raw_bson import RawBSONDocument
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from predictionservice.backgroundqueue import STOP_SECONDS, BackgroundQueue
from predictionservice.config import ConfigError

log = logging.getLogger(__name__)

ANSWER, SHADOW = "answer", "shadow"  # a document's variant: what the caller got, or a shadow score
REASONS = ("queue_full", "write_failed", "unencodable", "stopped")  # why documents were not logged
PREFIX = "prediction_service_prediction_log_"


@dataclass(frozen=True)
class LogSettings:
    """The settings of the log (picked out of the whole settings by ``config.pick``)."""

    mongodb_uri: str
    prediction_log_collection: str = "monitoring.predictions"
    prediction_log_sample: float = 1.0
    prediction_log_retention_days: int = 0
    prediction_log_queue_size: int = 10_000
    prediction_log_batch_size: int = 500
    prediction_log_linger_seconds: float = 0.05
    mongodb_timeout_ms: int = 5000

    def __post_init__(self) -> None:
        if not 0.0 <= self.prediction_log_sample <= 1.0:
            raise ConfigError(f"prediction_log_sample must be between 0 and 1, not {self.prediction_log_sample}")
        for name in ("prediction_log_queue_size", "prediction_log_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if not 0.0 <= self.prediction_log_linger_seconds <= 10.0:
            raise ConfigError("prediction_log_linger_seconds must be between 0 and 10")
        if self.prediction_log_retention_days < 0:
            raise ConfigError("prediction_log_retention_days must be 0 (keep) or more")
        split_collection(self.prediction_log_collection)


def split_collection(name: str) -> tuple[str, str]:
    """'<database>.<collection>' as its two parts (a ConfigError when it is not that)."""
    db, _, collection = name.partition(".")
    if not db or not collection:
        raise ConfigError(f"prediction_log_collection must be '<database>.<collection>', not {name!r}")
    return db, collection


def log_collection(client: pymongo.MongoClient, name: str) -> Any:
    db, collection = split_collection(name)
    return client[db][collection]


class PredictionLog:
    """The bounded queue of answered requests and the thread that writes them (a
    ``BackgroundQueue``: started by the first request logged, stopped by ``stop``, which writes
    what is queued first)."""

    def __init__(self, chosen: LogSettings, client: pymongo.MongoClient | None = None):
        self.settings = chosen
        self.sample = chosen.prediction_log_sample
        self.batch_size = chosen.prediction_log_batch_size
        timeout = chosen.mongodb_timeout_ms
        self.client = client or pymongo.MongoClient(
            chosen.mongodb_uri, serverSelectionTimeoutMS=timeout, connectTimeoutMS=timeout, socketTimeoutMS=timeout
        )
        self.collection = log_collection(self.client, chosen.prediction_log_collection)
        self._queue: BackgroundQueue[tuple] = BackgroundQueue(
            "prediction-log", self._write, chosen.prediction_log_queue_size, REASONS, batch_size=self.batch_size,
            linger_seconds=chosen.prediction_log_linger_seconds,
        )  # fmt: skip
        self._indexed = False
        self.written = 0  # documents inserted
        self.failed_writes = 0  # inserts that failed (their documents are counted in dropped)

    @property
    def dropped(self) -> dict[str, int]:
        """Documents not logged, by reason (the queue's counts: a request counts its records)."""
        return self._queue.dropped

    # --- the request's side: cheap, never blocks ---------------------------------------------

    def log(
        self,
        request_id: str,
        model: Mapping[str, Any],
        records: Sequence[Any],
        answers: Sequence[Any],
        latency_ms: float,
        *,
        single: bool,
        variant: str = ANSWER,
    ) -> None:
        """Queues one answered request (records and their answers, in order; ``single``: its one
        record is logged under the request's id itself). Drawn out by the sample rate; dropped and
        counted (one per record) when the queue is full or the writer stopped. Nothing is copied
        or encoded here."""
        if self.sample < 1.0 and random.random() >= self.sample:
            return
        entry = (time.time(), request_id, model, variant, records, answers, latency_ms, single)
        self._queue.put(entry, len(answers))

    def depth(self) -> int:
        """Requests waiting to be written."""
        return self._queue.depth()

    # --- the writer ---------------------------------------------------------------------------

    def start(self) -> None:
        self._queue.start()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Writes what is queued (for up to timeout seconds), then ends the writer. Requests logged
        after are counted as dropped (``stopped``)."""
        self._queue.close(timeout)

    def flush(self, timeout: float = STOP_SECONDS) -> bool:
        """Waits until everything queued so far is written (or counted lost): for tests and the
        benchmark. False after timeout."""
        return self._queue.flush(timeout)

    def _write(self, entries: list[tuple]) -> None:
        raw = []
        for entry in entries:
            for document in documents(entry):
                try:
                    raw.append(RawBSONDocument(bson.encode(document)))
                except (bson.errors.InvalidDocument, OverflowError, TypeError, ValueError):
                    self._queue.drop("unencodable")
        if not raw:
            return
        self._ensure_indexes()
        try:
            self.collection.insert_many(raw, ordered=False)
        except pymongo.errors.BulkWriteError as exc:  # some were refused, the others are written
            inserted = exc.details.get("nInserted", 0)
            self._failed(len(raw) - inserted, exc)
            self.written += inserted
            return
        except pymongo.errors.PyMongoError as exc:  # down: the batch is lost, counted
            self._failed(len(raw), exc)
            return
        self.written += len(raw)

    def _failed(self, count: int, exc: Exception) -> None:
        self.failed_writes += 1
        self._queue.drop("write_failed", count)
        log.warning("prediction log: %d documents not written: %s", count, type(exc).__name__)

    def _ensure_indexes(self) -> None:
        """The log's indexes, made by the first write that reaches MongoDB (tried again at each
        write until then): by request id (feedback), by model and time (the monitor), and the
        retention's TTL on time."""
        if self._indexed:
            return
        try:
            ensure_indexes(self.collection, self.settings.prediction_log_retention_days)
        except pymongo.errors.PyMongoError as exc:
            log.warning("prediction log: indexes not made yet: %s", exc)
            return
        self._indexed = True

    def collector(self) -> LogCollector:
        return LogCollector(self)


def documents(entry: tuple) -> Iterator[dict[str, Any]]:
    """A queued request's documents, one per record (see the module's doc)."""
    at, request_id, model, variant, records, answers, latency_ms, single = entry
    when = datetime.fromtimestamp(at, UTC)
    model = {"name": model.get("name"), "version": model.get("version"), "model_key": model["model_key"]}
    for i, (record, answer) in enumerate(zip(records, answers, strict=True)):
        if "error" in answer:  # a record an on_error "report" could not score: nothing was predicted
            continue
        yield {
            "_id": bson.ObjectId(),
            "request_id": request_id if single else f"{request_id}/{i}",
            "time": when,
            "model": model,
            "variant": variant,
            "record": record,
            "answer": answer,
            "latency_ms": latency_ms,
        }


def ensure_indexes(collection: Any, retention_days: int) -> None:
    """The indexes the service's own reads use, and no more: every index is paid on every insert
    of every logged record. POST /feedback/ finds documents by request id and the drift monitor a
    version's by its model key and time; a name's version is selected by its model key too (the
    registry names it), so no index on the name and version is kept beside that one."""
    collection.create_index("request_id")
    collection.create_index([("model.model_key", 1), ("time", 1)])
    if retention_days <= 0:
        return
    seconds = int(retention_days * 86400)
    try:
        collection.create_index("time", expireAfterSeconds=seconds, name="time_ttl")
    except pymongo.errors.OperationFailure:  # made before with another retention: changed in place
        collection.database.command(
            "collMod", collection.name, index={"name": "time_ttl", "expireAfterSeconds": seconds}
        )


class LogCollector:
    """The log's counts for /metrics, read at each scrape."""

    def __init__(self, log: PredictionLog):
        self.log = log

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        found = self.log
        yield CounterMetricFamily(
            PREFIX + "written", "Prediction log documents written to MongoDB.", value=found.written
        )
        dropped = CounterMetricFamily(
            PREFIX + "dropped",
            "Prediction log documents not written, by reason: queue_full (the writer's queue was full), "
            "write_failed (MongoDB did not take them), unencodable, stopped (answered after the writer stopped).",
            labels=["reason"],
        )
        for reason in REASONS:
            dropped.add_metric([reason], found.dropped[reason])
        yield dropped
        yield CounterMetricFamily(PREFIX + "failed_writes", "Prediction log inserts that failed.",
                                  value=found.failed_writes)  # fmt: skip
        yield GaugeMetricFamily(PREFIX + "queue_depth", "Answered requests waiting for the prediction log's writer.",
                                value=found.depth())  # fmt: skip
