"""The jobs' pages: the recent jobs, and a job with its parameters, history and progress (the
status its script polls); a scoring job links its output to that dataset's page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, render_template, request, url_for

from predictionservice.exceptions import InvalidRequest, NotFound
from predictionservice.jobstore import FINAL, KINDS, STATES, issued_id
from web import readable
from web.jsonio import json_response, shown
from web.pages.common import page_blueprint
from web.services import services

bp = page_blueprint("job_pages", __name__)

JOBS_SHOWN = 50
# The statuses in a person's words (the API's stay as they are: the page shows both).
STATUS_WORDS = {
    "PENDING": "waiting",
    "STARTED": "starting",
    "SUBMITTED": "running",
    "COMPLETED": "done",
    "FAILED": "failed",
}


@bp.app_template_filter("status_words")
def status_words(status: Any) -> str:
    return STATUS_WORDS.get(str(status), str(status).lower())


@bp.app_template_filter("without_id")
def without_id(message: Any, job_id: str) -> str:
    """A job's message without its own id (the row or the page already shows it)."""
    return " ".join(str(message).replace(job_id, "").split())


@bp.get("/ui/jobs")
def jobs_page() -> str:
    """The newest jobs (of a kind and a status, when chosen), each with what it ran on, when it
    started and how long it took."""
    chosen = {"kind": request.args.get("kind", ""), "status": request.args.get("status", "")}
    if chosen["kind"] not in ("", *KINDS) or chosen["status"] not in ("", *STATES):
        raise InvalidRequest(f"kind is one of {', '.join(KINDS)} and status one of {', '.join(STATES)}")
    shown_jobs = services().jobs.recent(JOBS_SHOWN, chosen["kind"] or None, chosen["status"] or None)
    for job in shown_jobs:
        job["took"] = took(job)
        if job["kind"] == "predictall":
            job["output"] = _dataset_link(services().jobs.parameters(job["job_id"]).get("outputCollection"))
    choices = {"kind": KINDS, "status": STATES}
    return render_template(
        "ui/jobs.html", jobs=shown_jobs, final=FINAL, chosen=chosen, choices=choices, status_words=STATUS_WORDS
    )


@bp.get("/ui/jobs/<job_id>")
def job_page(job_id: str) -> str:
    view = _job(job_id)
    view["took"] = took(view)
    parameters = services().jobs.parameters(job_id)
    output = _dataset_link(parameters.get("outputCollection")) if view["kind"] == "predictall" else None
    history = steps(services().jobs.history(job_id))
    return render_template("ui/job.html", job=view, parameters=parameters, output=output, history=history, final=FINAL)


@bp.get("/ui/jobs/<job_id>/status")
def job_status(job_id: str) -> Response:
    """What the page's script polls to move the progress bar (the cookie is its credential): the
    job's view, with its status and message as the page words them."""
    view = _job(job_id)
    shown_here = {"status_words": status_words(view["status"]), "message_shown": without_id(view["message"], job_id)}
    return json_response({**view, **shown_here})


def took(view: dict[str, Any]) -> float | None:
    """Seconds from the job's start to its end (to now while it runs); None before it starts."""
    started = readable.moment(view.get("started_at"))
    if started is None:
        return None
    end = readable.moment(view["updated_at"]) if view["status"] in FINAL else datetime.now(UTC)
    return max(0.0, (end - started).total_seconds()) if end else None


def steps(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The job's steps, each with the seconds it took (until the next step; the last one none)."""
    moments = [readable.moment(step.get("updated_at")) for step in history]
    for i, step in enumerate(history):
        following = moments[i + 1] if i + 1 < len(moments) else None
        step["took"] = (following - moments[i]).total_seconds() if following and moments[i] else None
    return history


def _job(job_id: str) -> dict[str, Any]:
    """The job's view; 404 as the API's /jobs/ says it, before a client's text becomes a Redis key
    ('<id>:history' names the job's history list, which Redis refuses to read as a job)."""
    if not issued_id(job_id):
        raise NotFound(f"no job with id {shown(job_id)}: a job id is 32 hexadecimal digits, as issued")
    view = services().jobs.view(job_id)
    if view is None:
        raise NotFound(f"no job with id {shown(job_id)}")
    return view


def _dataset_link(name: Any) -> dict[str, str] | None:
    """A job's 'db.collection' as a link to its dataset page (a mongodb:// URI is shown as is)."""
    if not isinstance(name, str) or "." not in name or "://" in name:
        return None
    db, collection = name.split(".", 1)
    return {"name": name, "url": url_for("dataset_pages.dataset_page", db=db, collection=collection)}
