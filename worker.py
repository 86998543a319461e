"""The worker side: the service's Celery tasks and the life cycle of a job on a worker.

``celery -A modelservice.celery worker`` (the chapter's command) reaches ``celery_app()`` through
``modelservice``; ``celery -A worker.celery worker`` is the same app, and so is the installed
``prediction-worker`` (``main``). Each task only adapts Celery
to the core: the message becomes a typed job (predictionservice.job), ModelFactory runs its
algorithm, MessageHandler reports, the job store records. What a failed job's record says is
predictionservice.failures; the heartbeat and the cancel of a job's Spark work are
predictionservice.heartbeat; the reaper of jobs whose worker was lost is reaper.py (started here).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from celery import Celery, Task, signals
from celery.exceptions import Reject, SoftTimeLimitExceeded

from celeryapp import PREDICTALL_TASK, RETRAIN_TASK, TRAIN_TASK, make_celery
from messagehandler import MessageHandler
from modelfactory import ModelFactory, Resources
from predictionservice import gate
from predictionservice.config import load_parameters, pick
from predictionservice.exceptions import GateError, ServiceError
from predictionservice.failures import failure_message, timed_out
from predictionservice.heartbeat import Heartbeat, cancel_spark_group, running_elsewhere
from predictionservice.job import ComparisonJob, ScoringJob, TrainingJob
from predictionservice.jobstore import COMPLETED, FAILED, FINAL, STARTED, JobStore, public_view
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients, MongoTargets
from predictionservice.redisclient import connect
from predictionservice.registry import UNDONE, Registry
from predictionservice.tempcollections import recover_in_background
from predictionservice.version import __version__
from reaper import start_reaper
from scheduler import drift_check_of, run_scheduled, sender

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
            from predictionservice.sparksession import SparkSettings, get_spark

            return get_spark(pick(SparkSettings, params))

        return Resources(params, models, MongoClients(params["mongodb_timeout_ms"]), spark)

    @cached_property
    def factory(self) -> ModelFactory:
        return ModelFactory(self.params["algorithms"])

    @cached_property
    def targets(self) -> MongoTargets:
        """Where a plain job document's collections may be (a message queued by the previous
        version names them unresolved)."""
        return pick(MongoTargets, self.params)

    @cached_property
    def scheduled(self) -> Any:
        """A schedule's tick sent here by a plain redbeat scheduler (scheduler.py): its drift
        check (a schedule on drift) and retrain."""
        return drift_check_of(self.params, sender(self.app, self.params["queue_name"]))

    def discard_spark(self) -> None:
        session = sys.modules.get("predictionservice.sparksession")
        if session is not None:  # never start Spark just to stop it
            session.discard()

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Also runs in the worker's main process for a hard time limit or a lost pool process
        past its last attempt: the job must end FAILED, never stay STARTED or SUBMITTED."""
        self.jobs.update(task_id, FAILED, failure_message(exc, self.params["job_time_limit"]))


def run_job(
    task: ServiceTask, job: TrainingJob | ScoringJob | ComparisonJob, work: Callable[[MessageHandler], dict]
) -> dict:
    """The life of a job on a worker: STARTED, the work (which moves SUBMITTED), then COMPLETED or
    FAILED, with a heartbeat all along. A redelivered job that already ended, or that a live
    worker process is running, is not run again; one that keeps losing its worker process fails
    after job_max_attempts starts. A clean stop of the worker (SIGTERM) gives the job back to the
    queue, PENDING, its attempt not counted: the next worker runs it as if it had never started."""
    job_id = task.request.id
    jobs = task.jobs
    record = jobs.get(job_id) or jobs.create(job_id, job.kind, job.redacted())
    if record["status"] in FINAL or running_elsewhere(jobs, record, float(task.params["job_heartbeat_timeout"])):
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
    try:
        with StopRequest(job_id) as stop, Heartbeat(jobs, job_id, float(task.params["job_heartbeat_interval"])):
            handler.update(STARTED, f"job {job_id} started{again}", 0.0)
            _attempt(task, handler, work, stop)
    except WorkerStopping:
        give_back(task, job_id)
        raise Reject("the worker is stopping: the job goes back to the queue", requeue=True) from None
    return jobs.view(job_id)


