"""predictors.py, explanations of the linear models (docs/API.md, "Explanations"): each feature's
contribution is its coefficients x (its encoded columns - their training means), a categorical's
one-hot columns summed into it, and base + contributions is the model's output (logistic: the
margin, multi-class: the predicted class's; regression: the value). The stored models here are
built from coefficients drawn at random, as training stores them; the expected numbers are
computed in this file from those coefficients, feature by feature, not by the predictor's code.
The /predict/ checks run the app in process on the session's Redis."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from helpers import known_rows
from LinearRegressionWrapper import LinearRegressionWrapper
from LogisticRegressionWrapper import LogisticRegressionWrapper
from predictionservice.exceptions import InvalidSchema, NotExplainable
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect

ROWS = 400
COLUMNS = 5  # x1, x2 and c's three one-hot columns


def stored(kind: str, classes: int = 2, seed: int = 0, *, means: bool = True) -> tuple[dict, list[dict]]:
    """A stored model of the kind (binary, multiclass, regression) with random coefficients over
    known_rows' schema, its feature_means those of rows drawn apart from the ones it explains,
    and the rows to explain."""
    rng = np.random.default_rng(seed)
    rows, schema, _ = known_rows("linear" if kind == "regression" else "logistic", ROWS, seed=seed, classes=classes)
    model: dict = {"schema": schema}
    if kind == "regression":
        model |= {"name": "LinearRegressionWrapper", "coefficients": rng.normal(0, 2, COLUMNS).tolist()}
        model["intercept"] = float(rng.normal())
    elif kind == "binary":
        model |= {"name": "LogisticRegressionWrapper", "coefficients": rng.normal(0, 2, COLUMNS).tolist()}
        model["intercept"] = float(rng.normal())
    else:
        model |= {
            "name": "LogisticRegressionWrapper",
            "coefficient_matrix": rng.normal(0, 2, (classes, COLUMNS)).tolist(),
        }
        model["intercepts"] = rng.normal(0, 1, classes).tolist()
    if means:
        model["feature_means"] = [float(rng.uniform(-0.5, 0.5)) for _ in range(2)] + rng.dirichlet([1, 1, 1]).tolist()
    return model, rows


def compiled(model: dict):
    algorithm = LinearRegressionWrapper if model["name"] == "LinearRegressionWrapper" else LogisticRegressionWrapper
    return algorithm().compile(model)


def columns(record: dict) -> list[float]:
    """known_rows' encoding by hand: x1, x2, then c one-hot over a, b, c."""
    return [record["x1"], record["x2"], *(float(record["c"] == k) for k in "abc")]


def by_hand(model: dict, record: dict) -> tuple[float, dict[str, float], float]:
    """(base, contributions, output) from the stored numbers, one feature at a time."""
    x, means = columns(record), model["feature_means"]
    if "coefficient_matrix" in model:
        margins = [
            b + sum(w * v for w, v in zip(row, x, strict=True))
            for row, b in zip(model["coefficient_matrix"], model["intercepts"], strict=True)
        ]
        k = max(range(len(margins)), key=margins.__getitem__)
        weights, intercept = model["coefficient_matrix"][k], model["intercepts"][k]
    else:
        weights, intercept = model["coefficients"], model["intercept"]
    output = intercept + sum(w * v for w, v in zip(weights, x, strict=True))
    part = [w * (v - m) for w, v, m in zip(weights, x, means, strict=True)]
    base = intercept + sum(w * m for w, m in zip(weights, means, strict=True))
    return base, {"x1": part[0], "x2": part[1], "c": part[2] + part[3] + part[4]}, output


CASES = [("binary", 2, "margin"), ("multiclass", 4, "margin"), ("regression", 0, "value")]


