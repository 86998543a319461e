"""datasetreaders.py: cells typed as mongoimport types them, and a JSON array read a record at a
time exactly as a whole body is parsed (loading what they read: test_datasetloader)."""

import io
import json
import re

import pytest

from predictionservice import datasetreaders
from predictionservice.exceptions import InvalidDataset, InvalidJSON


def test_typed_keeps_what_is_not_a_finite_number():
    assert datasetreaders.typed("nan") == "nan"
    assert datasetreaders.typed("1_000") == "1_000"
    assert datasetreaders.typed("99999999999999999999") == pytest.approx(1e20)
    assert datasetreaders.typed("007") == 7
    assert datasetreaders.typed("9" * 5000) == "9" * 5000  # int() of over 4300 digits raised ValueError


def streamed(body: bytes, chunk: int) -> list:
    return list(datasetreaders.JsonArrayReader(io.BytesIO(body), chunk=chunk))


def test_a_json_array_is_read_a_record_at_a_time_as_whole_bodies_are_parsed():
    """Cut into chunks anywhere (one byte, three bytes: inside strings, escapes, numbers and
    multi-byte characters), the items are those a whole-body parse gives; a refusal names the
    item, and a syntax error its line and column in the whole body."""
    records = [{"a": 'x\\"]} ,{', "é": ["ü😀", -1.5e-3, True, None, {"b": [[]]}]}, {}, {"n": 2**62}]
    body = json.dumps(records, indent=1, ensure_ascii=False).encode()
    for chunk in (1, 3, 64 * 1024):
        assert streamed(body, chunk) == records
    assert streamed(b"[]", 1) == []
    for bad, error, message in [
        (b'[{"a": 1}, {"b": NaN}]', InvalidJSON, "item 1: NaN is not valid JSON"),
        (b'[{"a": 1},\n {"b": "\\ud800"}]', InvalidJSON, "item 1: the body holds a lone UTF-16 surrogate"),
        (b'[{"a": 1},\n  {"b": tru}]', InvalidJSON, "malformed JSON: Expecting value at line 2 column 9"),
        (b'[{"a": 1} {"b": 2}]', InvalidJSON, "malformed JSON: ',' or ']' was expected after item 0 at line 1"),
        (b'[{"a": 1}, {"b": 2}', InvalidJSON, "malformed JSON: ',' or ']' was expected after item 1"),
        (b'[{"a": 1},]', InvalidJSON, "a value was expected for item 1"),
        (b'[{"a": 1}] [2]', InvalidJSON, "extra data after the array"),
        (b"[{}, {}, 7, {}]", InvalidDataset, "item 2: not an object"),
        (b'{"a": 1}', InvalidDataset, "a JSON dataset must be an array of objects"),
        (b"[" + b'{"a":' * 63 + b"1" + b"}" * 63 + b"]", InvalidJSON, "nested deeper than 64 levels"),
        (b'[{"s": "' + b"x" * 2000 + b'"}]', InvalidDataset, "item 0: larger than a MongoDB document"),
        (b" ", InvalidJSON, "the request body is empty"),
    ]:
        for chunk in (1, 64 * 1024):
            with pytest.raises(error, match=re.escape(message)):
                list(datasetreaders.JsonArrayReader(io.BytesIO(bad), chunk=chunk, max_item_bytes=1000))
    deepest_allowed = b"[" + b'{"a":' * 62 + b"1" + b"}" * 62 + b"]"
    assert streamed(deepest_allowed, 7) == json.loads(deepest_allowed)
