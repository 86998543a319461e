"""The retraining scheduler: celery beat with redbeat (docs/API.md, "Named models", "Retraining").

    celery -A modelservice.celery beat -S scheduler.RetrainScheduler -l info

(the app's ``beat_scheduler`` names this class, so ``-S`` may be left out). Its schedule lives in
the service's Redis (redbeat's keys behind ``<redis_key_prefix>redbeat:``), so it survives a
restart of every process; any number of beat processes may run: redbeat's lock lets one fire
and keeps the others waiting (a killed one's lock expires after 5 x schedule_tick_seconds, then a
waiting one takes over), so a tick fires once.

A schedule's entry is a RedBeatSchedulerEntry named ``retrain:<name>`` running the task
``prediction_service.retrain`` with the name. RetrainScheduler runs that task where it fires,
in the beat process: a retrain only checks and queues a job (``Retrainer.retrain``, the very code
of ``POST /registry/<name>/retrain``, skip rule included), and sent to a worker it would wait
behind the training jobs it is meant to be skipped for. Plain ``redbeat.RedBeatScheduler`` works
too: it sends the task to the queue and a worker runs the same code (worker.py registers it).

A schedule with ``"when": "drift"`` checks first (predictionservice.driftcheck: the monitor over
the window since the last check) and retrains only when the window drifted.

``RedBeatSchedules`` is the schedules' backend for predictionservice.schedules (the web process's
PUT/GET/DELETE); ``state`` is what /health reports of the scheduler.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import fields
from datetime import timedelta
from functools import cached_property
from typing import Any

import redis
from celery import Celery
from celery.schedules import crontab, schedule
from redbeat import RedBeatScheduler, RedBeatSchedulerEntry
from redbeat.schedulers import get_redis

from celeryapp import RETRAIN_TASK, queue_key, redbeat_prefix
from modelfactory import ModelFactory
from predictionservice import submission
from predictionservice.alloweddbs import AllowedDatabases
from predictionservice.config import pick
from predictionservice.driftcheck import DriftCheck
from predictionservice.exceptions import RetrainSkipped, ServiceError
from predictionservice.jobqueue import JobQueue, Origin
from predictionservice.jobstore import JobStore, iso
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients, MongoTargets
from predictionservice.monitor import Monitor, MonitorSettings
from predictionservice.redisclient import connect
from predictionservice.registry import Registry
from predictionservice.retraining import SCHEDULE, Retrainer
from predictionservice.schedules import DRIFT

log = logging.getLogger("prediction_service.scheduler")

ENTRY = "retrain:"  # + name: a schedule's redbeat entry
TICK = "scheduler:tick"  # behind the key prefix: the running scheduler's last tick (JSON), for /health
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def parse(spec: dict[str, Any], app: Celery | None = None) -> Any:
    """Celery's schedule of {"every_seconds": n} or {"cron": "m h dom mon dow"}; ValueError naming
    the cron field that does not parse."""
    if "every_seconds" in spec:
        return schedule(timedelta(seconds=spec["every_seconds"]), app=app)
    values = spec["cron"].split()
    for number, (field, value) in enumerate(zip(CRON_FIELDS, values, strict=True), 1):
        try:
            crontab(**{field: value}, app=app)
        except ValueError as exc:
            raise ValueError(f"field {number} ({field.replace('_', ' ')}) {value!r}: {exc}") from None
    return crontab(**dict(zip(CRON_FIELDS, values, strict=True)), app=app)  # the fields together (31 2: never)


def _stamp(moment: Any) -> float | None:
    return moment.timestamp() if moment is not None else None


def next_run(every: Any, last_run_at: Any) -> float | None:
    """When a schedule fires next (epoch seconds): a period after its last run, or a cron's next
    minute after it; now when that is past (the next tick fires it)."""
    if last_run_at is None:
        return time.time()
    if isinstance(every, schedule) and not isinstance(every, crontab):
        due = last_run_at.timestamp() + every.run_every.total_seconds()
    else:  # a cron's next time is a whole minute: rounding takes the clock's reading out
        due = round(time.time() + every.remaining_estimate(last_run_at).total_seconds())
    return max(due, time.time())


class RedBeatSchedules:
    """The schedules' backend (predictionservice.schedules.Backend): redbeat entries in the
    service's Redis, through a Celery app with the service's settings (celeryapp)."""

    def __init__(self, app: Celery, queue: str):
        self.app = app
        self.queue = queue

    def parse(self, spec: dict[str, Any]) -> Any:
        return parse(spec, self.app)

    def _entry(self, name: str, every: Any = None, **more: Any) -> RedBeatSchedulerEntry:
        return RedBeatSchedulerEntry(
            ENTRY + name, RETRAIN_TASK, every, args=[name], options={"queue": self.queue}, app=self.app, **more
        )

    def save(self, name: str, every: Any) -> None:
        """The name's entry anew: its first run one period from now (not at once)."""
        self.delete(name)  # redbeat keeps an entry's last run when it is saved again
        self._entry(name, every, last_run_at=self.app.now()).save()

    def delete(self, name: str) -> None:
        self._entry(name).delete()

    def runs(self, name: str) -> tuple[float | None, float | None]:
        try:
            entry = RedBeatSchedulerEntry.from_key(self._entry(name).key, app=self.app)
        except KeyError:
            return None, None
        fired = entry.total_run_count > 0  # a new entry's last run is its creation (its first run a period on)
        return _stamp(entry.last_run_at) if fired else None, next_run(entry.schedule, entry.last_run_at)


