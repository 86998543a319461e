"""The models' pages: the list (/ui/, the pages' home) and a model with its charts and predict
form, scored by the core exactly as POST /predict/ scores (``services().predictions``)."""

from __future__ import annotations

import json
import shlex
import statistics
from collections import Counter
from typing import Any

import pymongo.errors
from flask import Response, redirect, render_template, request, url_for

from dataparser import DataParser, number
from predictionservice.exceptions import NotExplainable, RecordError, ServiceError
from web.charts import Chart, bar_chart, contribution_chart
from web.pages.common import page_blueprint
from web.services import services

bp = page_blueprint("model_pages", __name__)

MAIN_METRICS = ("auc", "accuracy", "f1", "rmse", "r2")
TYPICAL_SAMPLE = 500  # documents of a model's input read for its form's typical record


@bp.get("/ui/")
def models_page() -> str:
    models = services().stored_models.listing()
    named = services().registry.versions_of([m["model_key"] for m in models])
    for model in models:
        metrics = model.get("metrics") or {}
        model["main"] = [(name, metrics[name]) for name in MAIN_METRICS if name in metrics]
        model["named"] = named.get(model["model_key"])
    return render_template("ui/models.html", models=models)


@bp.route("/ui/models/<key>", methods=["GET", "POST"])
def model_page(key: str) -> Any:
    """A model (key, or a named model's reference: ``bank``, ``bank@production``), and its predict
    form: posted, the record is scored as POST /predict/ scores it (by the same reference), with
    its explanation drawn as a chart of the features' contributions."""
    model_key, _ = services().stored_models.resolve(key)
    stored = services().stored_models.stored(model_key)
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
