"""Jobs: ``POST /train/`` and ``POST /predictall/`` check a job document and queue it for a
worker at once (202 and its id); the status routes show where a job is."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pymongo.errors
from flask import Blueprint, Response, request

from celeryapp import PREDICTALL_TASK, TRAIN_TASK
from dataparser import check_sample
from predictionservice.exceptions import Conflict, InvalidRequest, NotFound
from predictionservice.jobstore import FINAL, MAX_LIST, PENDING, STATES, issued_id, queue_position, withdraw
from predictionservice.jobstore import KINDS as JOB_KINDS
from predictionservice.mongotarget import CollectionRef, check_replica_set, scrub
from predictionservice.prediction import check_schema
from predictionservice.validation import JOB_VALIDATOR, PREDICTALL_VALIDATOR
from web.jsonio import json_body, json_response, shown
from web.requestid import current
from web.services import services

bp = Blueprint("jobs", __name__)

KINDS = {"training": "training job", "predictall": "scoring job", None: "job"}


@bp.post("/train/", strict_slashes=False)
def submit_training() -> Response:
    job_id = queue_training(json_body())
    return json_response({"job_id": job_id}, 202, {"Location": f"/training/status/{job_id}"})


def queue_training(job: Any) -> str:
    """Check a training job document as POST /train/ does and queue it: its id (the training
    page submits through here too)."""
    JOB_VALIDATOR.check(job, "job document")
    params, factory = services().params, services().factory
    algorithm = factory.algorithm_class(job["name"])
    parser = algorithm.check(job)  # its own fields, and a label it can learn
    source = _reachable(services().targets.resolve(job["inputCollection"], "inputCollection"), "inputCollection")
    if "outputCollection" in job:
        _reachable(services().targets.resolve(job["outputCollection"], "outputCollection"), "outputCollection")
    _check_size(algorithm, job, parser, params)

    # The fields and the label against a sample of the data; an empty or missing input is
    # refused there (NotFound), so the input is not asked for its first document first (a
    # server may scan the whole collection for it: SecantusDB does, 0.5 s for bank-full).
    def sample_check() -> None:
        with services().mongo.collection(source) as collection:
            check_sample(parser, collection, str(source))

    _readable(sample_check, source)
    return services().submit(TRAIN_TASK, "training", algorithm.with_defaults(job), current())


@bp.post("/predictall/", strict_slashes=False)
def submit_predictall() -> Response:
    job = json_body()
    PREDICTALL_VALIDATOR.check(job, "scoring request")
    source = _reachable(services().targets.resolve(job["inputCollection"], "inputCollection"), "inputCollection")
    target = _reachable(services().targets.resolve(job["outputCollection"], "outputCollection"), "outputCollection")
    if source.same_target(target):
        raise InvalidRequest(
            "'outputCollection' must differ from 'inputCollection': it is replaced whole (both name "
            f"{source} on the same server)"
        )
    check_schema(job, services().predictors.get(job["modelkey"]))
    _require_input(source)
    job_id = services().submit(PREDICTALL_TASK, "predictall", job, current())
    return json_response({"job_id": job_id}, 202, {"Location": f"/predictall/status/{job_id}"})


@bp.get("/training/status/<job_id>")
def training_status(job_id: str) -> Response:
    return _status(job_id, "training")


@bp.get("/predictall/status/<job_id>")
def predictall_status(job_id: str) -> Response:
    return _status(job_id, "predictall")


@bp.get("/jobs/<job_id>")
def any_job(job_id: str) -> Response:
    return _status(job_id, None)


@bp.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> Response:
    """Cancel a job that has not ended: it ends FAILED as cancelled at once, by whom and when; a
    queued one leaves the queue and never runs, a running one's worker stops its Spark work
    within a second or two (worker.Heartbeat). 409 for a job that already ended."""
    jobs = services().jobs
    view = _known(job_id, None)
    who = f"a request from {request.remote_addr or 'an unknown address'} (request id {current()})"
    if not jobs.cancel(job_id, who):
        view = jobs.view(job_id) or view
        if view["status"] in FINAL:
            raise Conflict(
                f"job {job_id} already ended {view['status']} at {view['updated_at']}: there is nothing to cancel",
                details=[{"field": "job_id", "problem": f"job is {view['status']}"}],
            )
        raise NotFound(f"no job with id {shown(job_id)}")  # its record expired meanwhile
    withdraw(services().redis, services().queue_key, job_id)
    return json_response(jobs.view(job_id))


DEFAULT_LIST = 50


@bp.get("/jobs/", strict_slashes=False)
def list_jobs() -> Response:
    """Recent jobs, newest first (``?kind=``, ``?status=``, ``?limit=``): what a user who lost a
    job id looks at first."""
    kind = _choice("kind", JOB_KINDS)
    status = _choice("status", STATES)
    limit = request.args.get("limit", str(DEFAULT_LIST))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIST:
        raise InvalidRequest(f"'limit' must be a whole number from 1 to {MAX_LIST}, not {shown(limit)}")
    return json_response({"jobs": services().jobs.recent(int(limit), kind, status)})


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is None:
        return None
    if value.upper() in allowed and value not in allowed:  # ?status=failed
        return value.upper()
    if value not in allowed:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(allowed)}, not {shown(value)}")
    return value


def _known(job_id: str, kind: str | None) -> dict[str, Any]:
    """The view of a job of that kind (any kind: None), or 404."""
    if not issued_id(job_id):
        raise NotFound(f"no {KINDS[kind]} with id {shown(job_id)}: a job id is 32 hexadecimal digits, as issued")
    view = services().jobs.view(job_id)
    if view is None or (kind is not None and view["kind"] != kind):
        raise NotFound(f"no {KINDS[kind]} with id {shown(job_id)}")
    return view


def _status(job_id: str, kind: str | None) -> Response:
    jobs = services().jobs
    view = _known(job_id, kind)
    if view["status"] == PENDING:
        view["message"] = _queued(job_id)
    if request.args.get("history", "").lower() in ("1", "true", "yes"):
        view["history"] = jobs.history(job_id)
    return json_response(view)


def _check_size(algorithm: Any, job: dict[str, Any], parser: Any, params: dict[str, Any]) -> None:
    """What one job may cost a worker: fits (grid x folds), iterations and feature width, each
    refused naming its cap. The JSON schema's bounds (50 x 50 x 20 fits, 10,000 iterations) say
    what a document may hold; these say what this server runs."""
    full = algorithm.with_defaults(job)
    grid_fields = [name for name, schema in algorithm.job_fields.items() if schema.get("type") == "array"]
    grid = math.prod(len(full[name]) for name in grid_fields)
    fits = grid * full["numFolds"]
    if fits > params["max_job_fits"]:
        raise InvalidRequest(
            f"the job asks for {fits} fits ({grid} grid points x {full['numFolds']} folds); this server "
            f"runs at most {params['max_job_fits']} per job (max_job_fits)",
            details=[{"field": grid_fields[0], "problem": f"grid x numFolds over {params['max_job_fits']}"}],
        )
    if full.get("iterations", 0) > params["max_iterations"]:
        raise InvalidRequest(
            f"'iterations' is {full['iterations']}; this server runs at most {params['max_iterations']} "
            "(max_iterations)",
            details=[{"field": "iterations", "problem": f"over {params['max_iterations']}"}],
        )
    _check_model_size(job, full, params)
    if parser.num_features > params["max_feature_width"]:
        raise InvalidRequest(
            f"the schema makes {parser.num_features} features (numeric features plus one-hot positions); "
            f"this server trains at most {params['max_feature_width']} (max_feature_width)",
            details=[{"field": "schema.features", "problem": f"over {params['max_feature_width']} features"}],
        )


def _check_model_size(job: dict[str, Any], full: dict[str, Any], params: dict[str, Any]) -> None:
    """What the model itself may cost: the classes of its label (each an output; Spark's planning
    of a 100,000-class label map held a worker 11 minutes) and a forest's nodes (numTrees x
    2^maxDepth: 500 trees of depth 20 passed every other cap, some 800 times a default job)."""
    classes = len(job["schema"]["label"].get("values") or {})
    if classes > params["max_label_classes"]:
        raise InvalidRequest(
            f"the label maps {classes} classes; this server trains at most {params['max_label_classes']} "
            "(max_label_classes): group rare classes, or predict a coarser label",
            details=[{"field": "schema.label.values", "problem": f"over {params['max_label_classes']} classes"}],
        )
    if "numTrees" in full and "maxDepth" in full:
        trees, depth = max(full["numTrees"]), max(full["maxDepth"])
        if trees * 2**depth > params["max_forest_nodes"]:
            raise InvalidRequest(
                f"numTrees x 2^maxDepth is {trees} x 2^{depth} = {trees * 2**depth} nodes at most; this server "
                f"grows at most {params['max_forest_nodes']} per fit (max_forest_nodes): lower numTrees or maxDepth "
                f"(maxDepth {depth - 1} halves it)",
                details=[{"field": "maxDepth", "problem": f"numTrees x 2^maxDepth over {params['max_forest_nodes']}"}],
            )


def _queued(job_id: str) -> str:
    """A waiting job's message: where it stands in the queue, which is what the user waits for."""
    queue = services().params["queue_name"]
    found = queue_position(services().redis, services().queue_key, job_id)
    if found is None:
        return f"job {job_id} was taken by a worker and is about to start"
    position, length = found
    ahead = "next to start" if position == 1 else f"{position - 1} job{'s' if position > 2 else ''} ahead of it"
    return f"waiting in queue '{queue}': position {position} of {length} ({ahead})"


def _reachable(ref: CollectionRef, field: str) -> CollectionRef:
    """ref, once a job URI's options are known to fit its server (a 400 naming the option, not a
    503 after the selection timeout)."""
    check_replica_set(ref, services().mongo, field)
    return ref


def _require_input(source: CollectionRef) -> None:
    """A job's input must hold a document."""

    def first() -> Any:
        with services().mongo.collection(source) as collection:
            return collection.find_one({}, {"_id": 1})

    if _readable(first, source) is None:
        raise NotFound(f"input collection {source} is empty or does not exist")


def _readable(read: Callable[[], Any], source: CollectionRef) -> Any:
    """A read of a job's input; a server behind a job's own URI that refuses it (wrong
    credentials) is the client's mistake, not a 500."""
    try:
        return read()
    except pymongo.errors.OperationFailure as exc:
        reason = scrub((exc.details or {}).get("errmsg") or str(exc))
        raise InvalidRequest(f"'inputCollection': MongoDB refused to read {source}: {reason[:200]}") from None
