"""The worker side: the service's Celery tasks and the life cycle of a job on a worker.

``celery -A modelservice.celery worker`` (the chapter's command) reaches ``celery_app()`` through
``modelservice``; ``celery -A worker.celery worker`` is the same app. Each task only adapts Celery
to the core: ModelFactory runs the algorithm, MessageHandler reports, the job store records.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from celeryapp import PREDICTALL_TASK, TRAIN_TASK, make_celery
from messagehandler import MessageHandler
from modelfactory import ModelFactory, Resources
from predictionservice.config import load_parameters
from predictionservice.exceptions import ServiceError
from predictionservice.jobstore import COMPLETED, FAILED, FINAL, STARTED, JobStore, public_view
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients, redact_job
from predictionservice.redisclient import connect

# `celery -A modelservice.celery worker` puts the working directory on sys.path only while it
# loads the app; the worker's later imports (algorithms by name) need the project directory for good.
_PROJECT_DIR = str(Path(__file__).resolve().parent)
if _PROJECT_DIR not in sys.path:
    sys.path.insert(0, _PROJECT_DIR)

log = logging.getLogger("prediction_service")


class ServiceTask(Task):
    """Base of the service's tasks: each worker process builds its stores and its one
    SparkSession on first use and keeps them for every later job."""

    abstract = True

    @property
    def params(self) -> dict[str, Any]:
        return self.app.conf["service_params"]

    @cached_property
    def jobs(self) -> JobStore:
        params = self.params
        client = connect(params["redis_url"], timeout=params["redis_timeout"])
        return JobStore(client, params["job_ttl"], params["redis_key_prefix"])

    @cached_property
    def resources(self) -> Resources:
        params = self.params
        client = connect(params["redis_url"], params["models_db"], params["redis_timeout"])
        models = ModelStore(client, params["redis_key_prefix"])

        def spark() -> Any:
            from predictionservice.sparksession import get_spark

            return get_spark(params)

        return Resources(params, models, MongoClients(params["mongodb_timeout_ms"]), spark)

    @cached_property
    def factory(self) -> ModelFactory:
        return ModelFactory(self.params["algorithms"])

    def discard_spark(self) -> None:
        session = sys.modules.get("predictionservice.sparksession")
        if session is not None:  # never start Spark just to stop it
            session.discard()

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Also runs in the worker's main process for a hard time limit or a lost pool process
        past its last attempt: the job must end FAILED, never stay STARTED or SUBMITTED."""
        self.jobs.update(task_id, FAILED, failure_message(exc, self.params))


def failure_message(exc: BaseException, params: dict[str, Any]) -> str:
    name = type(exc).__name__
    if isinstance(exc, ServiceError):
        return exc.message
    if _timed_out(exc):
        return f"the job exceeded its time limit of {params['job_time_limit']} s and was stopped"
    if name == "WorkerLostError":
        return "the worker process running this job was lost (killed or out of memory)"
    cause = _root_cause(str(exc))
    if type(exc).__module__.split(".")[0] in ("pyspark", "py4j"):
        return f"the Spark job failed: {cause}" if cause else "the Spark job failed"
    return f"internal error ({name}): {cause}" if cause else f"internal error ({name})"


def _timed_out(exc: BaseException | None) -> bool:
    """A time limit, even when it struck inside a py4j call that wrapped it in an error of its own."""
    pending, seen = [exc], set()
    while pending:
        exc = pending.pop()
        if exc is None or id(exc) in seen:
            continue
        if type(exc).__name__ in ("TimeLimitExceeded", "SoftTimeLimitExceeded"):
            return True
        seen.add(id(exc))
        # py4j keeps the error it caught as .cause (Py4JNetworkError) rather than chaining it
        pending += [exc.__cause__, exc.__context__, getattr(exc, "cause", None)]
    return False


_CAUSE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|TooLarge|Failure|Exceeded)): (.+)$", re.MULTILINE)


