"""Jobs: ``POST /train/`` and ``POST /predictall/`` hand a job document to the library's
submission (predictionservice.submission: checked, then queued for a worker at once) and answer
202 and its id; the status routes show where a job is."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from predictionservice.exceptions import Conflict, InvalidRequest, NotFound
from predictionservice.jobstore import FINAL, MAX_LIST, PENDING, STATES, issued_id, queue_position, withdraw
from predictionservice.jobstore import KINDS as JOB_KINDS
from web.guard import key_name
from web.jsonio import json_body, json_response, shown
from web.requestid import current, origin
from web.services import services

bp = Blueprint("jobs", __name__)

KINDS = {"training": "training job", "predictall": "scoring job", "comparison": "comparison", None: "job"}


@bp.post("/train/", strict_slashes=False)
def submit_training() -> Response:
    job_id = services().submit_training(json_body(), origin())
    return json_response({"job_id": job_id}, 202, {"Location": f"/training/status/{job_id}"})


@bp.post("/predictall/", strict_slashes=False)
def submit_predictall() -> Response:
    job_id = services().submit_scoring(json_body(), origin())
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
    key = f" with the key {key_name()!r}" if services().access.secured else ""
    who = f"a request from {request.remote_addr or 'an unknown address'}{key} (request id {current()})"
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


def _queued(job_id: str) -> str:
    """A waiting job's message: where it stands in the queue, which is what the user waits for."""
    queue = services().params["queue_name"]
    found = queue_position(services().redis, services().queue_key, job_id)
    if found is None:
        return f"job {job_id} was taken by a worker and is about to start"
    position, length = found
    ahead = "next to start" if position == 1 else f"{position - 1} job{'s' if position > 2 else ''} ahead of it"
    return f"waiting in queue '{queue}': position {position} of {length} ({ahead})"