class WorkerStopping(Exception):
    """The worker was stopped cleanly while the job ran: the job is given back, not failed."""


def _attempt(
    task: ServiceTask, handler: MessageHandler, work: Callable[[MessageHandler], dict], stop: StopRequest
) -> None:
    started = time.monotonic()
    try:
        extra = work(handler)
    except Exception as exc:
        if stop.requested:  # whatever failed, it failed because the worker is stopping (its JVM too)
            raise WorkerStopping() from exc
        if _cancelled(task, handler.job_id):  # its Spark work was cancelled: the job ended already
            log.info("job %s stopped: it was cancelled", handler.job_id)
            return
        if isinstance(exc, ServiceError):
            handler.update(FAILED, exc.message)
            return
        # The soft limit (SoftTimeLimitExceeded) can also strike inside a py4j call, which then
        # reports an error of its own (the limit's clock started a moment before this function
        # did, hence the margin).
        soft_limit = task.app.conf.task_soft_time_limit or float("inf")
        late = timed_out(exc) or time.monotonic() - started >= soft_limit - 2
        handler.update(FAILED, failure_message(SoftTimeLimitExceeded() if late else exc, task.params["job_time_limit"]))
        if late:
            task.discard_spark()  # interrupted mid-call: its py4j link cannot be trusted again
        else:
            log.exception("job %s failed", handler.job_id)
    else:
        undo = extra.pop("undo", None)
        if handler.update(COMPLETED, extra.pop("message"), 1.0, **extra) or not _cancelled(task, handler.job_id):
            return
        if undo:
            undo()  # cancelled while its last step ran (after the last look for a cancel): what it made goes
        log.info("job %s stopped: it was cancelled as its last step ran; what it made was removed", handler.job_id)


def _cancelled(task: ServiceTask, job_id: str) -> bool:
    try:
        return task.jobs.cancelled(job_id)
    except Exception:  # Redis away: the job's own outcome is written as usual
        return False


def give_back(task: ServiceTask, job_id: str) -> None:
    """Put a job interrupted by a clean stop back to PENDING with its attempt not counted (the
    message itself is re-queued by Celery on the Reject that follows). A Spark whose JVM the stop
    killed (it shares the worker's process group) is dropped, never reused."""
    try:
        task.jobs.give_back(job_id, f"waiting for job {job_id} to start again: the worker running it was stopped")
    except Exception:  # Redis away too: the message still goes back; the next start counts as a re-run
        log.warning("job %s: its record could not be put back to PENDING", job_id, exc_info=True)
    log.warning("job %s: the worker is stopping; the job goes back to the queue", job_id)
    session = sys.modules.get("predictionservice.sparksession")
    if session is not None and session.jvm_exited():
        task.discard_spark()


