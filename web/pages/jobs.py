"""The jobs' pages: the recent jobs, and a job with its parameters, history and progress (the
status its script polls); a scoring job links its output to that dataset's page."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, url_for

from predictionservice.exceptions import NotFound
from predictionservice.jobstore import FINAL, issued_id
from web.jsonio import json_response, shown
from web.pages.common import page_blueprint
from web.services import services

bp = page_blueprint("job_pages", __name__)

JOBS_SHOWN = 50


@bp.get("/ui/jobs")
def jobs_page() -> str:
    shown_jobs = services().jobs.recent(JOBS_SHOWN)
    for job in shown_jobs:
        if job["kind"] == "predictall":
            job["output"] = _dataset_link(services().jobs.parameters(job["job_id"]).get("outputCollection"))
    return render_template("ui/jobs.html", jobs=shown_jobs, final=FINAL)


@bp.get("/ui/jobs/<job_id>")
def job_page(job_id: str) -> str:
    view = _job(job_id)
    parameters = services().jobs.parameters(job_id)
    output = _dataset_link(parameters.get("outputCollection")) if view["kind"] == "predictall" else None
    history = services().jobs.history(job_id)
    return render_template("ui/job.html", job=view, parameters=parameters, output=output, history=history, final=FINAL)


@bp.get("/ui/jobs/<job_id>/status")
def job_status(job_id: str) -> Response:
    """What the page's script polls to move the progress bar (the cookie is its credential)."""
    return json_response(_job(job_id))


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
