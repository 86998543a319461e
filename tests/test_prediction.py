"""predictionservice/prediction.py, the core's online prediction, called as a scheduler or a
worker would call it: no Flask app, no request; its collaborators built here from a real Redis
(the session's redis-server) holding a model stored as training stores it. The pure checks (the
answer's size, the schema, the key) are unit tests on a predictor built in memory."""

from __future__ import annotations

import math
import subprocess
import sys
import uuid

import pytest

from dataparser import DataParser
from helpers import ROOT
from modelfactory import ModelFactory
from predictionservice.exceptions import InvalidRequest, MissingField, NotFound, PayloadTooLarge, RecordErrors
from predictionservice.jobstore import JobStore
from predictionservice.metrics import Metrics
from predictionservice.modelstore import ModelStore
from predictionservice.openinference import inference_request_schema
from predictionservice.prediction import Predictions, check_answer_size, check_schema, checked_key
from predictionservice.predictorcache import PredictorCache
from predictionservice.predictors import LinearClassifier
from predictionservice.validation import Validator, predict_schema

SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "x"}, {"key": "c", "values": {"a": 0, "b": 1}}],
}
WEIGHTS, INTERCEPT = [0.75, -1.5, 0.5], 0.25
SCORED = "prediction_service_predictions_total"
BY_KEY = {"algorithm": "LogisticRegressionWrapper", "name": "", "version": ""}  # a model key: no name


def model() -> dict:
    """A binary logistic model over SCHEMA, in the layout training stores."""
    return {"name": "LogisticRegressionWrapper", "schema": SCHEMA, "coefficients": WEIGHTS, "intercept": INTERCEPT}


def sigmoid(record: dict) -> float:
    """The positive class's probability by hand: c is one column per category (one-hot)."""
    margin = WEIGHTS[0] * record["x"] + WEIGHTS[1] * (record["c"] == "a") + WEIGHTS[2] * (record["c"] == "b")
    margin += INTERCEPT
    return 1 / (1 + math.exp(-margin))


@pytest.fixture()
def core(redis_db):
    """Predictions over a model stored in Redis, counted by a real Metrics: what a scheduler builds."""
    store = ModelStore(redis_db, prefix=f"t{uuid.uuid4().hex[:6]}:")
    key = f"core-{uuid.uuid4().hex[:8]}"
    store.save(key, model())
    cache = PredictorCache(ModelFactory(["LogisticRegressionWrapper"]), store)
    metrics = Metrics(JobStore(redis_db, 3600), store, cache, redis_db, "q")
    predictions = Predictions(
        cache, Validator(predict_schema(100)), 1000, metrics, infer_validator=Validator(inference_request_schema(100))
    )
    return predictions, key, metrics


def test_the_core_answers_a_record_with_no_flask_app(core):
    import flask

    predictions, key, metrics = core
    record = {"x": 2.0, "c": "a"}
    answer = predictions.answer({"modelkey": key, "record": record})
    assert not flask.has_app_context()
    assert answer["modelkey"] == key
    assert answer["probability"] == pytest.approx(sigmoid(record), rel=1e-12)
    assert answer["label"] == ("yes" if sigmoid(record) > 0.5 else "no")
    assert metrics.registry.get_sample_value(SCORED, BY_KEY) == 1


def test_the_core_answers_records_and_counts_each(core):
    predictions, key, metrics = core
    records = [{"x": x / 2, "c": "ab"[x % 2]} for x in range(-3, 4)]
    answer = predictions.answer({"modelkey": key, "records": records, "top_probabilities": 1})
    assert [a["probability"] for a in answer["predictions"]] == pytest.approx([sigmoid(r) for r in records])
    assert all(len(a["probabilities"]) == 1 for a in answer["predictions"])
    assert metrics.registry.get_sample_value(SCORED, BY_KEY) == len(records)


def test_the_core_refuses_what_the_route_refuses(core):
    predictions, key, _ = core
    with pytest.raises(InvalidRequest, match="prediction request"):
        predictions.answer({"modelkey": key})  # neither record nor records
    with pytest.raises(NotFound, match="not found"):
        predictions.answer({"modelkey": "no-such-model", "record": {"x": 1, "c": "a"}})
    with pytest.raises(MissingField):
        predictions.answer({"modelkey": key, "record": {"c": "a"}})
    other = {**SCHEMA, "features": SCHEMA["features"][:1]}
    with pytest.raises(InvalidRequest, match="does not agree with the schema stored"):
        predictions.answer({"modelkey": key, "record": {"x": 1, "c": "a"}, "schema": other})


