"""openinference.py: the Open Inference Protocol's tensors in the service's terms, without HTTP
(web/v2.py and tests/test_v2.py hold the routes, over a real server with tritonclient)."""

import pytest

from dataparser import DataParser
from predictionservice import openinference
from predictionservice.exceptions import InvalidRequest
from predictionservice.validation import Validator

SCHEMA = {
    "label": {"key": "y", "values": {"no": 0, "yes": 1}},
    "features": [{"key": "x"}, {"key": "c", "values": {"a": 0, "b": 1}}],
}
PARSER = DataParser(SCHEMA)


def tensor(name, data, datatype="FP64", shape=None):
    return {"name": name, "shape": shape or [len(data), 1], "datatype": datatype, "data": data}


def test_columns_become_records_flat_or_nested():
    body = {"inputs": [tensor("x", [[1.5], [2]]), tensor("c", ["a", "b"], "BYTES", [2])]}
    assert openinference.records("m", body, PARSER) == [{"x": 1.5, "c": "a"}, {"x": 2, "c": "b"}]
    body = {"inputs": [tensor("c", ["a", ["b"]], "BYTES", [2]), tensor("x", [1, [2.5]])]}
    rows = openinference.records("m", body, PARSER)
    assert rows == [{"c": "a", "x": 1}, {"c": "b", "x": 2.5}] and all(list(row) == ["c", "x"] for row in rows)


def test_rows_are_the_records_made_when_first_read_and_once():
    body = {"inputs": [tensor("c", ["a", "b", "a"], "BYTES", [3]), tensor("x", [1.0, 2.0, 3.0])]}
    given = openinference.columns("m", body, PARSER)
    assert list(given) == ["c", "x"] and given["x"] == [1.0, 2.0, 3.0]
    rows = openinference.Rows(given)
    assert len(rows) == 3 and rows._rows is None  # counted from the columns, nothing made
    assert list(rows) == openinference.records("m", body, PARSER) == [
        {"c": "a", "x": 1.0}, {"c": "b", "x": 2.0}, {"c": "a", "x": 3.0},
    ]  # fmt: skip
    assert rows[1] is list(rows)[1] and rows[1:] == [{"c": "b", "x": 2.0}, {"c": "a", "x": 3.0}]
    assert all(list(row) == ["c", "x"] for row in rows)  # keys in the inputs' order


def test_rows_made_later_are_the_request_s_values_even_if_its_body_changed_since():
    body = {"inputs": [tensor("x", [1.0, 2.0]), tensor("c", ["a", "b"], "BYTES", [2])]}
    rows = openinference.Rows(openinference.columns("m", body, PARSER))
    body["inputs"][0]["data"][0] = 99.0  # a caller in process reusing its body
    assert list(rows) == [{"x": 1.0, "c": "a"}, {"x": 2.0, "c": "b"}]


def test_subclasses_of_the_json_types_pass_as_before_from_a_caller_in_process():
    """A body built in process may hold numpy or enum values; a parsed one never does."""
    import enum

    import numpy as np

    class Size(enum.IntEnum):
        ONE = 1

    body = {"inputs": [tensor("x", [np.float64(2.5), Size.ONE, 3]), tensor("c", [np.str_("a"), "b", "a"], "BYTES")]}
    assert [row["x"] for row in openinference.records("m", body, PARSER)] == [2.5, 1, 3]
    body = {"inputs": [tensor("x", [1, Size.ONE], "INT64"), tensor("c", ["a", np.bool_(True)], "BYTES")]}
    with pytest.raises(InvalidRequest, match="input 'c' is BYTES but value 1 is bool"):
        openinference.records("m", body, PARSER)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([tensor("x", [1.0])], "model 'm' needs the input(s) c"),
        ([tensor("x", [1.0]), tensor("c", ["a"], "BYTES"), tensor("z", [1.0])], "model 'm' has no input 'z'"),
        ([tensor("x", [1.0]), tensor("x", [1.0])], "input 'x' is given twice"),
        ([tensor("x", [1.0, 2.0]), tensor("c", ["a"], "BYTES")], "the inputs have different numbers of rows"),
        ([tensor("x", [1.0], shape=[2, 1]), tensor("c", ["a"], "BYTES")], "input 'x' has shape [2, 1] but 1 values"),
        ([tensor("x", ["1"]), tensor("c", ["a"], "BYTES")], "input 'x' is FP64 but value 0 is str"),
        ([tensor("x", [True], "FP64"), tensor("c", ["a"], "BYTES")], "input 'x' is FP64 but value 0 is bool"),
        ([tensor("x", [1.0]), tensor("c", [1], "BYTES")], "input 'c' is BYTES but value 0 is int"),
        ([tensor("x", [1, 2, 2.5], "INT64"), tensor("c", ["a"] * 3)], "input 'x' is INT64 but value 2 is float"),
        ([tensor("x", [[1.0], [None]]), tensor("c", ["a"] * 2, "BYTES")], "input 'x' is FP64 but value 1 is NoneType"),
        ([tensor("x", [1.0, 2.0]), tensor("c", ["a", [1]], "BYTES", [2])], "input 'c' is BYTES but value 1 is int"),
        ([tensor("x", [1.0, {}]), tensor("c", ["a"] * 2, "BYTES")], "input 'x' is FP64 but value 1 is dict"),
        ([tensor("x", [1.0]), tensor("c", ["a"], "BOOL")], "input 'c' is BOOL but value 0 is str"),
    ],
)
def test_inputs_that_do_not_make_records(inputs, message):
    with pytest.raises(InvalidRequest) as caught:
        openinference.records("m", {"inputs": inputs}, PARSER)
    assert caught.value.message.startswith(message)


