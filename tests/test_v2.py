"""web/v2.py: the Open Inference Protocol V2 spoken to a real CherryPy server by tritonclient's
own HTTP client (and by a body shaped as MLServer's pandas codec sends it): health, metadata,
inference agreeing with /predict/ to 1e-12 for a binary, a multi-class and a regression model
over numeric (float and integer) and string columns, and errors raised as the client's own
exception carrying the server's message."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import redis
import requests
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from helpers import Service
from predictionservice.modelstore import ModelStore
from predictionservice.version import __version__

CATS = {"a": 0, "b": 1, "c": 2}
FEATURES = [{"key": "x1"}, {"key": "n"}, {"key": "c", "values": CATS}]
# float x1, integer n, string c: what the inputs of every model below are
ROWS = [{"x1": 0.25 * i - 1.3, "n": (i * 7) % 11 - 5, "c": "abc"[i % 3]} for i in range(12)]


def _tree(feature: int, threshold: float, left: list, right: list) -> dict:
    """A forest tree of one split: node 0 splits, nodes 1 and 2 are leaves."""
    return {
        "feature": [feature, -1, -1],
        "threshold": [threshold, 0.0, 0.0],
        "left": [1, -1, -1],
        "right": [2, -1, -1],
        "value": [[sum(p) / 2 for p in zip(left, right, strict=True)], left, right],
        "depth": 1,
    }


MODELS = {
    "binary": {
        "name": "LogisticRegressionWrapper",
        "schema": {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": FEATURES},
        "coefficients": [1.7, -0.31, 0.4, -0.9, 0.2],
        "intercept": 0.15,
        "integral_features": ["n"],
    },
    "multiclass": {
        "name": "LogisticRegressionWrapper",
        "schema": {"label": {"key": "y", "values": {"red": 0, "green": 1, "blue": 2}}, "features": FEATURES},
        "coefficient_matrix": [[1.0, 0.2, 0.3, -0.2, 0.0], [-0.5, -0.1, 0.0, 0.6, -0.3], [0.1, 0.05, -0.4, 0.1, 0.5]],
        "intercepts": [0.1, -0.2, 0.05],
        "integral_features": ["n"],
    },
    "forest": {
        "name": "RandomForestWrapper",
        "schema": {"label": {"key": "y", "values": {"low": 0, "mid": 1, "high": 2}}, "features": FEATURES},
        "trees": [_tree(0, 0.0, [0.7, 0.2, 0.1], [0.1, 0.3, 0.6]), _tree(4, 0.5, [0.2, 0.5, 0.3], [0.6, 0.3, 0.1])],
    },
    "regression": {
        "name": "LinearRegressionWrapper",
        "schema": {"label": {"key": "y"}, "features": FEATURES},
        "coefficients": [3.0, -0.125, 1.5, 0.0, -1.0],
        "intercept": 0.75,
        "integral_features": ["n"],
    },
}


@pytest.fixture(scope="module")
def web(tmp_path_factory, base_params):
    started = Service(tmp_path_factory.mktemp("v2"), base_params, worker=False)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def keys(base_params):
    """The models above stored as training stores them, under keys of their own."""
    client = redis.Redis.from_url(base_params["redis_url"].rsplit("/", 1)[0] + f"/{base_params['models_db']}")
    store = ModelStore(client)
    stored = {kind: f"v2-{kind}-{uuid.uuid4().hex[:8]}" for kind in MODELS}
    for kind, key in stored.items():
        store.save(key, MODELS[kind])
    yield stored
    for key in stored.values():
        store.delete(key)
    client.close()


@pytest.fixture()
def triton(web):
    client = httpclient.InferenceServerClient(url=web.url.split("//", 1)[1])
    yield client
    client.close()


def tensors(rows: list[dict], binary: bool = False) -> list:
    """One tritonclient input per column: x1 FP64, n INT64, c BYTES, each [N, 1]."""
    columns = [
        ("x1", "FP64", np.array([r["x1"] for r in rows], dtype=np.float64)),
        ("n", "INT64", np.array([r["n"] for r in rows], dtype=np.int64)),
        ("c", "BYTES", np.array([r["c"] for r in rows], dtype=object)),
    ]
    inputs = []
    for name, datatype, values in columns:
        tensor = httpclient.InferInput(name, [len(rows), 1], datatype)
        tensor.set_data_from_numpy(values.reshape(-1, 1), binary_data=binary)
        inputs.append(tensor)
    return inputs


def predicted(web, key: str, rows: list[dict]) -> list[dict]:
    response = web.post("/predict/", json={"modelkey": key, "records": rows})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_server_live_ready_and_metadata(triton):
    assert triton.is_server_live()
    assert triton.is_server_ready()
    metadata = triton.get_server_metadata()
    assert metadata["name"] == "prediction-service" and metadata["extensions"] == []
    assert metadata["version"] == __version__  # predictionservice/version.py


def test_model_ready_and_metadata_of_a_classifier_and_a_regressor(triton, keys):
    key = keys["multiclass"]
    assert triton.is_model_ready(key)
    metadata = triton.get_model_metadata(key)
    assert metadata["name"] == key and metadata["versions"] == ["1"]
    assert metadata["inputs"] == [
        {"name": "x1", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "n", "datatype": "INT64", "shape": [-1, 1]},
        {"name": "c", "datatype": "BYTES", "shape": [-1, 1]},
    ]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("prediction", "INT64", [-1, 1]),
        ("label", "BYTES", [-1, 1]),
        ("probability", "FP64", [-1, 1]),
        ("probabilities", "FP64", [-1, 3]),
        ("explanation", "FP64", [-1, 4]),  # answered only when asked for (tests/test_v2_explanations.py)
    ]
    assert metadata["outputs"][3]["parameters"]["labels"] == ["red", "green", "blue"]
    regression = triton.get_model_metadata(keys["regression"])
    assert regression["outputs"][0] == {"name": "prediction", "datatype": "FP64", "shape": [-1, 1]}
    assert [o["name"] for o in regression["outputs"]] == ["prediction", "explanation"]


def test_a_model_stored_before_integral_features_were_recorded_has_fp64_inputs(triton, keys):
    """The forest above has no integral_features, as models trained before it was recorded."""
    inputs = triton.get_model_metadata(keys["forest"])["inputs"]
    assert [i["datatype"] for i in inputs] == ["FP64", "FP64", "BYTES"]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "forest"])
def test_a_classifier_answers_as_predict_does(web, triton, keys, kind):
    result = triton.infer(keys[kind], tensors(ROWS), request_id="req-7")
    expected = predicted(web, keys[kind], ROWS)
    names = list(MODELS[kind]["schema"]["label"]["values"])
    assert result.get_response()["id"] == "req-7"
    assert result.as_numpy("prediction").shape == (len(ROWS), 1)
    assert result.as_numpy("prediction").ravel().tolist() == [p["prediction"] for p in expected]
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").ravel().tolist()]
    assert labels == [p["label"] for p in expected]
    np.testing.assert_allclose(
        result.as_numpy("probability").ravel(), [p["probability"] for p in expected], rtol=0, atol=1e-12
    )
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(ROWS), len(names))
    np.testing.assert_allclose(
        probabilities, [[p["probabilities"][n] for n in names] for p in expected], rtol=0, atol=1e-12
    )
    assert len(set(labels)) > 1  # the rows reach more than one class: the comparison means something


def test_a_regressor_answers_as_predict_does_one_row_and_many(web, triton, keys):
    key = keys["regression"]
    for rows in (ROWS[:1], ROWS):
        result = triton.infer(key, tensors(rows))
        expected = [p["prediction"] for p in predicted(web, key, rows)]
        np.testing.assert_allclose(result.as_numpy("prediction").ravel(), expected, rtol=0, atol=1e-12)
    single = web.post("/predict/", json={"modelkey": key, "record": ROWS[0]}).json()["prediction"]
    assert triton.infer(key, tensors(ROWS[:1])).as_numpy("prediction")[0, 0] == pytest.approx(single, abs=1e-12)


def test_only_the_requested_outputs_are_answered(triton, keys):
    outputs = [httpclient.InferRequestedOutput("label", binary_data=False)]
    result = triton.infer(keys["binary"], tensors(ROWS[:3]), outputs=outputs)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]
    assert result.as_numpy("probability") is None


def test_an_unknown_model_raises_the_clients_exception_with_the_servers_message(triton):
    for call in (
        lambda: triton.get_model_metadata("no-such-model"),
        lambda: triton.infer("no-such-model", tensors(ROWS)),
    ):
        with pytest.raises(InferenceServerException) as caught:
            call()
        assert caught.value.status() == "404"
        assert caught.value.message() == "model 'no-such-model' not found"
    assert not triton.is_model_ready("no-such-model")


def test_a_wrong_input_raises_the_clients_exception_with_the_servers_message(triton, keys):
    bad = [dict(r) for r in ROWS[:4]]
    bad[2]["c"] = "zebra"
    with pytest.raises(InferenceServerException) as caught:
        triton.infer(keys["binary"], tensors(bad))
    assert caught.value.status() == "400"
    assert caught.value.message() == (
        "row 2: input 'c' has the value 'zebra', which is not one of the schema's categories (allowed: 'a', 'b', 'c')"
    )
    with pytest.raises(InferenceServerException) as caught:
        triton.infer(keys["binary"], tensors(ROWS)[:2])
    assert caught.value.message() == f"model '{keys['binary']}' needs the input(s) c"


def test_the_binary_tensor_extension_is_refused_with_a_clear_400(triton, keys):
    with pytest.raises(InferenceServerException) as caught:
        triton.infer(keys["binary"], tensors(ROWS, binary=True))
    assert caught.value.status() == "400"
    assert "binary tensor extension is not supported" in caught.value.message()
    assert "binary_data=False" in caught.value.message()


def test_a_body_as_mlservers_pandas_codec_sends_it_without_content_type(web, keys):
    """PandasCodec.encode_request(df): the request's content_type 'pd', each column [N, 1] with
    its own content_type; sent here without a Content-Type header, as tritonclient does."""
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "x1", "shape": [3, 1], "datatype": "FP64", "parameters": {"content_type": "np"},
             "data": [r["x1"] for r in ROWS[:3]]},
            {"name": "n", "shape": [3, 1], "datatype": "INT64", "parameters": {"content_type": "np"},
             "data": [r["n"] for r in ROWS[:3]]},
            {"name": "c", "shape": [3, 1], "datatype": "BYTES", "parameters": {"content_type": "str"},
             "data": [r["c"] for r in ROWS[:3]]},
        ],
    }  # fmt: skip
    response = requests.post(f"{web.url}/v2/models/{keys['regression']}/infer", data=json.dumps(body), timeout=30)
    assert response.status_code == 200, response.text
    assert "Content-Type" not in response.request.headers
    (output,) = response.json()["outputs"]
    expected = [p["prediction"] for p in predicted(web, keys["regression"], ROWS[:3])]
    assert output["name"] == "prediction" and output["shape"] == [3, 1]
    np.testing.assert_allclose(output["data"], expected, rtol=0, atol=1e-12)


def test_errors_on_v2_are_the_protocols_shape_with_a_4xx(web, keys):
    cases = [
        ("GET", "/v2/models/nope", None, 404),
        ("GET", "/v2/nothing-here", None, 404),
        ("DELETE", "/v2/health/live", None, 405),
        ("POST", f"/v2/models/{keys['binary']}/infer", b"{not json", 400),
        ("POST", f"/v2/models/{keys['binary']}/infer", b'{"inputs": []}', 400),
        ("POST", f"/v2/models/{keys['binary']}/infer", b"[1, 2]", 400),
    ]
    for method, path, body, status in cases:
        response = web.request(method, path, data=body)
        assert response.status_code == status, (path, response.text)
        assert set(response.json()) == {"error"} and isinstance(response.json()["error"], str), response.text
        assert response.json()["error"]
    text = web.post(f"/v2/models/{keys['binary']}/infer", data=b"{}", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415 and "JSON" in text.json()["error"]


def test_an_infer_request_is_bounded_like_predict(web, keys, base_params):
    limit = base_params["max_records_per_request"]
    column = {"name": "x1", "shape": [limit + 1, 1], "datatype": "FP64", "data": [0.0] * (limit + 1)}
    response = web.post(f"/v2/models/{keys['binary']}/infer", json={"inputs": [column]})
    assert response.status_code == 400
    assert str(limit) in response.json()["error"]


def test_shape_and_data_must_agree(web, keys):
    inputs = [
        {"name": "x1", "shape": [2, 1], "datatype": "FP64", "data": [1.0, 2.0, 3.0]},
        {"name": "n", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        {"name": "c", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
    ]
    response = web.post(f"/v2/models/{keys['binary']}/infer", json={"inputs": inputs})
    assert response.status_code == 400
    assert response.json()["error"] == "input 'x1' has shape [2, 1] but 3 values"
    inputs[0] = {"name": "x1", "shape": [2, 1], "datatype": "INT64", "data": [[1.5], [2]]}
    response = web.post(f"/v2/models/{keys['binary']}/infer", json={"inputs": inputs})
    assert response.json()["error"] == "input 'x1' is INT64 but value 0 is float"


def test_a_trained_models_integer_columns_are_int64(service, bank_model):
    """bank-full's integer columns (age, balance, ...) were read as whole numbers at training."""
    inputs = {i["name"]: i["datatype"] for i in service.get(f"/v2/models/{bank_model}").json()["inputs"]}
    assert inputs["age"] == inputs["balance"] == inputs["duration"] == "INT64"
    assert inputs["job"] == inputs["month"] == "BYTES"
