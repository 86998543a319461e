"""The prediction service: ``modelservice(params)`` builds the Flask app; ``celery`` is the Celery
app its workers run (``celery -A modelservice.celery worker``).

Routes and tasks only adapt HTTP and Celery to the core (ModelFactory, DataParser, the stores,
the dataset loader), which knows neither. The HTTP contract is ../shared/API.md; the OpenAPI
document at /openapi.json is generated from the same schemas the routes validate with.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import bson.errors
import pymongo
import pymongo.errors
import redis
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

import datasetloader
from config import load_parameters
from dataparser import DataParser, infer_schema
from exceptions import (
    InvalidDataset,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    code_for_status,
)
from jobstore import COMPLETED, FAILED, FINAL, STARTED, JobStore, public_view
from messagehandler import MessageHandler
from modelfactory import ModelFactory, Resources
from modelstore import ModelStore
from mongotarget import CollectionRef, MongoClients, path_ref, redact_job, resolve
from openapi import openapi_document
from redisclient import connect
from validation import JOB_VALIDATOR, PREDICTALL_VALIDATOR, Validator, job_with_defaults, parse_json, predict_schema

# `celery -A modelservice.celery worker` puts the working directory on sys.path only while it
# loads this module; the worker's later imports (algorithms by name, the Spark helpers) need the
# project directory for good.
_PROJECT_DIR = str(Path(__file__).resolve().parent)
if _PROJECT_DIR not in sys.path:
    sys.path.insert(0, _PROJECT_DIR)

log = logging.getLogger("prediction_service")

TRAIN_TASK = "prediction_service.train"
PREDICTALL_TASK = "prediction_service.predict_all"
QUEUE = "prediction_service"
JSON = "application/json"
SAMPLE_DOCS = 5
FIELD_SCAN_DOCS = 100


# ------------------------------------------------------------------------------------- Celery


def celery_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Celery's own guidance for long jobs: acknowledge late, requeue when the process running a
    job is lost, one message at a time, and a visibility timeout beyond the longest job."""
    limit = int(params["job_time_limit"])
    return {
        "broker_url": params["redis_url"],
        "result_backend": params["redis_url"],
        "broker_transport_options": {"visibility_timeout": limit + 600},
        "result_backend_transport_options": {"retry_policy": {"timeout": 5.0}},
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": int(params["worker_concurrency"]),
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_time_limit": limit,
        "task_soft_time_limit": max(1, limit - min(60, limit // 10)),
        "result_expires": int(params["job_ttl"]),
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": QUEUE,
        "worker_hijack_root_logger": False,
        "service_params": params,
    }


def make_celery(params: dict[str, Any], *, set_as_current: bool = True) -> Celery:
    app = Celery("prediction_service", set_as_current=set_as_current)
    app.conf.update(celery_settings(params))
    return app


celery = make_celery(load_parameters())


class ServiceTask(Task):
    """Base of the service's tasks: each worker process builds its stores and its one
    SparkSession on first use and keeps them for every later job."""

    abstract = True

    @property
    def params(self) -> dict[str, Any]:
        return self.app.conf["service_params"]

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(connect(self.params["redis_url"], timeout=self.params["redis_timeout"]), self.params["job_ttl"])

    @cached_property
    def resources(self) -> Resources:
        params = self.params
        models = ModelStore(connect(params["redis_url"], params["models_db"], params["redis_timeout"]))

        def spark() -> Any:
            from sparksession import get_spark

            return get_spark(params)

        return Resources(params, models, MongoClients(params["mongodb_timeout_ms"]), spark)

    @cached_property
    def factory(self) -> ModelFactory:
        return ModelFactory(self.params["algorithms"])

    def discard_spark(self) -> None:
        if "sparksession" in sys.modules:  # never start Spark just to stop it
            sys.modules["sparksession"].discard()

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


def run_job(task: ServiceTask, kind: str, parameters: dict[str, Any], work: Callable[[MessageHandler], dict]) -> dict:
    """The life of a job on a worker: STARTED, the work (which moves SUBMITTED), then COMPLETED or
    FAILED. A redelivered job that already ended is not run again; one that keeps losing its
    worker process fails after job_max_attempts starts."""
    job_id = task.request.id
    jobs = task.jobs
    record = jobs.get(job_id) or jobs.create(job_id, kind, redact_job(parameters))
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


@celery.task(bind=True, base=ServiceTask, name=TRAIN_TASK)
def train(self: ServiceTask, jobparameters: dict[str, Any]) -> dict[str, Any]:
    def work(handler: MessageHandler) -> dict[str, Any]:
        model = self.factory.train(jobparameters, self.resources, handler)
        auc = model["metrics"]["auc"]
        return {
            "message": f"model {model['model_key']} trained: held-out AUC {auc:.4f}",
            "model_key": model["model_key"],
            "metrics": model["metrics"],
            "invalid_rows": model["training"]["invalid_rows"],
        }

    return run_job(self, "training", jobparameters, work)


@celery.task(bind=True, base=ServiceTask, name=PREDICTALL_TASK)
def predict_all(self: ServiceTask, jobparameters: dict[str, Any]) -> dict[str, Any]:
    def work(handler: MessageHandler) -> dict[str, Any]:
        result = self.factory.predict_all(jobparameters, self.resources, handler)
        skipped = f"; {result['invalid_rows']} rows could not be scored" if result["invalid_rows"] else ""
        return {
            "message": f"scored {result['rows']} rows into {jobparameters['outputCollection']}{skipped}",
            "rows": result["rows"],
            "invalid_rows": result["invalid_rows"],
            "result": result,
        }

    return run_job(self, "predictall", jobparameters, work)


# ------------------------------------------------------------------------------------ the app


class Services:
    """The web app's collaborators, built from configuration (no module-level clients)."""

    def __init__(self, params: dict[str, Any]):
        self.params = params
        timeout = params["redis_timeout"]
        self.redis = connect(params["redis_url"], timeout=timeout)
        self.models = ModelStore(connect(params["redis_url"], params["models_db"], timeout))
        self.jobs = JobStore(self.redis, params["job_ttl"])
        self.mongo = MongoClients(params["mongodb_timeout_ms"])
        self.factory = ModelFactory(params["algorithms"])
        self.celery = make_celery(params, set_as_current=False)
        self.predict_validator = Validator(predict_schema(params["max_records_per_request"]))

    def submit(self, task: str, kind: str, job: dict[str, Any]) -> str:
        job_id = uuid.uuid4().hex
        self.jobs.create(job_id, kind, redact_job(job))  # the record is shown: no credentials
        try:
            self.celery.send_task(task, args=[job], task_id=job_id, queue=QUEUE)
        except Exception as exc:
            self.jobs.update(job_id, FAILED, "the job could not be queued: the broker is unreachable")
            raise ServiceUnavailable(f"the job queue (Redis) is unreachable: {type(exc).__name__}") from exc
        return job_id


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return Response(body, status=status, mimetype=JSON, headers=headers)


def _json_body() -> Any:
    mimetype = request.mimetype
    if mimetype != JSON and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"the body must be JSON sent with 'Content-Type: application/json' (got {mimetype or 'none'!r})"
        )
    return parse_json(_body_bytes())


def _body_bytes() -> bytes:
    """The body, at most the route's limit. A streamed (chunked) body has no Content-Length for
    the guard to check and Werkzeug cuts it at the limit without a word: one byte past the limit
    makes it 413 too, never a truncated document."""
    data = request.get_data(cache=False)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise PayloadTooLarge(f"the body is larger than this route takes ({limit} bytes)")
    return data


def _mongo_json(value: Any) -> Any:
    """A document as plain JSON (ObjectId and dates as strings)."""
    if isinstance(value, dict):
        return {k: _mongo_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mongo_json(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def modelservice(params: dict[str, Any] | None = None) -> Flask:
    """The Flask app of the prediction service, built from configuration."""
    params = params if params is not None else load_parameters()
    services = Services(params)
    app = Flask("prediction_service", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = max(params["max_body_bytes"], params["max_dataset_bytes"])
    app.extensions["prediction_service"] = services
    token = params["auth_token"]
    _register_errors(app)

    @app.before_request
    def guard() -> None:
        if token and request.path != "/health":
            header = request.headers.get("Authorization", "")
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                raise Unauthorized("missing or wrong bearer token (send 'Authorization: Bearer <token>')")
        dataset_upload = request.method == "PUT" and request.path.startswith("/datasets/")
        request.max_content_length = params["max_dataset_bytes"] if dataset_upload else params["max_body_bytes"]
        if request.content_length is not None and request.content_length > request.max_content_length:
            raise PayloadTooLarge(
                f"the body is {request.content_length} bytes; this route takes at most {request.max_content_length}"
            )

    # --------------------------------------------------------------------------- jobs

    def first_document(source: CollectionRef, field: str) -> Any:
        """Whether a job's input has a document; a server behind a job's own URI that refuses
        the read (wrong credentials) is the client's mistake, not a 500."""
        try:
            return services.mongo.collection(source).find_one({}, {"_id": 1})
        except pymongo.errors.OperationFailure as exc:
            reason = (exc.details or {}).get("errmsg") or str(exc)
            raise InvalidRequest(f"'{field}': MongoDB refused to read {source}: {reason[:200]}") from None

    @app.post("/train/", strict_slashes=False)
    def submit_training() -> Response:
        job = _json_body()
        JOB_VALIDATOR.check(job, "job document")
        services.factory.check(job["name"])
        source = resolve(job["inputCollection"], params, "inputCollection")
        if "outputCollection" in job:
            resolve(job["outputCollection"], params, "outputCollection")
        DataParser(job)
        if first_document(source, "inputCollection") is None:
            raise NotFound(f"input collection {source} is empty or does not exist")
        job_id = services.submit(TRAIN_TASK, "training", job_with_defaults(job))
        return json_response({"job_id": job_id}, 202, {"Location": f"/training/status/{job_id}"})

    def job_status(job_id: str, kind: str | None) -> Response:
        view = services.jobs.view(job_id) if len(job_id) <= 64 else None
        if view is None or (kind is not None and view["kind"] != kind):
            what = {"training": "training job", "predictall": "scoring job", None: "job"}[kind]
            raise NotFound(f"no {what} with id {_shown(job_id)}")
        if request.args.get("history", "").lower() in ("1", "true", "yes"):
            view["history"] = services.jobs.history(job_id)
        return json_response(view)

    @app.get("/training/status/<job_id>")
    def training_status(job_id: str) -> Response:
        return job_status(job_id, "training")

    @app.get("/predictall/status/<job_id>")
    def predictall_status(job_id: str) -> Response:
        return job_status(job_id, "predictall")

    @app.get("/jobs/<job_id>")
    def any_job(job_id: str) -> Response:
        return job_status(job_id, None)

    @app.post("/predictall/", strict_slashes=False)
    def submit_predictall() -> Response:
        body = _json_body()
        PREDICTALL_VALIDATOR.check(body, "scoring request")
        source = resolve(body["inputCollection"], params, "inputCollection")
        target = resolve(body["outputCollection"], params, "outputCollection")
        if (source.uri, source.namespace) == (target.uri, target.namespace):
            raise InvalidRequest("'outputCollection' must differ from 'inputCollection': it is replaced whole")
        predictor = services.factory.get_model(services.models, body["modelkey"])
        _check_schema(body, predictor)
        if first_document(source, "inputCollection") is None:
            raise NotFound(f"input collection {source} is empty or does not exist")
        job_id = services.submit(PREDICTALL_TASK, "predictall", body)
        return json_response({"job_id": job_id}, 202, {"Location": f"/predictall/status/{job_id}"})

    # --------------------------------------------------------------------- prediction

    @app.post("/predict/", strict_slashes=False)
    def predict() -> Response:
        body = _json_body()
        services.predict_validator.check(body, "prediction request")
        key = body["modelkey"]
        predictor = services.factory.get_model(services.models, key)
        _check_schema(body, predictor)
        if "record" in body:
            return json_response({"modelkey": key, **predictor.predict_one(body["record"])})
        return json_response({"modelkey": key, "predictions": predictor.predict(body["records"])})

    # ------------------------------------------------------------------------- models

    @app.get("/models/", strict_slashes=False)
    def list_models() -> Response:
        return json_response({"models": services.models.summaries()})

    @app.get("/models/<key>")
    def get_model(key: str) -> Response:
        loaded = services.models.load(key)
        if loaded is None:
            raise NotFound(f"model {_shown(key)} not found")
        model, _ = loaded
        return json_response({**model, "model_key": key})

    @app.delete("/models/<key>")
    def delete_model(key: str) -> Response:
        if not services.models.delete(key):
            raise NotFound(f"model {_shown(key)} not found")
        return Response(status=204)

    # ----------------------------------------------------------------------- datasets

    def dataset_ref(db: str, collection: str) -> CollectionRef:
        """The collection a dataset route names. CherryPy hands an encoded slash on as '%2F'
        (a plain '/' never reaches a segment): a name holding one is a confused path, refused
        rather than created as the database 'e2e%2Fx'."""
        for name in (db, collection):
            if "/" in name or "%2f" in name.lower():
                raise InvalidRequest(f"dataset name {_shown(name)} is not allowed: no '/', encoded or not")
            if len(name) > 255:
                raise InvalidRequest(f"dataset name {_shown(name)} is not allowed: longer than 255 characters")
        return path_ref(db, collection, params)

    def existing(db: str, collection: str) -> Any:
        ref = dataset_ref(db, collection)
        coll = services.mongo.collection(ref)
        if not coll.database.list_collection_names(filter={"name": collection}):
            raise NotFound(f"dataset {ref} not found")
        return coll

    @app.put("/datasets/<db>/<collection>")
    def put_dataset(db: str, collection: str) -> Response:
        ref = dataset_ref(db, collection)
        mode = request.args.get("mode", "replace")
        if mode not in ("replace", "append"):
            raise InvalidRequest(f"'mode' must be 'replace' or 'append', not {mode!r}")
        target = services.mongo.collection(ref)
        mimetype = request.mimetype
        if mimetype in ("text/csv", "application/csv", "text/plain"):
            if not request.content_length and request.content_length is not None:
                raise InvalidDataset("empty input: expected a header line and at least one row")
            inserted = datasetloader.load_csv(target, io.BufferedReader(request.stream), mode=mode)
        elif mimetype == JSON:
            documents = datasetloader.iter_json_documents(parse_json(_body_bytes()))
            try:
                inserted = datasetloader.load_documents(target, documents, mode=mode)
            except (OverflowError, bson.errors.InvalidDocument) as exc:  # an integer beyond 64 bits
                raise InvalidDataset(f"a document cannot be stored in MongoDB: {str(exc)[:200]}") from None
        else:
            raise UnsupportedMediaType(
                f"a dataset is 'text/csv' or 'application/json' (an array of objects), not {mimetype or 'none'!r}"
            )
        return json_response({"inserted": inserted, "dataset": ref.namespace, "mode": mode})

    @app.get("/datasets/<db>/<collection>")
    def describe_dataset(db: str, collection: str) -> Response:
        coll = existing(db, collection)
        docs = list(coll.find({}, limit=FIELD_SCAN_DOCS))
        fields: dict[str, str] = {}
        for doc in docs:
            for key, value in doc.items():
                kind = _kind_of(value)
                if fields.get(key, kind) != kind and kind != "null":
                    fields[key] = "mixed" if fields[key] != "null" else kind
                else:
                    fields.setdefault(key, kind)
        return json_response(
            {
                "dataset": f"{db}.{collection}",
                "count": coll.count_documents({}),
                "fields": fields,
                "sample": [_mongo_json(d) for d in docs[:SAMPLE_DOCS]],
            }
        )

    @app.get("/datasets/<db>/<collection>/schema")
    def dataset_schema(db: str, collection: str) -> Response:
        label = request.args.get("label")
        if not label:
            raise InvalidRequest("the query parameter 'label' (the label field) is required")
        coll = existing(db, collection)
        return json_response(infer_schema(coll.find({}, {"_id": 0}), label))

    @app.delete("/datasets/<db>/<collection>")
    def delete_dataset(db: str, collection: str) -> Response:
        existing(db, collection).drop()
        return Response(status=204)

    # ------------------------------------------------------------------------ service

    @app.get("/health")
    def health() -> Response:
        report: dict[str, Any] = {"status": "ok"}
        down = []
        try:
            services.redis.ping()
            report["redis"] = "ok"
        except redis.RedisError as exc:
            report["redis"] = f"down: {type(exc).__name__}"
            down.append("redis")
        try:
            services.mongo.client(params["mongodb_uri"]).admin.command("ping")
            report["mongo"] = "ok"
        except pymongo.errors.PyMongoError as exc:
            report["mongo"] = f"down: {type(exc).__name__}"
            down.append("mongo")
        report["workers"] = _workers(services) if "redis" not in down else 0
        if down:
            report["status"] = "unavailable: " + ", ".join(down)
            # the health report, and the error every non-success answer carries
            report |= ServiceUnavailable(f"{' and '.join(down)} not answering", details=down).to_dict()
            return json_response(report, 503)
        return json_response(report)

    # '/predict' reaches the '/predict/' rule (strict_slashes=False) only with the rule's own
    # methods: Werkzeug answered any other method 404, not 405. Slashless twins make it 405.
    for rule in [r for r in app.url_map.iter_rules() if r.rule.endswith("/") and not r.strict_slashes]:
        app.add_url_rule(rule.rule.rstrip("/"), rule.endpoint, methods=(rule.methods or set()) - {"OPTIONS"})

    document = openapi_document(params)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return json_response(document)

    return app


def _workers(services: Services) -> int:
    try:
        return len(services.celery.control.ping(timeout=0.5) or [])
    except Exception:  # no broker or no answer: no workers to report
        return 0


def _shown(value: str, limit: int = 100, *, quote: bool = True) -> str:
    """A client's id, key or path as an error message shows it: a 200 kB id is not echoed whole."""
    text = repr(value) if quote else value
    return text if len(text) <= limit else f"{text[:limit]}... ({len(value)} characters)"


def _check_schema(body: dict[str, Any], predictor: Any) -> None:
    """A classic body may carry the schema: it must agree with the model's."""
    if "schema" not in body or json.dumps(body["schema"]) == predictor.schema_json:  # verbatim: agrees
        return
    if DataParser({"schema": body["schema"]}).schema() != predictor.schema():
        raise InvalidRequest(
            "'schema' does not agree with the schema stored with the model; send the record alone",
            details=[{"field": "schema", "problem": "differs from the model's schema"}],
        )


def _register_errors(app: Flask) -> None:
    """One error model: every non-success is {"error": {"code", "message", "details"}}."""

    def reply(error: ServiceError, headers: dict[str, str] | None = None) -> Response:
        return json_response(error.to_dict(), error.status, headers)

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="prediction-service"'} if error.status == 401 else None
        return reply(error, headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 404:
            return reply(NotFound(f"no route {request.method} {_shown(request.path, quote=False)}; see /openapi.json"))
        if status == 405:
            allowed = ", ".join(sorted(getattr(error, "valid_methods", None) or []))
            return reply(
                MethodNotAllowed(
                    f"{request.method} is not allowed on {_shown(request.path, quote=False)} (allowed: {allowed})"
                ),
                {"Allow": allowed},
            )
        if status == 413:
            limit = request.max_content_length
            return reply(PayloadTooLarge(f"the body is larger than this route takes ({limit} bytes)"))
        if status == 415:
            return reply(UnsupportedMediaType(error.description or "unsupported content type"))
        if 400 <= status < 500:  # any other client error Werkzeug raises (400, 411, 414, 431 ...)
            error_body = ServiceError(error.description or error.name, code=code_for_status(status)).to_dict()
            return json_response(error_body, status)
        log.error("HTTP %s on %s %s: %s", status, request.method, request.path, error)
        return json_response(ServiceError("internal error").to_dict(), 500)

    @app.errorhandler(redis.RedisError)
    def redis_down(error: redis.RedisError) -> Response:
        log.warning("Redis unavailable on %s %s: %r", request.method, request.path, error)
        return reply(ServiceUnavailable("Redis is unavailable; try again later"))

    @app.errorhandler(pymongo.errors.ConnectionFailure)  # ServerSelectionTimeoutError included
    def mongo_down(error: Exception) -> Response:
        log.warning("MongoDB unavailable on %s %s: %r", request.method, request.path, error)
        return reply(ServiceUnavailable("MongoDB is unavailable; try again later"))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        incident = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s on %s %s", incident, request.method, request.path)
        return reply(ServiceError(f"internal error (incident {incident}); the server log has the details"))
