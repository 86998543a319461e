"""An answer is records x classes: POST /predict/ and the V2 infer route, in process through
their real routes, with models stored as training stores them. A 2,000-class model and 10,000
records (a 220 KB body) made a 725 MB answer; now it is a 413 naming the cap and the remedies,
top_probabilities (or V2 outputs without 'probabilities') answers it in bounded size, and a
normal model (20 classes, 10,000 records) is answered as before, every class included."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect

FEATURES = [{"key": "x1"}, {"key": "x2"}, {"key": "c", "values": {"a": 0, "b": 1, "c": 2}}]


def classifier(classes: int, seed: int) -> dict:
    """A multinomial logistic model of that many classes over FEATURES (5 columns)."""
    rng = np.random.default_rng(seed)
    return {
        "name": "LogisticRegressionWrapper",
        "schema": {"label": {"key": "y", "values": {f"class{i}": i for i in range(classes)}}, "features": FEATURES},
        "coefficient_matrix": rng.normal(0, 1, (classes, 5)).tolist(),
        "intercepts": rng.normal(0, 1, classes).tolist(),
    }


def records(n: int) -> list[dict]:
    return [{"x1": (i % 97) / 10 - 4, "x2": (i % 13) / 3 - 2, "c": "abc"[i % 3]} for i in range(n)]


@pytest.fixture(scope="module")
def models(client):
    store = ModelStore(connect(client.params["redis_url"], client.params["models_db"]))
    keys = {classes: f"size-{classes}-{uuid.uuid4().hex[:8]}" for classes in (2000, 20)}
    for classes, key in keys.items():
        store.save(key, classifier(classes, classes))
    yield keys
    for key in keys.values():
        store.delete(key)


def columns(rows: list[dict]) -> list[dict]:
    return [
        {"name": "x1", "shape": [len(rows), 1], "datatype": "FP64", "data": [r["x1"] for r in rows]},
        {"name": "x2", "shape": [len(rows), 1], "datatype": "FP64", "data": [r["x2"] for r in rows]},
        {"name": "c", "shape": [len(rows), 1], "datatype": "BYTES", "data": [r["c"] for r in rows]},
    ]


def test_a_many_class_answer_past_the_cap_is_413_naming_the_remedies(client, models):
    key = models[2000]
    refused = client.post("/predict/", json={"modelkey": key, "records": records(10_000)})
    assert refused.status_code == 413, f"{refused.status_code}: {len(refused.content)} bytes"
    limit = client.params["max_answer_probabilities"]
    message = refused.json()["error"]["message"]
    assert message.startswith("the answer would hold 10000 records x 2000 class probabilities = 20000000")
    assert f"max_answer_probabilities ({limit})" in message and '"top_probabilities": k (k <= 50)' in message
    assert f"send at most {limit // 2000} records a request" in message
    v2 = client.post(f"/v2/models/{key}/infer", json={"inputs": columns(records(10_000))})
    assert v2.status_code == 413 and "without 'probabilities'" in v2.json()["error"]


def test_the_top_probabilities_are_the_full_answers_leaders(client, models):
    key = models[2000]
    rows = records(10_000)
    top = client.post("/predict/", json={"modelkey": key, "records": rows, "top_probabilities": 5})
    assert top.status_code == 200, top.text[:300]
    answers = top.json()["predictions"]
    assert len(answers) == 10_000 and len(top.content) < 10_000_000
    full = client.post("/predict/", json={"modelkey": key, "records": rows[-200:]}).json()["predictions"]
    for short, whole in zip(answers[-200:], full, strict=True):
        leaders = sorted(whole["probabilities"].items(), key=lambda item: -item[1])[:5]
        assert list(short["probabilities"].items()) == leaders  # most probable first
        assert {k: v for k, v in short.items() if k != "probabilities"} == {
            k: v for k, v in whole.items() if k != "probabilities"
        }
        assert next(iter(short["probabilities"])) == short["label"]
    one = client.post("/predict/", json={"modelkey": key, "record": rows[-1], "top_probabilities": 5}).json()
    # Alone, the record is scored by a matrix-vector product, in a batch by a matrix product: the
    # BLAS kernels may round the last bit differently (seen on one CPU and not another).
    alone = answers[-1]
    assert one["label"] == alone["label"] and list(one["probabilities"]) == list(alone["probabilities"])
    assert one["probability"] == pytest.approx(alone["probability"], rel=1e-12)
    assert list(one["probabilities"].values()) == pytest.approx(list(alone["probabilities"].values()), rel=1e-12)
    outputs = [{"name": "label"}, {"name": "probability"}]
    v2 = client.post(f"/v2/models/{key}/infer", json={"inputs": columns(rows), "outputs": outputs})
    assert v2.status_code == 200, v2.text[:300]
    assert v2.json()["outputs"][0]["data"] == [a["label"] for a in answers]
    assert v2.json()["outputs"][1]["data"] == pytest.approx([a["probability"] for a in answers], rel=1e-12)


def test_a_normal_model_is_answered_every_class_as_before(client, models):
    key = models[20]
    rows = records(10_000)
    answer = client.post("/predict/", json={"modelkey": key, "records": rows})
    assert answer.status_code == 200
    assert all(len(a["probabilities"]) == 20 for a in answer.json()["predictions"])
    v2 = client.post(f"/v2/models/{key}/infer", json={"inputs": columns(rows)})
    assert v2.status_code == 200 and v2.json()["outputs"][3]["shape"] == [10_000, 20]
    refused = client.post("/predict/", json={"modelkey": key, "record": rows[0], "top_probabilities": 0})
    assert refused.status_code == 400 and "top_probabilities" in refused.text
