"""The datasets' pages: the list, and a dataset's count, fields and sample (the core's
description, as GET /datasets/<db>/<collection> answers); a scored dataset's scores and
confusion matrix against a label (web.reports)."""

from __future__ import annotations

from flask import render_template, request

from predictionservice.jobstore import MAX_LIST
from web.pages.common import page_blueprint
from web.reports import checked_label, is_scored, label_choices, scored_report
from web.services import services

bp = page_blueprint("dataset_pages", __name__)


@bp.get("/ui/datasets")
def datasets_page() -> str:
    return render_template("ui/datasets.html", datasets=services().datasets.listing())


@bp.get("/ui/datasets/<db>/<collection>")
def dataset_page(db: str, collection: str) -> str:
    """A dataset's count, fields and sample; a scored one's scores and confusion matrix."""
    datasets = services().datasets
    described = datasets.describe(db, collection)
    report = None
    if is_scored(described["sample"]):
        max_classes = services().params["report_max_classes"]
        model_label = scoring_label(f"{db}.{collection}")
        with datasets.existing(db, collection) as scored:
            choices = label_choices(scored, model_label, max_classes)
            asked = request.args.get("label")
            label = checked_label(asked, choices) if asked is not None else model_label
            report = scored_report(scored, label if label in choices else None, max_classes)
        report["inputs"], report["max_classes"] = choices, max_classes
    columns = sorted({k for d in described["sample"] for k in d})
    return render_template("ui/dataset.html", data=described, columns=columns, report=report)


def scoring_label(output: str) -> str | None:
    """The label of the model whose scoring job wrote output (its latest), when still known."""
    for job in services().jobs.recent(MAX_LIST, kind="predictall", status="COMPLETED"):
        parameters = services().jobs.parameters(job["job_id"])
        if parameters.get("outputCollection") == output:
            loaded = services().models.load(str(parameters.get("modelkey")))
            return loaded[0]["schema"]["label"]["key"] if loaded else None
    return None
