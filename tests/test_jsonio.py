"""web/jsonio.py in process: a JSON body's cost bounded before it is parsed (issue 25, 3.7)."""

from __future__ import annotations

import json

import pytest

from helpers import deep
from web.jsonio import check_containers

LIMIT = 200_000  # max_json_containers' default


def nested_records(levels: int, size: int = 4 * 1024 * 1024 - 1000) -> bytes:
    """A predict body of arrays nested levels deep, repeated up to size bytes (the body limit)."""
    one = deep(levels, b"[", b"]")
    return b'{"modelkey": "m", "records": [' + b",".join([one] * (size // (len(one) + 1))) + b"]}"


@pytest.mark.parametrize("path", ["/predict/", "/v2/models/m/infer"])
def test_a_body_of_millions_of_nested_arrays_is_refused_unparsed(client, path):
    """4 MB of arrays nested 60 deep (under the depth limit of 64) made 2 million Python lists:
    190 MB and 2-3 s a request before the schema refused it; 16 such clients took 2.46 GB."""
    answer = client.post(path, data=nested_records(59), headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]  # V2 speaks {"error": "<message>"}
    message = error["message"] if path == "/predict/" else error
    assert path != "/predict/" or error["code"] == "invalid_json"
    assert f"more than {LIMIT} arrays and objects" in message and "max_json_containers" in message


def test_brackets_inside_strings_are_no_containers(client):
    body = json.dumps({"modelkey": "no-such-model", "record": {"a": "[{" * 150_000, "b": 'x\\"[' * 10}}).encode()
    answer = client.post("/predict/", data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 404, answer.text  # parsed, and the model looked for


def test_the_count_is_exact_at_the_limit():
    check_containers(b"[" + b",".join([b"[]"] * (LIMIT - 1)) + b"]", LIMIT)
    with pytest.raises(Exception, match="max_json_containers"):
        check_containers(b"[" + b",".join([b"{}"] * LIMIT) + b"]", LIMIT)