def test_a_report_counts_only_the_records_scored_and_one_bad_record_keeps_its_own_error(core):
    predictions, key, metrics = core
    records = [{"x": 1.0, "c": "a"}, {"x": "?", "c": "z"}, {"x": -1.0, "c": "b"}, {"c": "a"}]
    answer = predictions.answer({"modelkey": key, "records": records, "on_error": "report"})
    scored = [a.get("probability") for a in answer["predictions"]]
    assert scored == [pytest.approx(sigmoid(records[0])), None, pytest.approx(sigmoid(records[2])), None]
    assert [d["field"] for d in answer["predictions"][1]["error"]["details"]] == ["x", "c"]
    assert metrics.registry.get_sample_value(SCORED, BY_KEY) == 2
    with pytest.raises(RecordErrors) as refused:
        predictions.answer({"modelkey": key, "records": records})
    assert [(d["index"], d["field"]) for d in refused.value.details] == [(1, "x"), (1, "c"), (3, "x")]
    with pytest.raises(MissingField) as one:  # a single problem: the very error it always was
        predictions.answer({"modelkey": key, "records": [records[0], records[3]]})
    assert one.value.details == [{"field": "x", "problem": "is missing", "index": 1}]
    assert metrics.registry.get_sample_value(SCORED, BY_KEY) == 2


def test_the_core_answers_the_v2_protocol_with_the_same_predictor(core):
    predictions, key, _ = core
    body = {
        "inputs": [
            {"name": "x", "shape": [2, 1], "datatype": "FP64", "data": [2.0, -1.0]},
            {"name": "c", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]},
        ],
        "outputs": [{"name": "probability"}],
    }
    answer = predictions.infer(key, body)
    (output,) = answer["outputs"]
    assert output["name"] == "probability"
    expected = [sigmoid({"x": 2.0, "c": "a"}), sigmoid({"x": -1.0, "c": "b"})]
    assert output["data"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(NotFound, match=r"model '\.\./x' not found"):
        predictions.infer("../x", body)


def test_the_core_imports_no_web_framework():
    """What a scheduler imports to predict: the core and the model factory, never Flask."""
    probe = (
        "import sys, modelfactory, predictionservice.prediction, predictionservice.datasets, "
        "predictionservice.models; print(sorted({'flask', 'werkzeug', 'celery', 'web'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------- unit


def predictor(classes: int) -> LinearClassifier:
    values = {f"k{i}": i for i in range(classes)}
    schema = {"label": {"key": "y", "values": values}, "features": [{"key": "x"}]}
    return LinearClassifier(DataParser(schema), [[float(i)] for i in range(classes)], [0.0] * classes)


def test_an_answer_within_the_cap_passes_and_one_past_it_names_the_remedies():
    wide = predictor(10)
    check_answer_size(wide, 10, None, 100)  # 100 probabilities: at the cap
    with pytest.raises(PayloadTooLarge) as refused:
        check_answer_size(wide, 11, None, 100)
    message = refused.value.message
    assert message.startswith("the answer would hold 11 records x 10 class probabilities = 110")
    assert '"top_probabilities": k (k <= 9)' in message and "send at most 10 records a request" in message
    check_answer_size(wide, 11, 5, 100)  # the top five: 55
    with pytest.raises(PayloadTooLarge, match="name the outputs without 'probabilities'"):
        check_answer_size(wide, 11, None, 100, v2=True)


def test_a_schema_agrees_verbatim_or_by_meaning_else_is_refused():
    binary = LinearClassifier(DataParser(SCHEMA), [WEIGHTS], [INTERCEPT])
    check_schema({"record": {}}, binary)  # none sent
    check_schema({"schema": SCHEMA}, binary)
    reordered = {"features": SCHEMA["features"], "label": SCHEMA["label"]}
    check_schema({"schema": reordered}, binary)  # not verbatim, the same schema
    with pytest.raises(InvalidRequest, match="send the record alone"):
        check_schema({"schema": {**SCHEMA, "label": {"key": "z", "values": {"no": 0, "yes": 1}}}}, binary)


def test_a_key_no_model_can_have_is_not_found_and_clipped():
    assert checked_key("job-1_a") == "job-1_a"
    with pytest.raises(NotFound) as refused:
        checked_key("x/" * 200)
    assert refused.value.message.endswith("(400 characters) not found")
