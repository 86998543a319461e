"""The web pages under /ui/: models, a model with its predict form, jobs, training, datasets.

Server-rendered with Jinja (autoescaped), working without JavaScript; ``static/ui.js`` only
moves progress bars while a job runs. Every page goes through the API's own code paths (the
predictors, the validators, the submission of a job), never a second implementation; a page's
error shows the API's status and message. The guard asks for the token and checks each form's
CSRF token (web/guard.py).
"""

from __future__ import annotations

import hmac
import json
import shlex
import statistics
from collections import Counter
from typing import Any

import pymongo.errors
from flask import Blueprint, Response, redirect, render_template, request, url_for

from dataparser import TASKS, DataParser, number
from predictionservice.exceptions import InvalidRequest, NotFound, RecordError, ServiceError, Unauthorized
from predictionservice.jobstore import FINAL, MAX_LIST, issued_id
from web import errors, guard
from web.charts import Chart, bar_chart
from web.datasets import collections, description, existing, inferred_schema
from web.jobs import queue_training
from web.jsonio import json_response, shown
from web.prediction import answer
from web.reports import checked_label, is_scored, label_choices, scored_report
from web.services import services

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/ui/static")

MAIN_METRICS = ("auc", "accuracy", "f1", "rmse", "r2")
TYPICAL_SAMPLE = 500  # documents of a model's input read for its form's typical record
JOBS_SHOWN = 50
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@bp.app_template_global()
def csrf_token() -> str:
    return guard.csrf_token()


@bp.app_template_filter("num")
def num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


@bp.after_request
def page_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return guard.set_page_cookies(response)


@bp.errorhandler(Exception)
def page_error(error: Exception) -> Any:
    """The API's answer to the error (status, code, message), as a page; in token mode, an
    unauthorized visit gets the token form."""
    if isinstance(error, Unauthorized) and services().params["auth_token"]:
        return render_template("ui/login.html", next=request.full_path.rstrip("?"), error=None), 401
    reply = errors.answer(error)
    envelope = json.loads(reply.get_data())["error"]
    return render_template("ui/error.html", status=reply.status_code, error=envelope), reply.status_code


@bp.get("/")
def root() -> Response:
    return redirect(url_for("ui.models_page"))


@bp.route("/ui/login", methods=["GET", "POST"])
def login() -> Any:
    """The token, asked once; the browser keeps a session cookie derived from it."""
    token = services().params["auth_token"]
    target = request.values.get("next", "")
    target = target if target.startswith("/ui/") and not target.startswith("/ui//") else url_for("ui.models_page")
    if not token:
        return redirect(target)
    if request.method == "POST":
        if hmac.compare_digest(request.form.get("token", "").encode(), token.encode()):
            guard.sign_in(token)
            return redirect(target, 303)
        return render_template("ui/login.html", next=target, error="that is not this service's token"), 401
    return render_template("ui/login.html", next=target, error=None)


# ------------------------------------------------------------------------------------ models


@bp.get("/ui/")
def models_page() -> str:
    models = services().models.summaries()
    for model in models:
        metrics = model.get("metrics") or {}
        model["main"] = [(name, metrics[name]) for name in MAIN_METRICS if name in metrics]
    return render_template("ui/models.html", models=models)


@bp.route("/ui/models/<key>", methods=["GET", "POST"])
def model_page(key: str) -> Any:
    """A model, and its predict form: posted, the record is scored as POST /predict/ scores it."""
    stored = _stored(key)
    parser = DataParser(stored["schema"])
    result, field_errors, error = None, {}, None
    if request.method == "POST":
        record = {f.key: request.form.get(f.key, "") for f in parser.features}
        try:
            result = answer({"modelkey": key, "record": record})
        except RecordError as exc:
            field_errors[exc.field] = exc.message
        except ServiceError as exc:
            error = exc.message
    else:
        record = typical_record(stored, parser)
    page = render_template(
        "ui/model.html",
        key=key,
        model=stored,
        parser=parser,
        charts=model_charts(stored, parser),
        record=record,
        result=result,
        field_errors=field_errors,
        error=error,
        curl=curl_snippet(key, parser, record),
    )
    return page, 400 if field_errors or error else 200


@bp.post("/ui/models/<key>/delete")
def delete_model(key: str) -> Response:
    if not services().models.delete(key):
        raise NotFound(f"model {shown(key)} not found")
    return redirect(url_for("ui.models_page"), 303)


def _stored(key: str) -> dict[str, Any]:
    loaded = services().models.load(key)
    if loaded is None:
        raise NotFound(f"model {shown(key)} not found")
    return loaded[0]


