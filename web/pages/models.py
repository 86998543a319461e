"""The models' pages: the list (/ui/, the pages' home) and a model with its charts and predict
form, scored by the core exactly as POST /predict/ scores (``services().predictions``)."""

from __future__ import annotations

import json
import shlex
import statistics
from collections import Counter
from dataclasses import replace
from typing import Any

import pymongo.errors
from flask import Response, redirect, render_template, request, url_for

from dataparser import DataParser, number
from predictionservice.defaults import LOWER_IS_BETTER
from predictionservice.exceptions import InvalidRequest, NotExplainable, NotFound, RecordError, ServiceError
from predictionservice.jobstore import FINAL, issued_id
from predictionservice.modelstore import detail
from web.charts import Chart, bar_chart, contribution_chart
from web.jsonio import shown
from web.pages.common import page_blueprint
from web.requestid import origin
from web.services import services

bp = page_blueprint("model_pages", __name__)

MAIN_METRICS = ("auc", "accuracy", "f1", "rmse", "r2")
# The list's one metric column, by the task as the lineage words it.
KEY_METRIC = {"binary classification": "auc", "multi-class classification": "accuracy", "regression": "rmse"}
FILTERS = ("task", "algorithm", "dataset", "tag")  # the list's choices (and q, words anywhere)
MAX_COMPARED = 6  # models the compare view sets side by side
TYPICAL_SAMPLE = 500  # documents of a model's input read for its form's typical record


def algorithm_titles() -> dict[str, str]:
    """Each allowed algorithm's name as a person says it (its class's ``title``)."""
    factory = services().factory
    return {name: factory.algorithm_class(name).title or name for name in factory.allowed}


@bp.app_template_filter("algorithm")
def algorithm_title(name: Any) -> str:
    """An algorithm as a person names it (its class name when it is not an allowed one)."""
    return algorithm_titles().get(str(name), str(name))


@bp.get("/ui/")
def models_page() -> str:
    """Every model, newest first, with what tells two apart (name, dataset, label, key metric,
    description, tags, age), narrowed by the filters in the query; two or more ticked go to the
    compare view."""
    models = services().stored_models.listing()
    named = services().registry.versions_of([m["model_key"] for m in models])
    for model in models:
        metrics = model.get("metrics") or {}
        model["main"] = [(name, metrics[name]) for name in MAIN_METRICS if name in metrics]
        model["named"] = named.get(model["model_key"])
        task = model["lineage"].get("task")
        model["key_metric"] = (KEY_METRIC[task], metrics[KEY_METRIC[task]]) if KEY_METRIC.get(task) in metrics else None
    chosen = {f: request.args.get(f, "") for f in (*FILTERS, "q")}
    shown = [m for m in models if matches(m, chosen)]
    return render_template(
        "ui/models.html", models=shown, total=len(models), chosen=chosen, choices=choices(models),
        algorithm_titles=algorithm_titles(),
    )  # fmt: skip


def facets(model: dict[str, Any]) -> dict[str, list[str]]:
    """What each filter matches in a model."""
    lineage = model["lineage"]
    return {
        "task": [str(lineage.get("task") or "")],
        "algorithm": [str(lineage.get("algorithm") or "")],
        "dataset": [str(lineage.get("input_collection") or "")],
        "tag": [str(t) for t in model.get("tags") or []],
    }


def matches(model: dict[str, Any], chosen: dict[str, str]) -> bool:
    """Whether the model passes every chosen filter; q is words that must each appear (in any
    case) in its key, name, description, tags, dataset, label or algorithm."""
    found = facets(model)
    if any(chosen[f] and chosen[f] not in found[f] for f in FILTERS):
        return False
    named = model.get("named") or {}
    text = " ".join(
        [model["model_key"], str(named.get("name", "")), str(model.get("description") or ""),
         str(model["lineage"].get("label") or ""), algorithm_title(model["lineage"].get("algorithm")),
         *found["dataset"], *found["tag"]]
    ).lower()  # fmt: skip
    return all(word in text for word in chosen["q"].lower().split())