def retrainer_of(params: dict[str, Any], send: Any) -> Retrainer:
    """A Retrainer built from the settings outside any web request, submitting as the web
    process does (the same checks, limits and databases allowed); send puts a task on the queue."""
    timeout, prefix = params["redis_timeout"], params["redis_key_prefix"]
    jobs_client = connect(params["redis_url"], timeout=timeout)
    jobs = JobStore(jobs_client, params["job_ttl"], prefix)
    registry = Registry(ModelStore(connect(params["redis_url"], params["models_db"], timeout), prefix))
    queue = JobQueue(
        jobs_client, jobs, queue_key(params), send, params["max_queued_jobs"], params["max_queued_jobs_per_client"]
    )
    limits = submission.TrainingLimits(**{f.name: params[f.name] for f in fields(submission.TrainingLimits)})
    mongo = MongoClients(params["mongodb_timeout_ms"])
    allowed = AllowedDatabases(jobs_client, prefix, params["datasets_allowed_dbs"])

    def exists(db: str) -> bool:
        with mongo.lease(params["mongodb_uri"]) as client:
            return db in client.list_database_names()

    resolve = allowed.guarding(pick(MongoTargets, params).resolve, exists)
    algorithms = ModelFactory(params["algorithms"]).algorithm_class

    def submit(document: Any, origin: Origin, job_id: str) -> str:
        return submission.submit_training(
            document, algorithms=algorithms, resolve=resolve, mongo=mongo, queue=queue, limits=limits,
            origin=origin, job_id=job_id,
        )  # fmt: skip

    return Retrainer(registry, jobs_client, prefix, params["job_ttl"], submit)


def sender(app: Celery, queue: str) -> Any:
    def send(task: str, args: list[Any], task_id: str) -> None:
        app.send_task(task, args=args, task_id=task_id, queue=queue)

    return send


def drift_check_of(params: dict[str, Any], send: Any) -> DriftCheck:
    """What a schedule's tick runs, built from the settings outside any web request: the
    retrainer (retrainer_of) and, for a schedule with "when": "drift", the monitor that checks
    the window first (the settings of GET /registry/<name>/monitor)."""
    retrainer = retrainer_of(params, send)
    monitor = Monitor(retrainer.registry, MongoClients(params["mongodb_timeout_ms"]), pick(MonitorSettings, params))
    return DriftCheck(retrainer.registry, monitor, retrainer, params["drift_check_lag_seconds"])


def run_scheduled(check: DriftCheck, name: str) -> str | None:
    """A schedule's tick: the name retrained (its job id), or None when skipped, refused or (a
    schedule on drift) not drifted: the name's retrains, or its schedule's last check, record it;
    the log says so."""
    origin = Origin("scheduler", f"schedule {name} {iso(time.time())}")
    try:
        schedule = check.registry.entry(name).get("schedule") or {}
        if schedule.get("when") == DRIFT:
            done = check.tick(name, schedule, origin)
            log.info("drift check of %r: %s", name, json.dumps(done, sort_keys=True))
            return done.get("job_id")
        job_id = check.retrainer.retrain(name, None, origin, SCHEDULE)
    except RetrainSkipped as exc:
        log.info("%s", exc.message)
        return None
    except ServiceError as exc:
        log.warning("scheduled retrain of %r not queued: %s", name, exc.message)
        return None
    log.info("scheduled retrain of %r queued: job %s", name, job_id)
    return job_id


class RetrainScheduler(RedBeatScheduler):
    """redbeat's scheduler, running a retrain where it fires (see the module's words) and
    noting each tick (for /health)."""

    @cached_property
    def params(self) -> dict[str, Any]:
        return self.app.conf["service_params"]

    @cached_property
    def check(self) -> DriftCheck:
        return drift_check_of(self.params, sender(self.app, self.params["queue_name"]))

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        if entry.task != RETRAIN_TASK:
            return super().apply_async(entry, producer, advance, **kwargs)
        entry = self.reserve(entry) if advance else entry  # its run noted first: a failure does not fire again
        try:
            run_scheduled(self.check, *entry.args)
        except (redis.RedisError, OSError) as exc:
            log.warning("scheduled retrain of %r failed: %r", *entry.args, exc)
        return None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        remaining = super().tick(*args, **kwargs)
        holder = f"{socket.gethostname()}:{os.getpid()}"
        note = json.dumps({"holder": holder, "at": time.time()})
        try:
            get_redis(self.app).set(self.params["redis_key_prefix"] + TICK, note, ex=int(self.lock_timeout) + 1)
        except redis.RedisError:
            log.warning("the scheduler's tick could not be noted in Redis", exc_info=True)
        return remaining


def state(client: redis.Redis, key_prefix: str) -> dict[str, Any]:
    """What /health says of the scheduler: running (a tick noted within its lock's time) or
    absent, which process holds redbeat's lock, its last tick, and how many schedules there are."""
    with client.pipeline(transaction=False) as pipe:
        pipe.get(key_prefix + TICK)
        pipe.zcard(redbeat_prefix(key_prefix) + ":schedule")
        raw, count = pipe.execute()
    if raw is None:
        return {"status": "absent", "schedules": count}
    note = json.loads(raw)
    return {"status": "running", "holder": note["holder"], "last_tick": iso(note["at"]), "schedules": count}
