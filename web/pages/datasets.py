"""The datasets' pages: the list (with an upload form, what scored a scored collection, and
downloads), and a dataset's count, fields and sample (the core's description, as
GET /datasets/<db>/<collection> answers), its deletion once confirmed; a scored dataset's scores
and confusion matrix against a label (web.reports). Uploads, downloads and deletion are the
core's operations, as PUT, GET .../export and DELETE /datasets/ run them."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for

from predictionservice.datasets import EXPORT_FORMATS
from predictionservice.exceptions import InvalidRequest, ServiceError
from predictionservice.jobstore import MAX_LIST
from web import downloads
from web.pages.common import page_blueprint
from web.reports import checked_label, is_scored, label_choices, scored_report
from web.services import services

bp = page_blueprint("dataset_pages", __name__)


@bp.get("/ui/datasets")
def datasets_page() -> str:
    return listing_page({}, None)


@bp.post("/ui/datasets/upload")
def upload_dataset() -> tuple[str, int]:
    """A CSV file posted from the list's form, loaded as PUT /datasets/<db>/<collection> loads
    text/csv (mode and bad-lines choice as its query's); the list again, with what was loaded
    and the lines skipped, or the API's message (400)."""
    form = request.form
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise InvalidRequest("choose a CSV file to upload")
        db, collection = form.get("db", "").strip(), form.get("collection", "").strip()
        if not db or not collection:
            raise InvalidRequest("name the database and the collection the file is loaded into")
        loaded = services().datasets.load(
            db, collection, upload.stream, "csv", form.get("mode", "replace"), form.get("on_error", "fail")
        )
    except ServiceError as exc:
        return listing_page(form, None, exc.message), 400
    return listing_page({}, loaded), 200


def listing_page(form: Any, loaded: dict[str, Any] | None, error: str | None = None) -> str:
    """The list: each dataset with its count, what scored it (a scored one is not offered for
    training) and its downloads; the upload form (refilled from form)."""
    datasets = services().datasets.listing()
    scored_by = scoring_models()
    for dataset in datasets:
        dataset["scored_by"] = scored_by.get(dataset["dataset"])
    page = {"datasets": datasets, "form": form, "loaded": loaded, "error": error, "formats": EXPORT_FORMATS}
    return render_template("ui/datasets.html", **page)


@bp.get("/ui/datasets/<db>/<collection>")
def dataset_page(db: str, collection: str) -> str:
    """A dataset's count, fields and sample; a scored one's model, scores and confusion matrix."""
    datasets = services().datasets
    described = datasets.describe(db, collection)
    report, model_key = None, None
    if is_scored(described["sample"]):
        max_classes = services().params["report_max_classes"]
        model_key = scoring_models().get(f"{db}.{collection}")
        model_label = scoring_label(model_key)
        with datasets.existing(db, collection) as scored:
            choices = label_choices(scored, model_label, max_classes)
            asked = request.args.get("label")
            label = checked_label(asked, choices) if asked is not None else model_label
            report = scored_report(scored, label if label in choices else None, max_classes)
        report["inputs"], report["max_classes"] = choices, max_classes
    columns = sorted({k for d in described["sample"] for k in d})
    page = {"data": described, "db": db, "collection": collection, "columns": columns, "report": report,
            "model_key": model_key, "formats": EXPORT_FORMATS}  # fmt: skip
    return render_template("ui/dataset.html", **page)


@bp.get("/ui/datasets/<db>/<collection>/download")
def download_dataset(db: str, collection: str) -> Response:
    """The whole collection as a file (``?format=csv`` or ``jsonl``), as GET .../export answers:
    the page's cookie is its credential."""
    return downloads.export(db, collection, request.args.get("format", "csv"))


@bp.post("/ui/datasets/<db>/<collection>/delete")
def delete_dataset(db: str, collection: str) -> Response:
    """Drops the dataset once its name was typed to confirm (as DELETE /datasets/ drops it)."""
    name = f"{db}.{collection}"
    if request.form.get("confirm", "").strip() != name:
        raise InvalidRequest(f"type the dataset's name, {name}, to confirm its deletion")
    services().datasets.drop(db, collection)
    return redirect(url_for("dataset_pages.datasets_page"), 303)


def scoring_models() -> dict[str, str]:
    """Each scored collection ('db.collection') and the model whose latest completed scoring job
    wrote it, as far as the job records still know."""
    found: dict[str, str] = {}
    for job in services().jobs.recent(MAX_LIST, kind="predictall", status="COMPLETED"):
        parameters = services().jobs.parameters(job["job_id"])
        output, model = parameters.get("outputCollection"), parameters.get("modelkey")
        if isinstance(output, str) and isinstance(model, str):
            found.setdefault(output, model)  # newest first: the first seen is the latest
    return found


def scoring_label(model: str | None) -> str | None:
    """The label of the model that scored a collection (its key or the reference the job named),
    when the model is still there."""
    if not model:
        return None
    try:
        return services().stored_models.lookup(model)[1]["schema"]["label"]["key"]
    except ServiceError:
        return None
