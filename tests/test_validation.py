"""validation.py: strict JSON parsing and the request schemas (job, predict, predictall)."""

import copy
import json
import random
import re
import tracemalloc
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from LogisticRegressionWrapper import LogisticRegressionWrapper
from predictionservice import defaults, validation
from predictionservice.exceptions import InvalidJSON, InvalidRequest
from predictionservice.validation import (
    JOB_VALIDATOR,
    PREDICTALL_VALIDATOR,
    Validator,
    parse_json,
    predict_schema,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_JOB = json.loads((ROOT / "job.json").read_text())
MINIMAL_JOB = {
    "name": "LogisticRegressionWrapper",
    "inputCollection": "datasets.bank",
    "schema": {"label": {"key": "y", "values": {"no": 0, "yes": 1}}, "features": [{"key": "age"}]},
}
LR_JOB = LogisticRegressionWrapper.validator()  # the default algorithm's whole job document
job_with_defaults = LogisticRegressionWrapper.with_defaults


def job(**changes):
    document = copy.deepcopy(SHIPPED_JOB)
    document.update(changes)
    return document


def refusal(validator, document, what="job"):
    with pytest.raises(InvalidRequest) as caught:
        validator.check(document, what)
    assert caught.value.code == "invalid_request" and caught.value.status == 400
    return caught.value


# ------------------------------------------------------------------------------ parse_json


def test_parse_json_returns_the_document():
    assert parse_json(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert parse_json('{"name": "caf\u00e9"}'.encode()) == {"name": "caf\u00e9"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the request body is empty; a JSON document was expected"),
        (b"  \n\t ", "the request body is empty; a JSON document was expected"),
        (b'{"name": "caf\xe9"}', "the request body is not UTF-8 text"),
        (b"\xff\xfe{}", "the request body is not UTF-8 text"),
        (b"NaN", "NaN is not valid JSON (numbers must be finite)"),
        (b'{"regParam": [Infinity]}', "Infinity is not valid JSON (numbers must be finite)"),
        (b'{"intercept": -Infinity}', "-Infinity is not valid JSON (numbers must be finite)"),
        (b'{"tol": 1e999}', "number 1e999 is out of range"),
        (b"[-1.5e400]", "number -1.5e400 is out of range"),
        (b'{"a": }', "malformed JSON: Expecting value at line 1 column 7"),
        (b'{"a": 1,\n "b": 2', "malformed JSON: Expecting ',' delimiter at line 2 column 8"),
        (b"{'a': 1}", "malformed JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (b'{"a": 1} trailing', "malformed JSON: Extra data at line 1 column 10"),
    ],
)
def test_parse_json_refusals(body, message):
    with pytest.raises(InvalidJSON) as caught:
        parse_json(body)
    assert caught.value.message == message
    assert caught.value.code == "invalid_json" and caught.value.status == 400


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, -2, 3.25, 1e-7, 1E+3, -0.0, 0, "x", "\\u00e9\\ud83d\\ude00", null, true, false, {}, []]}',
        '{"dup": 1, "dup": 2}',  # the last wins, as the standard parser has it
        '{"n": 9223372036854775807, "m": -9223372036854775808, "f": 0.1000000000000000055511151231257827}',
        '{"big": 123456789012345678901234567890}',  # exact, not a float: the standard parser reads it
        '  [ "caf\u00e9" ]  ',
    ],
)
def test_the_fast_parser_reads_what_the_standard_one_reads(text):
    parsed = parse_json(text.encode())
    expected = json.loads(text)
    assert parsed == expected and json.dumps(parsed) == json.dumps(expected)


def test_a_lone_surrogate_is_refused_on_either_parser():
    for body in (b'{"a": "\\ud800"}', b'{"a": "\\ud800", "n": 1234567890123456789012}'):
        with pytest.raises(InvalidJSON):
            parse_json(body)


def test_a_five_thousand_digit_integer_is_refused():
    with pytest.raises(InvalidJSON) as caught:
        parse_json(b'{"seed": ' + b"1" + b"0" * 5000 + b"}")
    assert caught.value.message.startswith("malformed JSON: Exceeds the limit (4300 digits)")
    assert len(caught.value.message) <= len("malformed JSON: ") + 120


