"""Errors that report everything at once (docs/API.md, "Partial batches and unseen categories";
issue 27): a CSV's bad lines all counted and named, refused whole or skipped on request; what
schema inference leaves out named with its reason; a mistyped grid field, input collection or
label answered with the close name. In process on the session's Redis and MongoDB; nothing is
consumed from the queue of the app under test."""

from __future__ import annotations

import base64
import json

from helpers import JOB
from predictionservice.defaults import MAX_BAD_LINES_NAMED

CSV = {"Content-Type": "text/csv"}
GOOD = ["1,a,yes", "2,b,no", "3,a,no", "4,b,yes"]
# Five bad lines of the three kinds, between good ones: (line number in the file, reason's start)
BAD = {
    3: ("1,a", "2 fields where the header has 3"),
    5: ('"x"y,a,no', "malformed CSV"),
    6: ("5,a,no,extra", "4 fields where the header has 3"),
    8: ("", None),  # a blank line is no row, so not a bad one: the next bad is line 9
    9: ("6", "1 fields where the header has 3"),
    11: ("7,b,yes,1,2", "5 fields where the header has 3"),
}


def body() -> bytes:
    """The header, then good and bad lines interleaved as BAD places them."""
    lines, good = ["n,kind,y"], iter(GOOD * 3)
    for number in range(2, 13):
        lines.append(BAD[number][0] if number in BAD else next(good))
    return ("\n".join(lines) + "\n").encode()


def good_rows() -> list[dict]:
    lines = body().decode().splitlines()
    rows = [lines[n - 1].split(",") for n in range(2, 13) if n not in BAD]
    return [{"n": int(n), "kind": kind, "y": y} for n, kind, y in rows]


def put(client, path: str, data: bytes, **query):
    return client.request("PUT", path, data=data, headers=CSV, query_string=query)


def stored(mongo_db, name: str) -> list[dict]:
    return list(mongo_db[name].find({}, {"_id": 0}).sort("_id"))


def named_lines() -> list[int]:
    return [n for n, (_, reason) in BAD.items() if reason]


def test_by_default_a_csv_with_five_bad_lines_is_refused_whole_naming_all_five(client, mongo_db):
    path = f"/datasets/{mongo_db.name}/people"
    assert put(client, path, b"n,kind,y\n0,z,no\n").status_code == 200  # what was there stays
    answer = put(client, path, body())
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_dataset"
    assert error["message"].startswith("5 bad lines, nothing was stored (?on_error=skip loads the good lines): ")
    assert [d["line"] for d in error["details"]] == named_lines()
    for detail in error["details"]:
        assert detail["reason"].startswith(BAD[detail["line"]][1])
        assert f"line {detail['line']}: {detail['reason']}" in error["message"]
    assert stored(mongo_db, "people") == [{"n": 0, "kind": "z", "y": "no"}]
    assert put(client, f"/datasets/{mongo_db.name}/fresh", body()).status_code == 400
    assert "fresh" not in mongo_db.list_collection_names()
    assert [n for n in mongo_db.list_collection_names() if n.startswith("__")] == []  # no load left behind


def test_with_on_error_skip_the_good_lines_load_and_the_five_bad_are_named_with_reasons(client, mongo_db):
    answer = put(client, f"/datasets/{mongo_db.name}/people", body(), on_error="skip")
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["inserted"] == len(good_rows()) == 5
    assert result["skipped"] == 5
    assert [b["line"] for b in result["bad_lines"]] == named_lines()
    assert all(b["reason"].startswith(BAD[b["line"]][1]) for b in result["bad_lines"])
    assert stored(mongo_db, "people") == good_rows()
    clean = put(client, f"/datasets/{mongo_db.name}/clean", b"a\n1\n2\n", on_error="skip").json()
    assert (clean["inserted"], clean["skipped"], clean["bad_lines"]) == (2, 0, [])


def test_every_bad_line_is_counted_and_the_first_hundred_named(client, mongo_db):
    bad = MAX_BAD_LINES_NAMED + 30
    data = ("a,b\n" + "1,2\n" + "x\n" * bad + "3,4\n").encode()
    refused = put(client, f"/datasets/{mongo_db.name}/many", data).json()["error"]
    assert refused["message"].startswith(f"{bad} bad lines, nothing was stored")
    assert refused["message"].endswith(f"; ... (details name the first {MAX_BAD_LINES_NAMED})")
    assert [d["line"] for d in refused["details"]] == list(range(3, 3 + MAX_BAD_LINES_NAMED))
    skipped = put(client, f"/datasets/{mongo_db.name}/many", data, on_error="skip").json()
    assert (skipped["inserted"], skipped["skipped"], len(skipped["bad_lines"])) == (2, bad, MAX_BAD_LINES_NAMED)
    assert stored(mongo_db, "many") == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_skip_with_no_good_line_and_a_bad_on_error_value_are_400(client, mongo_db):
    nothing = put(client, f"/datasets/{mongo_db.name}/none", b'a,b\n1\n"x"y,2\n', on_error="skip")
    assert nothing.status_code == 400
    assert nothing.json()["error"]["message"].startswith("2 bad lines, no good line: line 2: 1 fields")
    assert "none" not in mongo_db.list_collection_names()
    wrong = put(client, f"/datasets/{mongo_db.name}/x", b"a\n1\n", on_error="ignore")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["message"] == "'on_error' must be 'fail' or 'skip', not 'ignore'"
    json_skip = client.request(
        "PUT", f"/datasets/{mongo_db.name}/x", json=[{"a": 1}], query_string={"on_error": "skip"}
    )
    assert json_skip.status_code == 400 and "for a CSV upload" in json_skip.json()["error"]["message"]
    assert "x" not in mongo_db.list_collection_names()


