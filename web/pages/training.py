"""The training page, a form rather than JSON: pick a dataset and a label (never an id), the task,
which features to use and how (numeric or categories, unseen categories refused or ignored: the
core's schema inference with a person's choices, as GET /datasets/<db>/<collection>/schema?...
makes it), an algorithm that fits the task by its name with a line of help per grid field, a
description and tags; the job is checked and queued as POST /train/ does, and the browser lands
on its page."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for

from dataparser import LEFT_OUT, TASKS, UNMET_CATEGORIES, DataParser
from predictionservice.exceptions import InvalidRequest, ServiceError
from web.jsonio import shown
from web.pages.common import page_blueprint
from web.requestid import origin
from web.services import services

bp = page_blueprint("training_pages", __name__)

# What a dropped field's reason starts with when the person's own choice dropped it: such a field
# stays in the form (to be taken back); one the inference cannot use is shown with its reason only.
CHOSEN_REASONS = (LEFT_OUT, UNMET_CATEGORIES)


@bp.route("/ui/train", methods=["GET", "POST"])
def train_page() -> Any:
    """The form, refilled from what was sent. Posted with "Train", the job is queued and the
    browser sent to its page (303); with "Update", the form again with the schema the choices
    make; a refusal shows the API's message (400)."""
    form = request.values
    dataset, label, task = form.get("dataset", ""), form.get("label", ""), form.get("task", "")
    datasets = services().datasets
    page: dict[str, Any] = {"datasets": datasets.listing(), "dataset": dataset, "label": label, "error": None}
    page["task"], page["tasks"], page["chosen"] = task, TASKS, form_choices(form)
    try:
        if dataset:
            db, collection = _split(dataset)
            page["labels"] = datasets.label_choices(db, collection)
            if label:
                page["schema"] = datasets.schema(db, collection, label, task or None, **page["chosen"])
        if request.method == "POST" and form.get("action") == "train":
            refuse_unmet_choices(page.get("schema"))
            job_id = services().submit_training(training_job(form, page.get("schema")), origin())
            return redirect(url_for("job_pages.job_page", job_id=job_id), 303)
    except ServiceError as exc:
        page["error"] = exc.message
    page["features"] = feature_rows(page.get("schema"), page["chosen"])
    page["algorithms"] = offered_algorithms(page.get("schema"))
    page["algorithm"] = form.get("algorithm") or next(iter(page["algorithms"]), "")
    return render_template("ui/train.html", form=form, **page), 400 if page["error"] else 200


def refuse_unmet_choices(schema: dict[str, Any] | None) -> None:
    """A field a person asked to be categories that cannot be (a fractional value, too many) is
    not silently left out of the model: the form comes back saying so."""
    unmet = [d for d in (schema or {}).get("dropped", []) if d["reason"].startswith(UNMET_CATEGORIES)]
    if unmet:
        said = "; ".join(f"'{d['field']}': {d['reason']}" for d in unmet)
        raise InvalidRequest(f"{said}: set it back to a number, or untick it")


def form_choices(form: Any) -> dict[str, list[str]]:
    """The features' choices the form posted: the offered features not ticked are left out, the
    numeric ones set to categories become categories, the categorical ones set to ignore ignore
    unseen values (nothing posted: the inference's own schema)."""
    offered = form.getlist("offered")
    included = set(form.getlist("include"))
    return {
        "exclude": [key for key in offered if key not in included],
        "categorical": [key for key in offered if form.get(f"kind:{key}") == "categorical"],
        "ignore_unknown": [key for key in offered if form.get(f"unknown:{key}") == "ignore"],
    }


def feature_rows(schema: dict[str, Any] | None, chosen: dict[str, list[str]]) -> list[dict[str, Any]]:
    """A row per field of the schema's features and of what it dropped, in the collection's order:
    whether it is offered (a feature, or dropped by a choice) and used, numeric or categorical
    (and whether a person can switch it: a number), its categories and unseen-value handling."""
    if not schema:
        return []
    rows = []
    for feature in schema["features"]:
        numeric = "values" not in feature
        rows.append({
            "key": feature["key"], "offered": True, "used": True, "numeric": numeric,
            "switchable": numeric or feature["key"] in chosen["categorical"],
            "categories": len(feature.get("values") or {}), "ignore": feature.get("unknown") == "ignore",
            "reason": None, "unmet": False,
        })  # fmt: skip
    for dropped in schema.get("dropped", []):
        unmet = dropped["reason"].startswith(UNMET_CATEGORIES)  # still wanted: ticked, its kind switchable
        rows.append({
            "key": dropped["field"], "offered": dropped["reason"].startswith(CHOSEN_REASONS), "used": False,
            "numeric": dropped["field"] not in chosen["categorical"], "switchable": unmet,
            "categories": 0, "ignore": False, "reason": dropped["reason"], "unmet": unmet,
        })  # fmt: skip
    return rows


def offered_algorithms(schema: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each allowed algorithm that can learn the schema's task: its title and summary, and its
    grid fields (lists) with their defaults as comma-separated text and a line of help."""
    factory = services().factory
    task = DataParser(schema).task if schema else None
    offered = {}
    for name in factory.allowed:
        algorithm = factory.algorithm_class(name)
        if task is not None and task not in algorithm.tasks:
            continue
        defaults = algorithm.with_defaults({})
        grid = [
            (key, ", ".join(str(v) for v in defaults.get(key, [])), algorithm.field_help.get(key, ""))
            for key, spec in algorithm.job_fields.items()
            if spec.get("type") == "array"
        ]
        offered[name] = {"title": algorithm.title or name, "summary": algorithm.summary, "grid": grid}
    return offered


def training_job(form: Any, schema: dict[str, Any] | None) -> dict[str, Any]:
    """The job document the training form describes, with the schema its choices made."""
    name = form.get("algorithm", "")
    factory = services().factory
    job: dict[str, Any] = {"name": factory.check(name), "inputCollection": form.get("dataset", "")}
    if schema is None:
        raise InvalidRequest("pick a label first: the schema is inferred from it")
    job["schema"] = schema  # its "dropped", the inference's note, is left out as /train/ leaves it out
    for key, spec in factory.algorithm_class(name).job_fields.items():
        text = form.get(f"{name}.{key}", "").strip()
        if spec.get("type") == "array" and text:
            kind = int if spec["items"]["type"] == "integer" else float
            job[key] = [_grid_value(key, kind, part) for part in text.split(",") if part.strip()]
    if form.get("numFolds", "").strip():
        job["numFolds"] = _grid_value("numFolds", int, form["numFolds"])
    if form.get("description", "").strip():
        job["description"] = form["description"].strip()
    tags = [tag.strip() for tag in form.get("tags", "").split(",") if tag.strip()]
    if tags:
        job["tags"] = tags
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