def _root_cause(text: str) -> str:
    """The last 'SomeError: message' line of a (Spark) error text: its Python-side cause."""
    matches = _CAUSE.findall(text)
    if matches:
        kind, message = matches[-1]
        return f"{kind}: {message.strip()}"[:300]
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def run_job(task: ServiceTask, kind: str, job: dict[str, Any], work: Callable[[MessageHandler], dict]) -> dict:
    """The life of a job on a worker: STARTED, the work (which moves SUBMITTED), then COMPLETED or
    FAILED. A redelivered job that already ended is not run again; one that keeps losing its
    worker process fails after job_max_attempts starts."""
    job_id = task.request.id
    jobs = task.jobs
    record = jobs.get(job_id) or jobs.create(job_id, kind, redact_job(job))
    if record["status"] in FINAL:
        return public_view(record)
    attempt = jobs.begin_attempt(job_id)
    handler = MessageHandler(task, jobs)
    limit = task.params["job_max_attempts"]
    if attempt > limit:
        handler.update(
            FAILED,
            f"gave up after {limit} attempts: the worker process running this job was lost each time "
            "(killed, or out of memory)",
        )
        return jobs.view(job_id)
    again = f" (attempt {attempt} of {limit}: the previous worker process was lost)" if attempt > 1 else ""
    handler.update(STARTED, f"job {job_id} started{again}", 0.0)
    started = time.monotonic()
    try:
        extra = work(handler)
    except ServiceError as exc:
        handler.update(FAILED, exc.message)
    except Exception as exc:
        # The soft limit (SoftTimeLimitExceeded) can also strike inside a py4j call, which then
        # reports an error of its own (the limit's clock started a moment before this function
        # did, hence the margin).
        soft_limit = task.app.conf.task_soft_time_limit or float("inf")
        late = _timed_out(exc) or time.monotonic() - started >= soft_limit - 2
        handler.update(FAILED, failure_message(SoftTimeLimitExceeded() if late else exc, task.params))
        if late:
            task.discard_spark()  # interrupted mid-call: its py4j link cannot be trusted again
        else:
            log.exception("job %s failed", job_id)
    else:
        handler.update(COMPLETED, extra.pop("message"), 1.0, **extra)
    return jobs.view(job_id)


def train(task: ServiceTask, job: dict[str, Any]) -> dict[str, Any]:
    """Train the job document's algorithm and store the model under the job id."""

    def work(handler: MessageHandler) -> dict[str, Any]:
        model = task.factory.train(job, task.resources, handler)
        auc = model["metrics"]["auc"]
        return {
            "message": f"model {model['model_key']} trained: held-out AUC {auc:.4f}",
            "model_key": model["model_key"],
            "metrics": model["metrics"],
            "invalid_rows": model["training"]["invalid_rows"],
        }

    return run_job(task, "training", job, work)


def predict_all(task: ServiceTask, job: dict[str, Any]) -> dict[str, Any]:
    """Score the job's input collection with a stored model into its output collection."""

    def work(handler: MessageHandler) -> dict[str, Any]:
        result = task.factory.predict_all(job, task.resources, handler)
        skipped = f"; {result['invalid_rows']} rows could not be scored" if result["invalid_rows"] else ""
        return {
            "message": f"scored {result['rows']} rows into {job['outputCollection']}{skipped}",
            "rows": result["rows"],
            "invalid_rows": result["invalid_rows"],
            "result": result,
        }

    return run_job(task, "predictall", job, work)


def make_worker(params: dict[str, Any]) -> Celery:
    """A Celery app from params with the service's tasks registered on it."""
    app = make_celery(params)
    app.task(bind=True, base=ServiceTask, name=TRAIN_TASK)(train)
    app.task(bind=True, base=ServiceTask, name=PREDICTALL_TASK)(predict_all)
    return app


@functools.cache
def celery_app() -> Celery:
    """The worker's app, from the configuration (parameters file and environment), built once."""
    return make_worker(load_parameters())


def __getattr__(name: str) -> Any:
    """``celery -A worker.celery``: the app is built when Celery asks for it, not at import."""
    if name == "celery":
        return celery_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