@pytest.mark.parametrize(("kind", "classes", "output"), CASES)
def test_base_and_contributions_add_up_to_the_output_on_a_whole_data_set(kind, classes, output):
    model, rows = stored(kind, classes, seed=classes + 1)
    explanations = compiled(model).explanations(rows)
    assert len(explanations) == len(rows)
    for record, explanation in zip(rows, explanations, strict=True):
        base, contributions, value = by_hand(model, record)
        assert explanation["output"] == output
        assert list(explanation["contributions"]) == ["x1", "x2", "c"]  # one per schema feature, in order
        assert explanation["base"] + sum(explanation["contributions"].values()) == pytest.approx(value, abs=1e-9)
        assert explanation["base"] == pytest.approx(base, abs=1e-12)
        assert explanation["contributions"] == pytest.approx(contributions, abs=1e-12)


@pytest.mark.parametrize(("kind", "classes", "output"), CASES)
def test_the_output_explained_is_the_answer_s(kind, classes, output):
    """The margin explained is the one the answer comes from: binary, its sigmoid is the positive
    class's probability; multi-class, the predicted label's margin; regression, the prediction."""
    model, rows = stored(kind, classes, seed=7)
    predictor = compiled(model)
    answers, explanations = predictor.predict(rows), predictor.explanations(rows)
    for record, answer, explanation in zip(rows, answers, explanations, strict=True):
        total = explanation["base"] + sum(explanation["contributions"].values())
        if kind == "binary":
            assert 1 / (1 + np.exp(-total)) == pytest.approx(answer["probability"], rel=1e-9)
        elif kind == "multiclass":
            assert answer["prediction"] == predicted(model, record)
            assert total == pytest.approx(by_hand(model, record)[2], abs=1e-9)
        else:
            assert total == pytest.approx(answer["prediction"], abs=1e-9)


@pytest.mark.parametrize(("kind", "classes"), [("binary", 2), ("regression", 0), ("multiclass", 3)])
def test_changing_one_feature_changes_its_contribution_alone_by_the_output_s_change(kind, classes):
    model, rows = stored(kind, classes, seed=11)
    predictor = compiled(model)
    changes = {"x1": lambda r: {**r, "x1": r["x1"] + 0.75}, "c": lambda r: {**r, "c": "b" if r["c"] != "b" else "c"}}
    for record in rows[:50]:
        before = predictor.explanations([record])[0]
        for key, change in changes.items():
            after = predictor.explanations([change(record)])[0]
            _, _, out_before = by_hand(model, record)
            _, _, out_after = by_hand(model, change(record))
            if kind == "multiclass" and predicted(model, record) != predicted(model, change(record)):
                continue  # the explained class is the predicted one: the property holds while it stays
            assert after["base"] == before["base"]
            for other in ("x1", "x2", "c"):
                if other != key:
                    assert after["contributions"][other] == before["contributions"][other]
            moved = after["contributions"][key] - before["contributions"][key]
            assert moved == pytest.approx(out_after - out_before, abs=1e-9)


def predicted(model: dict, record: dict) -> int:
    x = columns(record)
    margins = [
        b + sum(w * v for w, v in zip(row, x, strict=True))
        for row, b in zip(model["coefficient_matrix"], model["intercepts"], strict=True)
    ]
    return max(range(len(margins)), key=margins.__getitem__)


def test_a_model_stored_without_feature_means_predicts_but_is_not_explainable():
    model, rows = stored("binary", means=False)
    predictor = compiled(model)
    assert len(predictor.predict(rows[:3])) == 3
    with pytest.raises(NotExplainable, match="must be retrained to be explained"):
        predictor.explanations(rows[:3])


def test_feature_means_that_do_not_fit_the_schema_are_refused():
    model, _ = stored("regression")
    with pytest.raises(InvalidSchema, match="4 feature means; its schema has 5"):
        compiled({**model, "feature_means": model["feature_means"][:4]})


def test_a_batch_scored_in_slices_is_explained_as_record_by_record(monkeypatch):
    from predictionservice import predictors

    model, rows = stored("multiclass", 3, seed=5)
    predictor = compiled(model)
    one_by_one = [predictor.explanations([record])[0] for record in rows[:40]]
    monkeypatch.setattr(predictors, "PREDICT_CHUNK_VALUES", 7 * COLUMNS)  # 7 rows a slice
    assert predictor.explanations(rows[:40]) == one_by_one


