"""The V2 infer route's ``explanation`` output (predictionservice/openinference.py, web/v2.py):
asked for by naming it in ``outputs`` or with the parameter ``"explain": true``, it carries the
very numbers ``/predict/`` answers with ``"explain": true`` (a row per record: the base, then each
feature's contribution in the schema's order), for a logistic, a forest and a regression model.
The app runs in process on the session's Redis (Flask's test client)."""

from __future__ import annotations

import uuid

import pytest

from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect
from test_v2 import MODELS as PLAIN
from test_v2 import ROWS

MEANS = [0.1, -0.4, 0.3, 0.5, 0.2]
COVERS = [[100, 30, 70], [100, 55, 45]]  # the forest's two one-split trees' nodes' training covers
# test_v2's models as training stores them now: the linear ones with their training means, the
# forest's trees with their covers (its multiclass model is left out)
MODELS = {
    "binary": {**PLAIN["binary"], "feature_means": MEANS},
    "forest": {
        **PLAIN["forest"],
        "trees": [{**tree, "cover": cover} for tree, cover in zip(PLAIN["forest"]["trees"], COVERS, strict=True)],
    },
    "regression": {**PLAIN["regression"], "feature_means": MEANS},
}
OUTPUT = {"binary": "margin", "forest": "probability", "regression": "value"}


@pytest.fixture(scope="module")
def keys(client):
    """The models above (and the binary one as stored before feature means) in the app's store."""
    store = ModelStore(connect(client.params["redis_url"], client.params["models_db"]))
    stored = {kind: f"v2x-{kind}-{uuid.uuid4().hex[:8]}" for kind in [*MODELS, "old"]}
    for kind, model in MODELS.items():
        store.save(stored[kind], model)
    store.save(stored["old"], {k: v for k, v in MODELS["binary"].items() if k != "feature_means"})
    yield stored
    for key in stored.values():
        store.delete(key)


def infer_body(rows: list[dict], **extra) -> dict:
    inputs = [
        {"name": "x1", "datatype": "FP64", "shape": [len(rows), 1], "data": [r["x1"] for r in rows]},
        {"name": "n", "datatype": "INT64", "shape": [len(rows), 1], "data": [r["n"] for r in rows]},
        {"name": "c", "datatype": "BYTES", "shape": [len(rows), 1], "data": [r["c"] for r in rows]},
    ]
    return {"inputs": inputs, **extra}


def explanation_rows(response: dict) -> tuple[dict, list[list[float]]]:
    (tensor,) = [output for output in response["outputs"] if output["name"] == "explanation"]
    width = tensor["shape"][1]
    data = tensor["data"]
    return tensor, [data[i : i + width] for i in range(0, len(data), width)]


@pytest.mark.parametrize("kind", list(MODELS))
def test_the_explanation_output_carries_predict_s_explanations(client, keys, kind):
    asked = infer_body(ROWS, outputs=[{"name": "prediction"}, {"name": "explanation"}])
    response = client.post(f"/v2/models/{keys[kind]}/infer", json=asked)
    assert response.status_code == 200, response.text
    tensor, rows = explanation_rows(response.json())
    assert [o["name"] for o in response.json()["outputs"]] == ["prediction", "explanation"]
    assert tensor["datatype"] == "FP64"
    assert tensor["shape"] == [len(ROWS), 4]
    assert tensor["parameters"] == {"columns": ["base", "x1", "n", "c"], "output": OUTPUT[kind]}
    predicted = client.post("/predict/", json={"modelkey": keys[kind], "records": ROWS, "explain": True})
    assert predicted.status_code == 200, predicted.text
    for row, answer in zip(rows, predicted.json()["predictions"], strict=True):
        explanation = answer["explanation"]
        assert row == [explanation["base"], *(explanation["contributions"][k] for k in ("x1", "n", "c"))]


def test_the_parameter_explain_adds_the_output_to_those_answered(client, keys):
    key = keys["forest"]
    plain = client.post(f"/v2/models/{key}/infer", json=infer_body(ROWS)).json()
    explained = client.post(f"/v2/models/{key}/infer", json=infer_body(ROWS, parameters={"explain": True})).json()
    assert [o["name"] for o in plain["outputs"]] == ["prediction", "label", "probability", "probabilities"]
    assert explained["outputs"][:4] == plain["outputs"]
    assert explained["outputs"][4]["name"] == "explanation"
    named = infer_body(ROWS, outputs=[{"name": "label"}], parameters={"explain": True})
    assert [o["name"] for o in client.post(f"/v2/models/{key}/infer", json=named).json()["outputs"]] == [
        "label",
        "explanation",
    ]
    told_not = client.post(f"/v2/models/{key}/infer", json=infer_body(ROWS, parameters={"explain": False}))
    assert told_not.json() == plain


def test_base_and_contributions_add_up_to_the_output_answered(client, keys):
    """The forest's explanation adds up to the predicted class's probability it answers."""
    body = infer_body(ROWS, outputs=[{"name": "probabilities"}, {"name": "explanation"}])
    response = client.post(f"/v2/models/{keys['forest']}/infer", json=body).json()
    probabilities = response["outputs"][0]["data"]
    _, rows = explanation_rows(response)
    for i, row in enumerate(rows):
        assert sum(row) == pytest.approx(max(probabilities[3 * i : 3 * i + 3]), abs=1e-12)


def test_model_metadata_lists_the_explanation_output(client, keys):
    metadata = client.get(f"/v2/models/{keys['binary']}").json()
    assert metadata["outputs"][-1] == {
        "name": "explanation",
        "datatype": "FP64",
        "shape": [-1, 4],
        "parameters": {"columns": ["base", "x1", "n", "c"], "output": "margin"},
    }


def test_explaining_a_model_stored_before_explanations_is_a_409_in_the_protocol_s_shape(client, keys):
    body = infer_body(ROWS[:2], parameters={"explain": True})
    response = client.post(f"/v2/models/{keys['old']}/infer", json=body)
    assert response.status_code == 409, response.text
    assert "must be retrained to be explained" in response.json()["error"]
    assert client.post(f"/v2/models/{keys['old']}/infer", json=infer_body(ROWS[:2])).status_code == 200


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_parameter_explain_not_a_boolean_is_a_400(client, keys, value):
    response = client.post(
        f"/v2/models/{keys['binary']}/infer", json=infer_body(ROWS[:2], parameters={"explain": value})
    )
    assert response.status_code == 400, response.text
    assert "explain" in response.json()["error"]