def test_nesting_is_bounded_at_64_levels():
    assert parse_json(b"[" * 64 + b"]" * 64) == json.loads("[" * 64 + "]" * 64)
    with pytest.raises(InvalidJSON) as caught:
        parse_json(b"[" * 65 + b"]" * 65)
    assert caught.value.message == "JSON nested deeper than 64 levels"
    with pytest.raises(InvalidJSON) as caught:
        parse_json(b'{"a": ' * 65 + b"1" + b"}" * 65)
    assert caught.value.message == "JSON nested deeper than 64 levels"


def _nested(rng, depth):
    """A random document up to depth levels: containers of scalars, strings holding brackets,
    empty containers, containers of containers."""
    if depth <= 1 or rng.random() < 0.3:
        return rng.choice([1, 2.5, None, True, "x", "[{", "]}", "a[b]{c}", ""])
    children = [_nested(rng, depth - 1) for _ in range(rng.randrange(0, 4))]
    if rng.random() < 0.5:
        return children
    return {f"k{i}": child for i, child in enumerate(children)}


def _reference_depth(value):
    if isinstance(value, dict | list):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max((_reference_depth(c) for c in children), default=0)
    return 1


def test_the_depth_bounded_by_the_bodys_brackets_is_the_depth():
    """_depth stops once it has found as many containers as the body has brackets: brackets in
    strings loosen that bound, and it must still be exact, at every limit."""
    rng = random.Random(7)
    for _ in range(2000):
        value = _nested(rng, rng.randrange(1, 9))
        body = json.dumps(value).encode()
        brackets = body.count(b"[") + body.count(b"{")
        expected = _reference_depth(value)
        for limit in (2, 4, 64):
            walked = validation._depth(value, limit)
            assert validation._depth(value, limit, brackets) == walked, body
            assert walked == expected if expected <= limit else walked > limit, body
    records = {"modelkey": "m", "records": [{"age": 30, "job": "[admin.]"} for _ in range(1000)]}
    assert validation._depth(records, 64, 1002) == validation._depth(records, 64) == 4
    # a container the bound would have missed, behind strings that hold no bracket
    deep = {"records": [{"a": 1}], "nested": [[[[1]]]]}
    assert validation._depth(deep, 64, 7) == 6