# ------------------------------------------------------------------------ /predict/ (app tier)


@pytest.fixture()
def models(client):
    """A model with feature_means and one stored before them, in the app's model store."""
    store = ModelStore(connect(client.params["redis_url"], client.params["models_db"]))
    keys = {"new": f"explain-{uuid.uuid4().hex[:8]}", "old": f"old-{uuid.uuid4().hex[:8]}"}
    model, rows = stored("binary", seed=3)
    store.save(keys["new"], model)
    store.save(keys["old"], {k: v for k, v in model.items() if k != "feature_means"})
    yield keys, model, rows
    for key in keys.values():
        store.delete(key)


def test_predict_with_explain_answers_each_record_s_explanation(client, models):
    keys, model, rows = models
    single = client.post("/predict/", json={"modelkey": keys["new"], "record": rows[0], "explain": True})
    assert single.status_code == 200, single.text
    base, contributions, _ = by_hand(model, rows[0])
    assert single.json()["explanation"]["base"] == pytest.approx(base, abs=1e-12)
    assert single.json()["explanation"]["contributions"] == pytest.approx(contributions, abs=1e-12)
    batch = client.post("/predict/", json={"modelkey": keys["new"], "records": rows[:20], "explain": True})
    assert batch.status_code == 200, batch.text
    answers = batch.json()["predictions"]
    assert answers[0]["explanation"] == single.json()["explanation"]
    for record, answer in zip(rows[:20], answers, strict=True):
        explanation = answer["explanation"]
        assert explanation["base"] + sum(explanation["contributions"].values()) == pytest.approx(
            by_hand(model, record)[2], abs=1e-9
        )


def test_predict_without_explain_answers_as_before(client, models):
    keys, _, rows = models
    plain = client.post("/predict/", json={"modelkey": keys["new"], "records": rows[:5]}).json()
    told = client.post("/predict/", json={"modelkey": keys["new"], "records": rows[:5], "explain": False}).json()
    assert plain == told
    assert all(
        set(answer) == {"prediction", "label", "probability", "probabilities"} for answer in plain["predictions"]
    )
    explained = client.post("/predict/", json={"modelkey": keys["new"], "records": rows[:5], "explain": True}).json()
    assert [{k: v for k, v in a.items() if k != "explanation"} for a in explained["predictions"]] == plain[
        "predictions"
    ]


def test_explaining_a_model_stored_before_feature_means_is_a_409_naming_the_remedy(client, models):
    keys, _, rows = models
    for body in ({"record": rows[0]}, {"records": rows[:3]}):
        response = client.post("/predict/", json={"modelkey": keys["old"], **body, "explain": True})
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "conflict"
        assert "must be retrained to be explained" in response.json()["error"]["message"]
        assert client.post("/predict/", json={"modelkey": keys["old"], **body}).status_code == 200


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_explain_not_a_boolean_is_a_400_naming_the_field(client, models, value):
    keys, _, rows = models
    response = client.post("/predict/", json={"modelkey": keys["new"], "record": rows[0], "explain": value})
    assert response.status_code == 400, response.text
    assert "explain" in response.json()["error"]["message"]


def test_predictall_with_explain_refuses_a_model_stored_before_feature_means_at_once(client, models):
    """A 409 at the POST, before any job is queued; "explain" not a boolean is a 400."""
    keys, _, _ = models
    body = {"modelkey": keys["old"], "inputCollection": "explain.in", "outputCollection": "explain.out"}
    response = client.post("/predictall/", json={**body, "explain": True})
    assert response.status_code == 409, response.text
    assert "must be retrained to be explained" in response.json()["error"]["message"]
    response = client.post("/predictall/", json={**body, "modelkey": keys["new"], "explain": "yes"})
    assert response.status_code == 400, response.text
    assert "explain" in response.json()["error"]["message"]