class StopRequest:
    """While a job runs in a pool process, SIGTERM (a clean stop: Celery's warm shutdown signals
    the worker's whole process group, the Spark JVM included) is noted instead of raising.

    Billiard's own handler raises SystemExit at whatever bytecode the process is running; inside a
    py4j exchange that leaves the link reading a stale answer, and the next call into the JVM
    (the job group's cleanup) failed with a nonsense error (``KeyError: 'p'``) that ended the job
    FAILED. Here the signal only marks the stop and cancels the job's Spark job group from a
    thread of its own; the job's work then fails and run_job gives the job back. A second SIGTERM
    is handed to the previous handler (a worker that must go now)."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self._requested = threading.Event()
        self._previous: Any = None

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self._requested.is_set():
            if callable(self._previous):
                self._previous(signum, frame)
            else:  # the default action: end the process
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        self._requested.set()
        threading.Thread(target=cancel_spark_group, args=(self.job_id,), name="stop-job", daemon=True).start()

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # a pool process runs its task there
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def train(task: ServiceTask, message: dict[str, Any]) -> dict[str, Any]:
    """Train the job's algorithm and store the model under the job id. The message is the
    typed job's (or the plain document a previous version queued)."""
    job = TrainingJob.from_message(message, task.factory.algorithm_class, task.targets.resolve)

    name = job.document.get("model")

    def work(handler: MessageHandler) -> dict[str, Any]:
        model = task.factory.train(job, task.resources, handler, task.jobs.trigger(handler.job_id))
        key = model["model_key"]
        decision = promotion_gate(task, job, model, handler) if name else None
        version = version_words(task.resources.models, key, name)
        return {
            "undo": lambda: undo_model(task.resources.models, key, name, decision),
            "message": f"model {key} trained: {headline(model)}{version}{gate.words(decision)}",
            "model_key": model["model_key"],
            "metrics": model["metrics"],
            "invalid_rows": model["training"]["invalid_rows"],
            **({"decision": decision} if decision else {}),
        }

    return run_job(task, job, work)


def promotion_gate(task: ServiceTask, job: TrainingJob, model: dict[str, Any], handler: MessageHandler) -> dict | None:
    """After a named job's version is stored, the promotion gate (predictionservice.gate), in this
    very task: the version's decision, or None (version 1, or a redelivered job's version decided
    already). A failure of the gate never fails the job: the decision records it."""
    from predictionservice import sparkgate
    from predictionservice.sparksession import job_group

    resources, params = task.resources, task.resources.params
    document = job.document
    trained = sparkgate.Trained(
        model, job.parser, job.source, int(document["seed"]), float(document["holdoutFraction"])
    )

    def compare(production: dict[str, Any], metric: str) -> dict[str, Any]:
        handler.progress(f"promotion gate: {metric} of production and of this version on the held-out rows", 0.97)
        spark = resources.spark()
        try:
            with job_group(spark, handler.job_id, f"promotion gate of {document['model']}"):
                return sparkgate.compare(
                    spark, trained, production, metric, task.factory.algorithm,
                    partitions=params["spark_read_partitions"], partition_mb=params["spark_partition_mb"],
                )  # fmt: skip
        except Exception as exc:
            if not timed_out(exc):
                raise
            task.discard_spark()  # interrupted mid-call: its py4j link cannot be trusted again
            raise GateError("the job's time limit struck while the gate compared the versions") from exc

    try:
        return gate.run(Registry(resources.models), document["model"], model["model_key"], compare)
    except Exception:  # the registry unreachable or the name deleted meanwhile: the version is stored
        log.warning("job %s: the promotion gate's decision was not recorded", handler.job_id, exc_info=True)
        return None


def undo_model(models: ModelStore, key: str, name: str | None, decision: dict[str, Any] | None = None) -> None:
    """A cancelled job's model goes, and with it its version and the aliases on it. When the
    promotion gate had moved production to it, production goes back to the version it took over
    from (the name keeps answering), before the version is removed."""
    if not name:
        models.delete(key)
        return
    registry = Registry(models)
    previous = (decision or {}).get("production_version")
    if (decision or {}).get("decision") == gate.PROMOTED and isinstance(previous, int):
        try:
            registry.move(name, "production", previous, why=UNDONE)
        except ServiceError:  # that version was deleted meanwhile: the name is left without production
            log.warning("job's model %s undone: production of %s could not go back to %s", key, name, previous)
    registry.delete_model(key, force=True)


def version_words(models: ModelStore, key: str, name: str | None) -> str:
    """What a named job's final message adds: the version its model became."""
    if not name:
        return ""
    try:
        entry = Registry(models).entry(name)
    except ServiceError:  # removed meanwhile
        return ""
    found = next((v["version"] for v in entry["versions"] if v["model_key"] == key), None)
    return f"; version {found} of {name!r}" if found is not None else ""


