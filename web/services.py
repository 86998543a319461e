"""The web app's collaborators, built once from configuration by the app factory, and the
accessor views reach them through."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from flask import current_app, has_request_context, request

import dataparser
from celeryapp import make_celery, queue_key
from modelfactory import ModelFactory, PredictorCache
from predictionservice.config import pick
from predictionservice.datasets import Datasets
from predictionservice.defaults import QUEUE_FULL_RETRY_AFTER
from predictionservice.exceptions import ServiceUnavailable, TooManyRequests
from predictionservice.jobstore import FAILED, JobStore
from predictionservice.metrics import Metrics
from predictionservice.models import Models
from predictionservice.modelstore import ModelStore
from predictionservice.modelwatch import ModelWatch
from predictionservice.mongotarget import MongoClients, MongoTargets, redact_job
from predictionservice.openinference import inference_request_schema
from predictionservice.prediction import Predictions
from predictionservice.redisclient import connect
from predictionservice.validation import Validator, predict_schema
from web.workercount import WorkerCount

EXTENSION = "prediction_service"


class Services:
    """Stores, clients, the one Celery app and the OpenAPI document of a web process (no
    module-level clients), and the core's operations built on them (``predictions``,
    ``datasets``, ``stored_models``), which the routes and pages call."""

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
        self.predictors = PredictorCache(self.factory, self.models, watch=self._model_watch(params))
        self.celery = make_celery(params, set_as_current=False)
        self.worker_count = WorkerCount(self.celery, params["worker_ping_interval"])
        self.predict_validator = Validator(predict_schema(params["max_records_per_request"]))
        self.infer_validator = Validator(inference_request_schema(params["max_records_per_request"]))
        self.openapi: dict[str, Any] = {}  # the app factory's, once the routes are registered (web/meta.py)
        # the Celery broker is the same Redis database: the queue's length is read there
        metrics = params["metrics"]
        self.metrics = Metrics(self.jobs, self.models, self.predictors, self.redis, self.queue_key) if metrics else None
        # the core's operations the routes and pages call (predictionservice: no web framework)
        self.predictions = Predictions(
            self.predictors,
            self.predict_validator,
            params["max_answer_probabilities"],
            self.metrics,
            infer_validator=self.infer_validator,
        )
        self.datasets = Datasets(
            self.mongo,
            params["mongodb_uri"],
            dataparser.schema_from_documents,
            params["schema_sample_docs"],
            params["schema_max_label_values"],
        )
        self.stored_models = Models(self.models)
        token = params["auth_token"]
        # what the pages' CSRF tokens are signed with: stable across restarts when a token is set
        self.page_key = hashlib.sha256(b"pages csrf " + token.encode()).digest() if token else secrets.token_bytes(32)

    def _model_watch(self, params: dict[str, Any]) -> ModelWatch | None:
        """The subscription that lets the predictor cache skip the per-request version check."""
        if not params["model_watch"]:
            return None
        return ModelWatch(
            self.models.client,
            self.models.channel,
            on_change=lambda key: self.predictors.forget(key),
            on_reset=lambda: self.predictors.clear(),
            ping_interval=params["model_watch_ping"],
        )

    def submit(self, task: str, kind: str, job: dict[str, Any], request_id: str | None = None) -> str:
        """Record a job and queue it; its id. The record exists before a worker can see the job,
        and names the request that submitted it. A full queue refuses the job (429): each waiting
        message holds its job document in Redis, and Redis full (noeviction) would fail every write
        of the service."""
        waiting = self.redis.llen(self.queue_key)
        if waiting >= self.params["max_queued_jobs"]:
            raise TooManyRequests(
                f"{waiting} jobs are waiting for a worker, the most this server queues (max_queued_jobs); "
                f"retry in {QUEUE_FULL_RETRY_AFTER} s",
                retry_after=QUEUE_FULL_RETRY_AFTER,
            )
        client = (request.remote_addr if has_request_context() else None) or "unknown"
        self._check_share(client)
        job_id = uuid.uuid4().hex
        self.jobs.create(job_id, kind, redact_job(job), request_id)  # the record is shown: no credentials
        self.jobs.add_queued_by(client, job_id)
        try:
            self.celery.send_task(task, args=[job], task_id=job_id, queue=self.params["queue_name"])
        except Exception as exc:
            self.jobs.update(job_id, FAILED, "the job could not be queued: the broker is unreachable")
            raise ServiceUnavailable(f"the job queue (Redis) is unreachable: {type(exc).__name__}") from exc
        return job_id

    def _check_share(self, client: str) -> None:
        """One client (by address, until API keys exist) may hold max_queued_jobs_per_client of
        the queue: beyond, 429, so that one client cannot fill the queue for everyone."""
        share = self.params["max_queued_jobs_per_client"]
        mine = self.jobs.queued_by(client)
        if mine >= share:  # before refusing: only the jobs whose message is still in the queue count
            mine = self.jobs.queued_by(client, self.queue_key)
        if mine >= share:
            raise TooManyRequests(
                f"{mine} jobs of this client ({client}) are waiting for a worker, the most one client may "
                f"queue (max_queued_jobs_per_client: {share}); retry in {QUEUE_FULL_RETRY_AFTER} s, once one "
                "of them has started",
                retry_after=QUEUE_FULL_RETRY_AFTER,
            )

    def workers(self) -> list[str]:
        """The names of the Celery workers that answered the background ping (none when the broker
        does not answer): read, never asked, so /health waits for no worker."""
        return self.worker_count.names()

    def start(self) -> None:
        """The background work of a served app (the server calls it as it starts)."""
        self.worker_count.start()

    def stop(self) -> None:
        """The server calls it as it stops."""
        self.worker_count.stop()


def services() -> Services:
    """The current app's collaborators."""
    return current_app.extensions[EXTENSION]