def test_the_body_schema_bounds_rows_and_shapes():
    validator = Validator(openinference.inference_request_schema(3))
    validator.check({"inputs": [tensor("x", [1.0, 2.0, 3.0])]}, "request")
    for bad in (
        {"inputs": [tensor("x", [1.0] * 4)]},  # more rows than the limit
        {"inputs": [tensor("x", [1.0], shape=[1, 2])]},  # one column per input
        {"inputs": [tensor("x", [1.0], shape=[1, 1, 1])]},
        {"inputs": [tensor("x", [1.0], datatype="FP128")]},
        {"inputs": []},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64"}]},  # no data
    ):
        with pytest.raises(InvalidRequest):
            validator.check(bad, "request")


def test_binary_data_is_refused_with_how_to_send_json():
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}]}
    with pytest.raises(InvalidRequest) as caught:
        openinference.refuse_binary(body)
    assert "binary_data=False" in caught.value.message
    openinference.refuse_binary({"inputs": [tensor("x", [1.0]) | {"parameters": {"content_type": "np"}}]})
    for odd in ({"inputs": 7}, {"inputs": [7, {"parameters": 7}, {"parameters": ["binary_data_size"]}]}):
        openinference.refuse_binary(odd)  # not this check's to refuse: the schema's


def test_metadata_uses_int64_only_where_training_recorded_whole_numbers():
    inputs = openinference.model_metadata("m", {"name": "A", "integral_features": ["x"]}, PARSER)["inputs"]
    assert [i["datatype"] for i in inputs] == ["INT64", "BYTES"]
    inputs = openinference.model_metadata("m", {"name": "A"}, PARSER)["inputs"]
    assert [i["datatype"] for i in inputs] == ["FP64", "BYTES"]


def test_the_answers_as_tensors_requested_ones_only_and_the_id_echoed():
    answers = [
        {"prediction": 1, "label": "yes", "probability": 0.75, "probabilities": {"no": 0.25, "yes": 0.75}},
        {"prediction": 0, "label": "no", "probability": 0.25, "probabilities": {"no": 0.75, "yes": 0.25}},
    ]
    response = openinference.infer_response("m", {"id": "r"}, PARSER, answers)
    assert response["id"] == "r" and response["model_version"] == "1"
    by_name = {o["name"]: o for o in response["outputs"]}
    assert by_name["probabilities"] == {
        "name": "probabilities", "datatype": "FP64", "shape": [2, 2], "data": [0.25, 0.75, 0.75, 0.25]
    }  # fmt: skip
    assert by_name["label"]["data"] == ["yes", "no"] and by_name["prediction"]["datatype"] == "INT64"
    only = openinference.infer_response("m", {"outputs": [{"name": "probability"}]}, PARSER, answers)
    assert [o["name"] for o in only["outputs"]] == ["probability"] and "id" not in only
    with pytest.raises(InvalidRequest, match="has no output 'nope'"):
        openinference.infer_response("m", {"outputs": [{"name": "nope"}]}, PARSER, answers)