# The held-out metric a training job's final message quotes, by task.
HEADLINES = {"binary": ("auc", "AUC"), "multiclass": ("accuracy", "accuracy"), "regression": ("rmse", "RMSE")}


def headline(model: dict[str, Any]) -> str:
    key, words = HEADLINES[model.get("task", "binary")]
    return f"held-out {words} {model['metrics'][key]:.4f}"


def predict_all(task: ServiceTask, message: dict[str, Any]) -> dict[str, Any]:
    """Score the job's input collection with a stored model into its output collection."""
    job = ScoringJob.from_message(message, task.targets.resolve)

    def work(handler: MessageHandler) -> dict[str, Any]:
        result = task.factory.predict_all(job, task.resources, handler)
        skipped = f"; {result['invalid_rows']} rows could not be scored" if result["invalid_rows"] else ""
        return {
            "message": f"scored {result['rows']} rows into {job.target}{skipped}",  # its name, no credentials
            "rows": result["rows"],
            "invalid_rows": result["invalid_rows"],
            "result": result,
        }

    return run_job(task, job, work)


def compare(task: ServiceTask, message: dict[str, Any]) -> dict[str, Any]:
    """Score the comparison's models on the newest one's held-out rows (ModelFactory.compare)."""
    job = ComparisonJob.from_message(message, task.targets.resolve)

    def work(handler: MessageHandler) -> dict[str, Any]:
        figures = task.factory.compare(job, task.resources, handler)
        said = figures.get("why_none") or f"{len(job.models)} models scored on the same {figures['rows']} rows"
        return {"message": f"compared on the held-out rows of {job.heldout_of}: {said}", "comparison": figures}

    return run_job(task, job, work)


def retrain(task: ServiceTask, name: str) -> str | None:
    """A schedule's tick sent to the queue (plain redbeat.RedBeatScheduler; scheduler.py's own
    runs it in the beat process): the name retrained as POST /registry/<name>/retrain does."""
    return run_scheduled(task.scheduled, name)


def make_worker(params: dict[str, Any]) -> Celery:
    """A Celery app from params with the service's tasks registered on it, and the reaper started
    in the worker's main process once it is ready."""
    app = make_celery(params)
    # py4j tells of every connection it closes at INFO, with a traceback when its JVM is gone: a
    # clean stop wrote 15,000 such lines into the worker's log (celery -l info).
    logging.getLogger("py4j").setLevel(logging.WARNING)
    app.task(bind=True, base=ServiceTask, name=TRAIN_TASK)(train)
    app.task(bind=True, base=ServiceTask, name=PREDICTALL_TASK)(predict_all)
    app.task(bind=True, base=ServiceTask, name=RETRAIN_TASK)(retrain)
    app.task(bind=True, base=ServiceTask, name=ComparisonJob.task)(compare)

    def ready(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", app) is app:
            start_reaper(app)
            # Publishes a killed MongoDB or worker broke off: finished or undone before new jobs write.
            recover_in_background(params["mongodb_uri"], params["mongodb_timeout_ms"])

    signals.worker_ready.connect(ready, weak=False)
    return app


@functools.cache
def celery_app() -> Celery:
    """The worker's app, from the configuration (parameters file and environment), built once."""
    return make_worker(load_parameters())


def main(argv: list[str] | None = None) -> int:
    """``prediction-worker [celery worker options]``: the chapter's ``celery -A modelservice.celery
    worker -Q <queue_name>`` (the configured queue) with the options given (``-n``, ``-c``, ``-l``
    ...); ``--version`` prints the service's version."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        print(f"prediction-worker {__version__}")
        return 0
    from celery.bin.celery import main as celery_main

    queue = load_parameters()["queue_name"]
    sys.argv = ["celery", "-A", "modelservice.celery", "worker", "-Q", queue, *args]
    return celery_main()


def __getattr__(name: str) -> Any:
    """``celery -A worker.celery``: the app is built when Celery asks for it, not at import."""
    if name == "celery":
        return celery_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
