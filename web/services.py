"""The web app's collaborators, built once from configuration by the app factory, and the
accessor views reach them through."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

from flask import current_app

import dataparser
from celeryapp import make_celery, queue_key
from modelfactory import ModelFactory
from predictionservice import submission
from predictionservice.alloweddbs import AllowedDatabases
from predictionservice.config import pick
from predictionservice.datasets import Datasets
from predictionservice.feedback import Feedback
from predictionservice.jobqueue import JobQueue, Origin
from predictionservice.jobstore import JobStore
from predictionservice.metrics import Metrics
from predictionservice.models import Models
from predictionservice.modelstore import ModelStore
from predictionservice.modelwatch import ModelWatch
from predictionservice.mongotarget import MongoClients, MongoTargets
from predictionservice.monitor import Monitor, MonitorSettings
from predictionservice.openinference import inference_request_schema
from predictionservice.prediction import Predictions
from predictionservice.predictionlog import LogSettings, PredictionLog, log_collection
from predictionservice.predictorcache import PredictorCache
from predictionservice.redisclient import connect
from predictionservice.references import References
from predictionservice.registry import Registry
from predictionservice.retraining import Retrainer
from predictionservice.schedules import Schedules
from predictionservice.submission import TrainingLimits
from predictionservice.traffic import Shadow
from predictionservice.validation import Validator, predict_schema
from scheduler import RedBeatSchedules, state
from web.access import Access
from web.workercount import WorkerCount

EXTENSION = "prediction_service"


class Services:
    """Stores, clients, the one Celery app and the OpenAPI document of a web process (no
    module-level clients), and the core's operations built on them (``predictions``,
    ``datasets``, ``stored_models``, ``registry``), which the routes and pages call."""

    def __init__(self, params: dict[str, Any]):
        self.params = params
        timeout = params["redis_timeout"]
        self.redis = connect(params["redis_url"], timeout=timeout)
        prefix = params["redis_key_prefix"]
        self.models = ModelStore(connect(params["redis_url"], params["models_db"], timeout), prefix)
        self.jobs = JobStore(self.redis, params["job_ttl"], prefix)
        self.queue_key = queue_key(params)
        self.mongo = MongoClients(params["mongodb_timeout_ms"])
        self.targets = pick(MongoTargets, params)
        self.factory = ModelFactory(params["algorithms"])
        watch = self._model_watch(params)
        self.predictors = PredictorCache(self.factory, self.models, watch=watch)
        self.registry = Registry(self.models)
        self.references = References(self.registry, watch=watch)
        self.celery = make_celery(params, set_as_current=False)
        self.queue = JobQueue(
            self.redis,
            self.jobs,
            self.queue_key,
            self._send,
            params["max_queued_jobs"],
            params["max_queued_jobs_per_client"],
        )
        self.limits = TrainingLimits(**{limit.name: params[limit.name] for limit in fields(TrainingLimits)})
        self.worker_count = WorkerCount(self.celery, params["worker_ping_interval"])
        self.predict_validator = Validator(predict_schema(params["max_records_per_request"]))
        self.infer_validator = Validator(inference_request_schema(params["max_records_per_request"]))
        self.openapi: dict[str, Any] = {}  # the app factory's, once the routes are registered (web/meta.py)
        # the Celery broker is the same Redis database: the queue's length is read there
        metrics = params["metrics"]
        self.metrics = Metrics(self.jobs, self.models, self.predictors, self.redis, self.queue_key) if metrics else None
        # answered requests, written to MongoDB by a thread of its own (None: the setting is off)
        self.prediction_log = PredictionLog(pick(LogSettings, params)) if params["prediction_log"] else None
        if self.metrics is not None and self.prediction_log is not None:
            self.metrics.registry.register(self.prediction_log.collector())
        # a candidate's shadow scores, off the request thread, into the log (traffic.Shadow)
        self.shadow = Shadow(self.predictors, self.prediction_log, params["shadow_queue_size"])
        if self.metrics is not None:
            self.metrics.registry.register(self.shadow.collector())
        # the core's operations the routes and pages call (predictionservice: no web framework)
        self.predictions = Predictions(
            self.predictors,
            self.predict_validator,
            params["max_answer_probabilities"],
            self.metrics,
            infer_validator=self.infer_validator,
            references=self.references,
            log=self.prediction_log,
            shadow=self.shadow,
        )
        self.feedback = Feedback(self._log_collection, self._classes, params["feedback_max_records"])
        self.datasets = Datasets(
            self.mongo,
            params["mongodb_uri"],
            dataparser.schema_from_documents,
            params["schema_sample_docs"],
            params["schema_max_label_values"],
            AllowedDatabases(self.redis, params["redis_key_prefix"], params["datasets_allowed_dbs"]),
            max_columns=params["max_dataset_columns"],
            max_header_chars=params["max_csv_header_chars"],
        )
        self.stored_models = Models(self.models, self.registry, self.references)
        self.retrainer = Retrainer(self.registry, self.redis, prefix, params["job_ttl"], self.submit_training)
        backend = RedBeatSchedules(self.celery, params["queue_name"])
        self.schedules = Schedules(self.registry, backend, params["schedule_min_seconds"])
        self.monitor = Monitor(
            self.registry, self.mongo, pick(MonitorSettings, params), self.metrics.monitored if self.metrics else None
        )
        self.access = Access(self.redis, params)  # keys, page sessions, failed sign-ins, the audit trail
        token = params["auth_token"]
        # what the pages' CSRF tokens are signed with: stable across restarts when a token is set
        self.page_key = hashlib.sha256(b"pages csrf " + token.encode()).digest() if token else secrets.token_bytes(32)

    @contextmanager
    def _log_collection(self) -> Iterator[Any]:
        """The prediction log's collection (POST /feedback/ writes on it), under a lease of the
        shared clients: feedback works on every replica, whether it logs or not."""
        with self.mongo.lease(self.params["mongodb_uri"]) as client:
            yield log_collection(client, self.params["prediction_log_collection"])

    def _classes(self, model_key: str) -> list[str]:
        """A stored model's classes (empty: a regressor); NotFound when it is no longer stored."""
        return list(self.predictors.get(model_key).parser.class_names)

    def _model_watch(self, params: dict[str, Any]) -> ModelWatch | None:
        """The subscription that lets the predictor cache and the references skip their
        per-request checks (a model's version token, a name's token)."""
        if not params["model_watch"]:
            return None
        return ModelWatch(
            self.models.client,
            self.models.channel,
            on_change=self._changed,
            on_reset=self._reset,
            ping_interval=params["model_watch_ping"],
        )

    def _changed(self, message: str) -> None:
        """A message of the model store's change channel: a model's key, or a name's registry change."""
        self.predictors.forget(message)
        self.references.changed(message)

    def _reset(self) -> None:
        """Changes may have been missed: nothing cached is trusted."""
        self.predictors.clear()
        self.references.clear()

    def _send(self, task: str, args: list[Any], task_id: str) -> None:
        """How the job queue reaches the workers: this process's Celery app."""
        self.celery.send_task(task, args=args, task_id=task_id, queue=self.params["queue_name"])

    def submit_training(self, document: Any, origin: Origin, job_id: str | None = None) -> str:
        """The core's training submission with this process's collaborators (POST /train/, the
        training page and a retrain): the job's id."""
        return submission.submit_training(
            document, algorithms=self.factory.algorithm_class, limits=self.limits, job_id=job_id,
            **self._submitting(origin),
        )  # fmt: skip

    def submit_scoring(self, document: Any, origin: Origin) -> str:
        """The core's scoring submission (POST /predictall/): the job's id."""
        return submission.submit_scoring(
            document, predictors=self.predictors, references=self.references, **self._submitting(origin)
        )

    def submit_comparison(self, document: Any, origin: Origin) -> str:
        """The core's comparison submission (POST /models/compare, the compare page): the job's id."""
        return submission.submit_comparison(document, stored=self.stored_models.lookup, **self._submitting(origin))

    def _submitting(self, origin: Origin) -> dict[str, Any]:
        allowed = self.datasets.allowed  # a job's databases too: only those the service is given
        resolve = (
            allowed.guarding(self.targets.resolve, self.datasets.database_exists) if allowed else self.targets.resolve
        )
        return {"resolve": resolve, "mongo": self.mongo, "queue": self.queue, "origin": origin}

    def workers(self) -> list[str]:
        """The names of the Celery workers that answered the background ping (none when the broker
        does not answer): read, never asked, so /health waits for no worker."""
        return self.worker_count.names()

    def scheduler(self) -> dict[str, Any]:
        """The retraining scheduler as /health reports it: running (who holds its lock, its last
        tick) or absent, and how many schedules it has."""
        return state(self.redis, self.params["redis_key_prefix"])

    def start(self) -> None:
        """The background work of a served app (the server calls it as it starts)."""
        self.worker_count.start()
        if self.prediction_log is not None:
            self.prediction_log.start()

    def stop(self) -> None:
        """The server calls it as it stops (after the requests in flight were answered): the
        prediction log writes what it holds."""
        self.worker_count.stop()
        self.access.stop()
        self.shadow.stop()  # its last scores go to the log, which writes them next
        if self.prediction_log is not None:
            self.prediction_log.stop()


def services() -> Services:
    """The current app's collaborators."""
    return current_app.extensions[EXTENSION]