def model_charts(stored: dict[str, Any], parser: DataParser) -> list[Chart]:
    """Coefficients (one chart per class for a multinomial model) or feature importances."""
    names = stored.get("feature_names") or parser.feature_names()
    if "feature_importances" in stored:
        return [bar_chart("feature importances", list(stored["feature_importances"].items()))]
    if "coefficient_matrix" in stored:
        return [
            bar_chart(f"coefficients of class {label}", list(zip(names, row, strict=False)))
            for label, row in zip(parser.class_names, stored["coefficient_matrix"], strict=False)
        ]
    if "coefficients" in stored:
        return [bar_chart("coefficients", list(zip(names, stored["coefficients"], strict=False)))]
    return []


def typical_record(stored: dict[str, Any], parser: DataParser) -> dict[str, str]:
    """The form's first record: each numeric feature's median and each categorical's most common
    value over a sample of the model's training data (when it is still there), else 0 and the
    first category."""
    docs: list[dict[str, Any]] = []
    try:
        source = services().targets.resolve(stored.get("parameters", {}).get("inputCollection", ""), "input")
        fields = {f.key: 1 for f in parser.features}
        with services().mongo.collection(source) as collection:
            docs = list(collection.find({}, {**fields, "_id": 0}, limit=TYPICAL_SAMPLE))
    except (ServiceError, pymongo.errors.PyMongoError):
        pass  # gone or unreachable: the defaults below
    record = {}
    for feature in parser.features:
        seen = [d.get(feature.key) for d in docs]
        if feature.values is None:
            numbers = [n for n in (_number(v) for v in seen) if n is not None]
            middle = statistics.median(numbers) if numbers else 0.0
            record[feature.key] = str(int(middle)) if float(middle).is_integer() else repr(float(middle))
        else:
            common = Counter(str(v) for v in seen if str(v) in feature.values).most_common(1)
            record[feature.key] = common[0][0] if common else min(feature.values, key=feature.values.__getitem__)
    return record


def _number(value: Any) -> float | None:
    try:
        return number(value)
    except ValueError:
        return None


def curl_snippet(key: str, parser: DataParser, record: dict[str, Any]) -> str:
    """The same prediction with curl: numbers as JSON numbers, the token from the environment."""
    typed: dict[str, Any] = {}
    for feature in parser.features:
        value = record.get(feature.key, "")
        typed[feature.key] = _number(value) if feature.values is None and _number(value) is not None else value
        if isinstance(typed[feature.key], float) and typed[feature.key].is_integer():
            typed[feature.key] = int(typed[feature.key])
    body = json.dumps({"modelkey": key, "record": typed})
    auth = ' -H "Authorization: Bearer $PREDICTION_SERVICE_TOKEN"' if services().params["auth_token"] else ""
    url = shlex.quote(request.host_url + "predict/")
    return f"curl -s -X POST {url} -H 'Content-Type: application/json'{auth} -d {shlex.quote(body)}"


# -------------------------------------------------------------------------------------- jobs


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
    return {"name": name, "url": url_for("ui.dataset_page", db=db, collection=collection)}


# ---------------------------------------------------------------------------------- training


@bp.route("/ui/train", methods=["GET", "POST"])
def train_page() -> Any:
    """Pick a dataset and a label, see the inferred schema, choose the algorithm and its grid;
    the job is checked and queued as POST /train/ does, and the browser lands on its page."""
    form = request.values
    dataset, label, task = form.get("dataset", ""), form.get("label", ""), form.get("task", "")
    page: dict[str, Any] = {"datasets": collections(), "dataset": dataset, "label": label, "error": None}
    page["task"], page["tasks"] = task, TASKS
    try:
        if dataset:
            db, collection = _split(dataset)
            page["fields"] = sorted(description(db, collection)["fields"])
            if label:
                page["schema"] = inferred_schema(db, collection, label, task or None)
        if request.method == "POST":
            job_id = queue_training(training_job(form, page.get("schema")))
            return redirect(url_for("ui.job_page", job_id=job_id), 303)
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


# ---------------------------------------------------------------------------------- datasets


@bp.get("/ui/datasets")
def datasets_page() -> str:
    return render_template("ui/datasets.html", datasets=collections())


@bp.get("/ui/datasets/<db>/<collection>")
def dataset_page(db: str, collection: str) -> str:
    """A dataset's count, fields and sample; a scored one's scores and confusion matrix."""
    described = description(db, collection)
    report = None
    if is_scored(described["sample"]):
        max_classes = services().params["report_max_classes"]
        model_label = scoring_label(f"{db}.{collection}")
        with existing(db, collection) as scored:
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