def test_the_vector_scans_of_a_long_body_find_what_the_byte_scans_find():
    """A body past VECTOR_SCAN_BYTES is scanned by numpy: every byte value around the brackets
    and digits counted, a run of 19 digits found wherever it starts, 18 never taken for one."""
    rng = random.Random(11)
    size = validation.VECTOR_SCAN_BYTES
    every_byte = bytes(range(256)) * (size // 256 + 1)
    assert validation.bracket_count(every_byte) == 2 * every_byte.count(b"[") > 0
    for _ in range(200):
        body = bytearray(rng.choice(b' ":,[]{}/09:az\x00\xff') for _ in range(size + rng.randrange(64)))
        run = rng.choice((18, 19, 25))
        at = rng.randrange(len(body) - run)
        body[at : at + run] = bytes(rng.choice(b"0123456789") for _ in range(run))
        body = bytes(body)
        for part in (body, body[: size // 4]):  # the vector scan and the byte scan
            assert validation.bracket_count(part) == part.count(b"[") + part.count(b"{")
            expected = re.search(rb"[0-9]{19}", part) is not None
            assert validation.has_long_digits(part) is expected, (run, at)


def test_absurd_nesting_is_invalid_json_not_a_recursion_error():
    with pytest.raises(InvalidJSON) as caught:
        parse_json(b"[" * 200_000)
    assert caught.value.message.startswith("malformed JSON: ")


# ------------------------------------------------------------------------------ job documents


def test_the_shipped_job_json_is_valid():
    for validator in (JOB_VALIDATOR, LR_JOB):
        assert validator.check(SHIPPED_JOB, "job") is None
        assert validator.check(MINIMAL_JOB, "job") is None


def test_before_its_algorithm_is_known_a_job_is_checked_for_the_common_fields_only():
    """The algorithm's own schema (LR_JOB here) refuses the fields it does not take."""
    assert JOB_VALIDATOR.check(job(numTrees=[10]), "job") is None
    assert refusal(JOB_VALIDATOR, job(numFolds=1)).message.startswith("job: 'numFolds'")
    assert refusal(LR_JOB, job(numTrees=[10])).message == "job has unknown field(s): 'numTrees' was unexpected"


def test_a_categorical_feature_may_say_what_an_unknown_category_does():
    city = {"key": "city", "values": {"Paris": 0, "Lyon": 1}}
    for unknown in ("ignore", "error"):
        schema = {**MINIMAL_JOB["schema"], "features": [{**city, "unknown": unknown}]}
        assert LR_JOB.check({**MINIMAL_JOB, "schema": schema}, "job") is None
    schema = {**MINIMAL_JOB["schema"], "features": [{**city, "unknown": "skip"}]}
    assert "'ignore'" in refusal(LR_JOB, {**MINIMAL_JOB, "schema": schema}).message
    label = {**MINIMAL_JOB["schema"]["label"], "unknown": "ignore"}  # a label's class is never assumed
    refusal(LR_JOB, {**MINIMAL_JOB, "schema": {**MINIMAL_JOB["schema"], "label": label}})


def test_the_schemas_are_valid_draft_2020_12():
    for schema in (validation.JOB, LogisticRegressionWrapper.job_schema(), validation.PREDICTALL, predict_schema(10)):
        Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("field", ["name", "inputCollection", "schema"])
def test_a_missing_required_field_is_named(field):
    document = job()
    del document[field]
    error = refusal(LR_JOB, document)
    assert error.message == f"job needs the field '{field}' (required: name, inputCollection, schema)"
    assert error.details == [{"field": "", "problem": f"needs the field '{field}'"}]


def test_an_unknown_field_is_named():
    error = refusal(LR_JOB, job(regparam=[0.1]))
    assert error.message == "job has unknown field(s): 'regparam' (did you mean 'regParam'?) was unexpected"
    several = refusal(LR_JOB, job(regParm=[0.1], zzzz=1, **{f"x{i}": 1 for i in range(5)}))
    assert several.message == (
        "job has unknown field(s): 'regParm' (did you mean 'regParam'?), 'zzzz', 'x0', 'x1', 'x2', ... "
        "(7 in all) were unexpected"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"regParam": "0.1"}, "job: 'regParam' must be of type array"),
        ({"regParam": ["0.1"]}, "job: 'regParam.0' must be of type number"),
        ({"regParam": []}, "job: 'regParam' [] should be non-empty"),
        ({"numFolds": 1}, "job: 'numFolds' 1 is less than the minimum of 2"),
        ({"numFolds": 21}, "job: 'numFolds' 21 is greater than the maximum of 20"),
        ({"numFolds": 2.5}, "job: 'numFolds' must be of type integer"),
        ({"elasticNetParam": 2}, "job: 'elasticNetParam' must be of type array"),
        ({"elasticNetParam": [0.5, 2]}, "job: 'elasticNetParam.1' 2 is greater than the maximum of 1"),
        ({"iterations": "100"}, "job: 'iterations' must be of type integer"),
        ({"iterations": True}, "job: 'iterations' must be of type integer"),
        ({"standardization": "yes"}, "job: 'standardization' must be of type boolean"),
        ({"tol": 0}, "job: 'tol' 0 is less than or equal to the minimum of 0"),
        ({"holdoutFraction": 0.6}, "job: 'holdoutFraction' 0.6 is greater than the maximum of 0.5"),
        ({"inputCollection": 5}, "job: 'inputCollection' must be of type string"),
        ({"inputCollection": "ab"}, "job: 'inputCollection' 'ab' is too short"),
        ({"name": "os.system"}, "job: 'name' must match ^[A-Za-z_][A-Za-z0-9_]{0,99}$"),
        ({"name": "../evil"}, "job: 'name' must match ^[A-Za-z_][A-Za-z0-9_]{0,99}$"),
        ({"name": 7}, "job: 'name' must be of type string"),
    ],
)
def test_wrong_values_are_refused_naming_the_field(changes, message):
    # the name is checked before the algorithm it names is known
    error = refusal(JOB_VALIDATOR if "name" in changes else LR_JOB, job(**changes))
    assert error.message == message
    field = message.split("'")[1]
    assert {"field": field, "problem": message.split(f"'{field}' ", 1)[1]} in error.details


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"label": {"key": "y"}}, "job: 'schema' needs the field 'features' (required: label, features)"),
        ({"label": {"key": "y"}, "features": []}, "job: 'schema.features' [] should be non-empty"),
        (
            {"label": {"key": "y"}, "features": [{"key": "$where"}]},
            "job: 'schema.features.0.key' must match ^[^$.,`\\u0000][^.,`\\u0000]*$",
        ),
        (
            {"label": {"key": "a.b"}, "features": [{"key": "x"}]},
            "job: 'schema.label.key' must match ^[^$.,`\\u0000][^.,`\\u0000]*$",
        ),
        (
            {"label": {"key": "y", "values": {"no": -1}}, "features": [{"key": "x"}]},
            "job: 'schema.label.values.no' -1 is less than the minimum of 0",
        ),
        (
            {"label": {"key": "y"}, "features": [{"key": "x", "values": {}}]},
            "job: 'schema.features.0.values' {} should be non-empty",
        ),
        (
            {"label": {"key": "y"}, "features": [{"key": "x", "kind": "num"}]},
            "job: 'schema.features.0' has unknown field(s): 'kind' was unexpected",
        ),
    ],
)
def test_a_bad_schema_block_is_refused_naming_the_field(schema, message):
    assert refusal(LR_JOB, job(schema=schema)).message == message