def choices(models: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each filter's values over every model (not only the shown ones: a filter can be undone)."""
    found: dict[str, set[str]] = {f: set() for f in FILTERS}
    for model in models:
        for f, values in facets(model).items():
            found[f].update(v for v in values if v)
    return {f: sorted(values) for f, values in found.items()}


@bp.route("/ui/compare", methods=["GET", "POST"])
def compare_page() -> Any:
    """Two or more models side by side (``?model=<key or reference>`` each): what they were
    trained on and how, and every held-out metric, the better figure of each marked; whether
    their figures were measured on the same held-out rows is said outright. Posted, a worker
    scores them all on the newest one's held-out rows (POST /models/compare) and the page
    (``?job=<id>``) shows those figures when it is done."""
    refs = list(dict.fromkeys(request.values.getlist("model")))
    if not 2 <= len(refs) <= MAX_COMPARED:
        raise InvalidRequest(f"tick from 2 to {MAX_COMPARED} models to compare (got {len(refs)})")
    if request.method == "POST":
        job_id = services().submit_comparison({"models": refs}, origin())
        return redirect(url_for("model_pages.compare_page", model=refs, job=job_id), 303)
    models = [detail(*services().stored_models.lookup(ref)) for ref in refs]
    named = services().registry.versions_of([m["model_key"] for m in models])
    for model in models:
        model["named"] = named.get(model["model_key"])
    job = comparison_job(request.args.get("job", ""))
    page = {"models": models, "metrics": metric_rows(models), "same_rows": same_heldout_rows(models), "job": job}
    return render_template("ui/compare.html", **page, scored=scored_rows(job, models), final=FINAL)


def comparison_job(job_id: str) -> dict[str, Any] | None:
    """The comparison job the page was sent back with (None without one; 404 for an id that is
    no comparison's)."""
    if not job_id:
        return None
    view = services().jobs.view(job_id) if issued_id(job_id) else None
    if view is None or view["kind"] != "comparison":
        raise NotFound(f"no comparison with id {shown(job_id)}")
    return view


def scored_rows(job: dict[str, Any] | None, models: list[dict[str, Any]]) -> list[tuple[str, list, int | None]]:
    """A finished comparison's figures as the table's rows: (metric, each model's figure in the
    page's order, which is best)."""
    figures = (job or {}).get("comparison") or {}
    by_key = {entry["model_key"]: entry for entry in figures.get("models", [])}
    return metric_rows([by_key.get(m["model_key"], {}) for m in models])


def metric_rows(entries: list[dict[str, Any]]) -> list[tuple[str, list, int | None]]:
    """The compare table's metric rows for entries (models, or a comparison's figures of each):
    (metric, each entry's figure, which is best), every numeric metric any entry has."""
    names = sorted({n for e in entries for n, v in (e.get("metrics") or {}).items() if isinstance(v, (int, float))})
    return [(name, [(e.get("metrics") or {}).get(name) for e in entries], best_of(name, entries)) for name in names]


def best_of(metric: str, models: list[dict[str, Any]]) -> int | None:
    """Which model's figure of metric is best (lower for a loss or an error), None if fewer than
    two have it or they tie."""
    values = [(m.get("metrics") or {}).get(metric) for m in models]
    figures = [(i, v) for i, v in enumerate(values) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(figures) < 2 or len({v for _, v in figures}) == 1:
        return None
    pick = min if metric in LOWER_IS_BETTER else max
    return pick(figures, key=lambda item: item[1])[0]


def same_heldout_rows(models: list[dict[str, Any]]) -> bool:
    """Whether every model's metrics come from the same held-out rows: training holds a row out
    by a hash of its label and features with the job's seed, at the job's fraction, so the rows
    are the same when the dataset, the fields, the seed and the fraction all are."""

    def split(model: dict[str, Any]) -> tuple[Any, ...]:
        job, schema = model.get("parameters") or {}, model.get("schema") or {}
        fields = [schema.get("label", {}).get("key"), *(f.get("key") for f in schema.get("features", []))]
        return job.get("inputCollection"), tuple(fields), job.get("seed"), job.get("holdoutFraction")

    return len({split(m) for m in models}) == 1


@bp.route("/ui/models/<key>", methods=["GET", "POST"])
def model_page(key: str) -> Any:
    """A model (key, or a named model's reference: ``bank``, ``bank@production``), and its predict
    form: posted, the record is scored as POST /predict/ scores it (by the same reference), with
    its explanation drawn as a chart of the features' contributions."""
    model_key, stored = services().stored_models.lookup(key)
    parser = DataParser(stored["schema"])
    result, field_errors, error, why, unexplained = None, {}, None, None, None
    if request.method == "POST":
        record = {f.key: request.form.get(f.key, "") for f in parser.features}
        try:
            result, unexplained = explained_answer(key, record)
            why = contribution_chart(result["explanation"]) if "explanation" in result else None
        except RecordError as exc:
            field_errors[exc.field] = exc.message
        except ServiceError as exc:
            error = exc.message
    else:
        record = typical_record(stored, parser)
    page = render_template(
        "ui/model.html",
        key=key,
        model_key=model_key,
        named=services().registry.versions_of([model_key]).get(model_key),
        model=stored,
        parser=parser,
        charts=model_charts(stored, parser),
        record=record,
        result=result,
        why=why,
        unexplained=unexplained,
        field_errors=field_errors,
        error=error,
        curl=curl_snippet(key, parser, record),
    )
    return page, 400 if field_errors or error else 200


def explained_answer(key: str, record: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The form's answer with its explanation (what POST /predict/ answers with "explain": true);
    a model stored before explanations existed still answers, with the reason it is unexplained."""
    predictions = services().predictions
    try:
        return predictions.answer({"modelkey": key, "record": record, "explain": True}), None
    except NotExplainable as exc:
        return predictions.answer({"modelkey": key, "record": record}), exc.message


@bp.post("/ui/models/<key>/delete")
def delete_model(key: str) -> Response:
    services().stored_models.delete(key)
    return redirect(url_for("model_pages.models_page"), 303)


def model_charts(stored: dict[str, Any], parser: DataParser) -> list[Chart]:
    """Feature importances, or a linear model's standardized effects (one chart per class for a
    multinomial model)."""
    names = stored.get("feature_names") or parser.feature_names()
    if "feature_importances" in stored:
        return [bar_chart("feature importances", list(stored["feature_importances"].items()))]
    rows = stored.get("coefficient_matrix") or ([stored["coefficients"]] if "coefficients" in stored else [])
    titles = [f" of class {label}" for label in parser.class_names] if "coefficient_matrix" in stored else [""]
    stds = stored.get("feature_stds")
    charts = []
    for title, row in zip(titles, rows, strict=False):
        if stds is not None and len(stds) == len(row):
            effects = [c * sd for c, sd in zip(row, stds, strict=True)]
            chart = bar_chart(f"standardized effects{title}", list(zip(names, effects, strict=False)))
            note = "coefficient times the feature's training standard deviation: what a typical difference moves"
        else:
            chart = bar_chart(f"coefficients{title}", list(zip(names, row, strict=False)))
            note = "in each feature's own units: this model was stored without its features' spreads"
        charts.append(replace(chart, note=f"{chart.note}; {note}" if chart.note else note))
    return charts


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
