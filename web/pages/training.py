"""The training page: pick a dataset and a label, see the inferred schema (the core's, as
GET /datasets/<db>/<collection>/schema infers it), choose the algorithm and its grid; the job is
checked and queued as POST /train/ does, and the browser lands on its page."""

from __future__ import annotations

import json
from typing import Any

from flask import redirect, render_template, request, url_for

from dataparser import TASKS, DataParser
from predictionservice.exceptions import InvalidRequest, ServiceError
from web.jsonio import shown
from web.pages.common import page_blueprint
from web.requestid import origin
from web.services import services

bp = page_blueprint("training_pages", __name__)


@bp.route("/ui/train", methods=["GET", "POST"])
def train_page() -> Any:
    """The form, refilled from what was sent; posted, the job is queued and the browser sent to
    its page (303), else the form again with the API's message (400)."""
    form = request.values
    dataset, label, task = form.get("dataset", ""), form.get("label", ""), form.get("task", "")
    datasets = services().datasets
    page: dict[str, Any] = {"datasets": datasets.listing(), "dataset": dataset, "label": label, "error": None}
    page["task"], page["tasks"] = task, TASKS
    try:
        if dataset:
            db, collection = _split(dataset)
            page["fields"] = sorted(datasets.describe(db, collection)["fields"])
            if label:
                page["schema"] = datasets.schema(db, collection, label, task or None)
        if request.method == "POST":
            job_id = services().submit_training(training_job(form, page.get("schema")), origin())
            return redirect(url_for("job_pages.job_page", job_id=job_id), 303)
    except ServiceError as exc:
        page["error"] = exc.message
    page["algorithms"] = offered_algorithms(page.get("schema"))
    page["schema_text"] = form.get("schema") or (json.dumps(page["schema"], indent=1) if "schema" in page else "")
    page["chosen"] = form.get("algorithm") or next(iter(page["algorithms"]), "")
    return render_template("ui/train.html", form=form, **page), 400 if page["error"] else 200


def offered_algorithms(schema: dict[str, Any] | None) -> dict[str, list[tuple[str, str]]]:
    """Each offered algorithm that can learn the schema's task, with its grid fields (lists)
    and their defaults as comma-separated text."""
    factory = services().factory
    task = DataParser(schema).task if schema else None
    offered = {}
    for name in factory.allowed:
        algorithm = factory.algorithm_class(name)
        if task is not None and task not in algorithm.tasks:
            continue
        defaults = algorithm.with_defaults({})
        grid = [k for k, spec in algorithm.job_fields.items() if spec.get("type") == "array"]
        offered[name] = [(k, ", ".join(str(v) for v in defaults.get(k, []))) for k in grid]
    return offered


def training_job(form: Any, inferred: dict[str, Any] | None) -> dict[str, Any]:
    """The job document the training form describes (its schema text, else the inferred one)."""
    name = form.get("algorithm", "")
    factory = services().factory
    job: dict[str, Any] = {"name": factory.check(name), "inputCollection": form.get("dataset", "")}
    try:
        job["schema"] = json.loads(form["schema"]) if form.get("schema", "").strip() else inferred
    except ValueError as exc:
        raise InvalidRequest(f"'schema' is not JSON: {exc}") from None
    if job["schema"] is None:
        raise InvalidRequest("pick a label first: the schema is inferred from it")
    fields = factory.algorithm_class(name).job_fields
    for key, spec in fields.items():
        text = form.get(f"{name}.{key}", "").strip()
        if spec.get("type") == "array" and text:
            kind = int if spec["items"]["type"] == "integer" else float
            job[key] = [_grid_value(key, kind, part) for part in text.split(",") if part.strip()]
    if form.get("numFolds", "").strip():
        job["numFolds"] = _grid_value("numFolds", int, form["numFolds"])
    return job


def _grid_value(key: str, kind: type, text: str) -> Any:
    try:
        return kind(text.strip())
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise InvalidRequest(f"'{key}': {text.strip()!r} is not {what}") from None


def _split(dataset: str) -> tuple[str, str]:
    db, dot, collection = dataset.partition(".")
    if not (db and dot and collection):
        raise InvalidRequest(f"a dataset is 'db.collection', not {shown(dataset)}")
    return db, collection