def test_a_document_that_is_not_an_object_is_refused():
    error = refusal(LR_JOB, ["name"])
    assert error.message == "job must be of type object"


def test_details_list_every_problem_sorted_by_field():
    error = refusal(LR_JOB, job(numFolds=1, iterations=0, seed=-1))
    assert [d["field"] for d in error.details] == ["iterations", "numFolds", "seed"]


# ------------------------------------------------------------------------------ predict bodies


PREDICT = Validator(predict_schema(3))


@pytest.mark.parametrize(
    "body",
    [
        {"modelkey": "abc-123", "record": {"age": 30}},
        {"modelkey": "abc-123", "records": [{"age": 30}, {"age": 40}, {}]},
        {"modelkey": "abc-123", "record": {"age": 30}, "schema": MINIMAL_JOB["schema"]},
    ],
)
def test_predict_accepts_record_or_records(body):
    assert PREDICT.check(body, "prediction request") is None


ONE_OF = (
    "prediction request must carry either 'record' (one object) or 'records' (an array of objects) beside 'modelkey'"
)


@pytest.mark.parametrize(
    "body",
    [
        {"modelkey": "m", "record": {"a": 1}, "records": [{"a": 1}]},  # both
        {"modelkey": "m"},  # neither
    ],
)
def test_predict_needs_exactly_one_of_record_and_records(body):
    assert refusal(PREDICT, body, "prediction request").message == ONE_OF


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"modelkey": "m", "record": [1, 2]}, "prediction request: 'record' must be of type object"),
        ({"modelkey": "m", "records": {"a": 1}}, "prediction request: 'records' must be of type array"),
        ({"modelkey": "m", "records": [{"a": 1}, 2]}, "prediction request: 'records.1' must be of type object"),
    ],
)
def test_predict_names_a_record_of_the_wrong_type(body, message):
    assert refusal(PREDICT, body, "prediction request").message == message


def test_predict_enforces_the_maximum_number_of_records():
    error = refusal(PREDICT, {"modelkey": "m", "records": [{"a": i} for i in range(4)]}, "prediction request")
    assert error.message == "prediction request: 'records' must have at most 3 items"  # the records not echoed
    assert Validator(predict_schema(4)).check({"modelkey": "m", "records": [{"a": i} for i in range(4)]}, "p") is None


