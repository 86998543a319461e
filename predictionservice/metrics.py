"""The service's Prometheus metrics: one registry per web app (never the process-global one, so
two apps in one process count apart), exposed by ``GET /metrics`` in the text format.

Counted in the web process as requests go by: HTTP requests by method, route template and
status, their durations by route template (never a raw id or path: a label per job id would grow
without end), and the records scored online by algorithm and, for a request that named a model by
a reference (``bank``, ``bank@production``, ``bank/3``), by the name and version that served it
(empty for a request by key). Names and versions are bounded per process: past
``MAX_MODEL_SERIES`` pairs, a new pair is counted as ``name="other", version="other"``.
Read from the stores at each scrape, so every web process and worker agrees: jobs by kind and
status, the Celery queue's length, job durations (the workers' outcomes, as the job store counts
them), the stored models, and the predictor cache's hits and misses. When Redis does not
answer, the scrape still answers with what the process counted and ``prediction_service_redis_up 0``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from predictionservice.jobstore import DURATION_BUCKETS, JobStore
from predictionservice.modelstore import ModelStore

PREFIX = "prediction_service_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # the route label of a request no route answers (404, 405)
# Online requests take milliseconds; the buckets reach a slow upload or a large batch.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Kombu's Redis transport keeps a queue's messages of priority p > 0 in the list 'queue\x06\x16p'.
_PRIORITY_SEP = "\x06\x16"
_PRIORITIES = (3, 6, 9)
# Distinct (name, version) label pairs a process gives series of its own: retraining makes a new
# version every time, and a series is never dropped, so past this many a new pair is OTHER's.
MAX_MODEL_SERIES = 200
OTHER = "other"


class Metrics:
    """The registry of one web app and what its request hooks and views count into it."""

    def __init__(self, jobs: JobStore, models: ModelStore, cache: Any, broker: redis.Redis, queue: str):
        # No '_created' series beside each counter and histogram: Prometheus derives resets itself,
        # and they would double a scrape's size (prometheus_client's switch is process-wide).
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            PREFIX + "http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.durations = Histogram(
            PREFIX + "http_request_duration_seconds",
            "Time from a request reaching the app to its answer, by route template.",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            PREFIX + "predictions",
            "Records scored online (/predict/ and V2 infer), by algorithm, and by the named model's name and "
            f"version that served a reference (empty for a model key; past {MAX_MODEL_SERIES} pairs, 'other').",
            ["algorithm", "name", "version"],
            registry=self.registry,
        )
        self.registry.register(StoreCollector(jobs, models, cache, broker, queue))
        self._monitor_gauges()
        # Each label set's series, found once: labels() takes a lock and builds a key on every
        # call, several microseconds a request (bench/bench_metrics.py). Bounded: the label
        # values are route templates, methods, statuses, algorithm names and at most
        # MAX_MODEL_SERIES (name, version) pairs.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._scored: dict[tuple[str, str, str], Any] = {}
        self._model_pairs: set[tuple[str, str]] = set()

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            series = (self.requests.labels(method, route, str(status)), self.durations.labels(route))
            self._series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    def predicted(self, algorithm: str, records: int, name: str = "", version: int | str = "") -> None:
        """records scored by a model of algorithm; name and version: the named model's that served
        a reference (empty for a model key)."""
        labels = (algorithm, name, str(version))
        series = self._scored.get(labels)
        if series is None:
            series = self._scored[labels] = self.predictions.labels(*self._bounded(labels))
        series.inc(records)

    def _bounded(self, labels: tuple[str, str, str]) -> tuple[str, str, str]:
        """The labels a series gets: a new (name, version) pair past MAX_MODEL_SERIES is OTHER's."""
        algorithm, name, version = labels
        if not name or (name, version) in self._model_pairs:
            return labels
        if len(self._model_pairs) >= MAX_MODEL_SERIES:
            return algorithm, OTHER, OTHER
        self._model_pairs.add((name, version))
        return labels

    def _monitor_gauges(self) -> None:
        """What the monitor's last report of each named model said (GET /registry/<name>/monitor)."""
        self.drifted_features = Gauge(
            PREFIX + "drift_features_drifted",
            "Features the last monitor report of a named model flagged drifted.",
            ["name"],
            registry=self.registry,
        )
        self.drift_max_psi = Gauge(
            PREFIX + "drift_max_psi",
            "The largest population stability index of a feature in the last monitor report of a named model.",
            ["name"],
            registry=self.registry,
        )
        self.live_quality = Gauge(
            PREFIX + "live_quality",
            "A held-out metric measured on the labelled predictions of the last monitor report of a named model "
            "('labelled': how many rows it covers).",
            ["name", "metric"],
            registry=self.registry,
        )

    def monitored(self, name: str, report: dict[str, Any]) -> None:
        """A monitor report made: the name's drift and live quality gauges take its figures."""
        features = report["drift"]["features"].values()
        self.drifted_features.labels(name).set(sum(1 for f in features if f["drifted"]))
        psis = [f["psi"] for f in features if f["psi"] is not None]
        self.drift_max_psi.labels(name).set(max(psis) if psis else 0.0)
        for metric, value in report["quality"].items():
            if isinstance(value, (int, float)):
                self.live_quality.labels(name, metric).set(value)
            else:  # undefined on this window (an AUC of one class): no stale figure stays
                with contextlib.suppress(KeyError):
                    self.live_quality.remove(name, metric)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class StoreCollector:
    """What a scrape reads from Redis (and the predictor cache's counters), fresh each time."""

    def __init__(self, jobs: JobStore, models: ModelStore, cache: Any, broker: redis.Redis, queue: str):
        self.jobs, self.models, self.cache, self.broker, self.queue = jobs, models, cache, broker, queue

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only: registering must not reach Redis

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(PREFIX + "model_cache_hits", "Predictor lookups served from the cache.",
                                  value=self.cache.hits)  # fmt: skip
        yield CounterMetricFamily(PREFIX + "model_cache_misses", "Predictor lookups that read the model store.",
                                  value=self.cache.misses)  # fmt: skip
        watch = self.cache.watch
        if watch is not None:
            yield GaugeMetricFamily(PREFIX + "model_watch_healthy", "1 while cached predictors are trusted on the "
                                    "model store's change channel, 0 while each prediction checks the version.",
                                    value=int(watch.healthy()))  # fmt: skip
            yield CounterMetricFamily(PREFIX + "model_watch_resets", "Times the predictor cache was emptied "
                                      "because the change subscription was lost or made again.",
                                      value=watch.resets)  # fmt: skip
        up = GaugeMetricFamily(PREFIX + "redis_up", "1 when Redis answered this scrape, else 0.")
        try:
            families = list(self._from_redis())
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_redis(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(PREFIX + "jobs", "Job records by kind and status.", labels=["kind", "status"])
        for (kind, status), count in self.jobs.counts().items():
            jobs.add_metric([kind, status], count)
        yield jobs
        with self.broker.pipeline(transaction=False) as pipe:
            for name in [self.queue, *(f"{self.queue}{_PRIORITY_SEP}{p}" for p in _PRIORITIES)]:
                pipe.llen(name)
            queued = sum(pipe.execute())
        yield GaugeMetricFamily(PREFIX + "queue_length", "Jobs waiting in the Celery queue.", value=queued)
        durations = HistogramMetricFamily(
            PREFIX + "job_duration_seconds", "Time from a job's submission to its outcome, by kind.", labels=["kind"]
        )
        for kind, (buckets, total, _count) in self.jobs.durations().items():
            cumulative, running = [], 0
            for bound, count in zip([*map(str, DURATION_BUCKETS), "+Inf"], buckets, strict=True):
                running += count
                cumulative.append((bound, running))
            durations.add_metric([kind], cumulative, sum_value=total)
        yield durations
        yield GaugeMetricFamily(PREFIX + "models", "Models in the model store.", value=self.models.count())