def test_an_unterminated_quote_at_the_end_is_a_bad_line_and_the_rest_loads(client, mongo_db):
    answer = put(client, f"/datasets/{mongo_db.name}/q", b'a,b\n1,2\n3,"open\n', on_error="skip").json()
    assert (answer["inserted"], answer["skipped"]) == (1, 1)
    assert answer["bad_lines"][0]["reason"].startswith("malformed CSV")


DOCS = [
    {
        "age": 20 + i,
        "city": "Paris" if i % 2 else "Nice",
        "email": f"p{i}@example.org",  # a different text in every document
        "mixed": i if i % 3 else "n/a",
        "empty": None,
        "address": {"zip": "750" + str(i)},
        "tags": ["a"],
        "vip": i % 2 == 0,
        "y": "yes" if i % 4 == 0 else "no",
    }
    for i in range(12)
]


def test_schema_inference_names_what_it_left_out_and_why(client, mongo_db):
    mongo_db.people.insert_many([dict(d) for d in DOCS])
    answer = client.get(f"/datasets/{mongo_db.name}/people/schema", params={"label": "y"})
    assert answer.status_code == 200, answer.text
    schema = answer.json()
    assert [f["key"] for f in schema["features"]] == ["age", "city"]
    reasons = {d["field"]: d["reason"] for d in schema["dropped"]}
    assert list(reasons) == ["email", "mixed", "empty", "address", "tags", "vip"]  # _id is never read
    assert reasons["email"].startswith("id-like")
    assert reasons["mixed"] == "mixed types (number, string): a feature is numbers only or text only"
    assert reasons["empty"] == "null in every document read"
    assert reasons["address"].startswith("nested values (objects)")
    assert reasons["tags"].startswith("nested values (arrays)")
    assert reasons["vip"].startswith("true/false values")


def test_an_inferred_schema_with_its_dropped_fields_is_a_job_schema_as_it_is(unconsumed):
    schema = unconsumed.get("/datasets/datasets/bank/schema", params={"label": "y"}).json()
    assert "dropped" in schema
    answer = unconsumed.post("/train/", json={**JOB, "inputCollection": "datasets.bank", "schema": schema})
    assert answer.status_code == 202, answer.text
    services = unconsumed.app.extensions["prediction_service"]
    (queued,) = services.redis.lrange(services.queue_key, 0, -1)
    sent = base64.b64decode(json.loads(queued)["body"]).decode()  # Celery's message: the job inside
    assert '"features"' in sent and '"age"' in sent
    assert "dropped" not in sent  # a note of the inference, not sent with the job


def error_of(answer) -> dict:
    assert answer.status_code == 400, answer.text
    return answer.json()["error"]


def test_a_mistyped_grid_field_is_answered_with_the_close_name(client):
    job = {**JOB, "inputCollection": "datasets.bank", "regParm": [0.1]}
    job.pop("regParam", None)
    error = error_of(client.post("/train/", json=job))
    assert "has unknown field(s): 'regParm' (did you mean 'regParam'?)" in error["message"]
    assert any("did you mean 'regParam'?" in d["problem"] for d in error["details"])
    far = error_of(client.post("/train/", json={**job, "zzzz": 1}))["message"]
    assert "'zzzz'" in far and "'zzzz' (did you mean" not in far  # nothing close: no guess


def test_a_mistyped_input_collection_is_answered_with_the_close_names_of_its_database(client, bank_collection):
    error = error_of(client.post("/train/", json={**JOB, "inputCollection": "datasets.bnak"}))
    assert error["message"] == "'inputCollection': datasets.bnak does not exist (did you mean 'datasets.bank'?)"
    assert error["details"] == [
        {"field": "inputCollection", "problem": "does not exist (did you mean 'datasets.bank'?)"}
    ]
    missing = client.post("/train/", json={**JOB, "inputCollection": "datasets.qqqqqqqq"})
    assert missing.status_code == 404  # nothing close: a missing dataset, as before


def test_a_mistyped_label_is_answered_with_the_close_field_names(client, bank_collection):
    job = {**JOB, "inputCollection": "datasets.bank", "schema": {**JOB["schema"], "label": {"key": "Y"}}}
    job["schema"]["label"] = {"key": "Y", "values": {"no": 0, "yes": 1}}
    assert error_of(client.post("/train/", json=job))["message"] == (
        "label field 'Y' (did you mean 'y'?) not found in datasets.bank"
    )
    inferred = client.get("/datasets/datasets/bank/schema", params={"label": "jobb"})
    assert error_of(inferred)["message"] == "label field 'jobb' (did you mean 'job'?) not found in the collection"