def test_a_body_of_many_wrong_items_costs_its_first_errors_only():
    """Issue 11: 'records': [1, 1, ...] of 1.2 MB made jsonschema build every one of its 400,000
    errors (7.4 s, 1.5 GB). Only the first MAX_SCHEMA_ERRORS are built now."""
    body = {"modelkey": "m", "records": [1] * 100_000}
    tracemalloc.start()
    try:
        error = refusal(Validator(predict_schema(10**7)), body, "prediction request")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(error.details) == defaults.MAX_SCHEMA_ERRORS
    assert all(d["problem"] == "must be of type object" for d in error.details)
    assert peak < 10 * 2**20, f"{peak / 2**20:.0f} MB to refuse the body"  # it was 358 MB


def test_predict_refuses_an_empty_records_array():
    error = refusal(PREDICT, {"modelkey": "m", "records": []}, "prediction request")
    assert error.message == "prediction request: 'records' [] should be non-empty"


@pytest.mark.parametrize("modelkey", [5, "a/b", ""])
def test_a_bad_modelkey_is_named(modelkey):
    error = refusal(PREDICT, {"modelkey": modelkey, "record": {"a": 1}}, "prediction request")
    assert error.message.startswith("prediction request: 'modelkey' ")


def test_a_missing_modelkey_is_named():
    error = refusal(PREDICT, {"record": {"a": 1}}, "prediction request")
    assert error.message == "prediction request needs the field 'modelkey' (required: modelkey)"


# ------------------------------------------------------------------------------ predictall bodies


def test_predictall_accepts_a_body():
    body = {"modelkey": "k1", "inputCollection": "datasets.bank", "outputCollection": "datasets.out"}
    assert PREDICTALL_VALIDATOR.check(body, "scoring request") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"modelkey": "k", "inputCollection": "d.b"},
            "scoring request needs the field 'outputCollection' "
            "(required: modelkey, inputCollection, outputCollection)",
        ),
        (
            {"inputCollection": "d.b", "outputCollection": "d.c"},
            "scoring request needs the field 'modelkey' (required: modelkey, inputCollection, outputCollection)",
        ),
        (
            {"modelkey": "k", "inputCollection": "d.b", "outputCollection": "d.c", "x": 1},
            "scoring request has unknown field(s): 'x' was unexpected",
        ),
        (
            {"modelkey": 1, "inputCollection": "d.b", "outputCollection": "d.c"},
            "scoring request: 'modelkey' must be of type string",
        ),
        (
            {"modelkey": "k", "inputCollection": ["d.b"], "outputCollection": "d.c"},
            "scoring request: 'inputCollection' must be of type string",
        ),
    ],
)
def test_predictall_refusals_name_the_field(body, message):
    assert refusal(PREDICTALL_VALIDATOR, body, "scoring request").message == message


# ------------------------------------------------------------------------------ defaults


def test_with_defaults_fills_every_default():
    full = job_with_defaults(MINIMAL_JOB)
    own = LogisticRegressionWrapper.DEFAULTS  # the class's own, not looked up by its name
    assert full == {**MINIMAL_JOB, **defaults.JOB_DEFAULTS, **own}
    assert LR_JOB.check(full, "job") is None


def test_with_defaults_keeps_given_values_and_does_not_mutate_its_input():
    given = {**copy.deepcopy(MINIMAL_JOB), "regParam": [0.5, 0.1], "numFolds": 5, "standardization": False}
    snapshot = copy.deepcopy(given)
    full = job_with_defaults(given)
    assert given == snapshot
    assert full["regParam"] == [0.5, 0.1] and full["numFolds"] == 5 and full["standardization"] is False
    assert full["iterations"] == 100 and full["tol"] == 1e-6 and full["seed"] == 42
    assert full["elasticNetParam"] == [0.0] and full["holdoutFraction"] == 0.2
    # the result shares nothing mutable with its input or with the defaults
    full["schema"]["features"].append({"key": "extra"})
    full["elasticNetParam"].append(0.5)
    assert given == snapshot
    assert LogisticRegressionWrapper.DEFAULTS["elasticNetParam"] == [0.0]
