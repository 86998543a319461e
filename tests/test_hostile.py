"""Hostile input against the real service (worker + CherryPy web server, Redis, MongoDB).

* A battery of hostile requests, one case each, sent byte for byte with http.client (requests
  would normalise paths and bodies): every one is answered with the status API.md gives it and
  the error shape, never a 5xx and never a traceback. The battery runs between a snapshot and a
  check of the stored models, datasets, job records and databases: nothing changed, no job was
  queued, and a canary listener that stands for a foreign MongoDB host was never contacted.
* A dataset upload past max_dataset_bytes, against a web server of its own with a small limit.
* A schemathesis run against the live /openapi.json: no 5xx, responses as documented.

Foreign hosts (10.1.2.3, example.com, mongodb+srv) only ever appear in request bodies the service
must refuse before it connects anywhere; every packet of this module goes to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import bson
import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import API_ROUTES, E2E_BANK, JOB, Service

RECORD = {
    "age": 41, "job": "management", "marital": "married", "education": "tertiary", "default": "no",
    "balance": 1200, "housing": "yes", "loan": "no", "contact": "cellular", "day": 15, "month": "may",
    "duration": 420, "campaign": 1, "pdays": -1, "previous": 0, "poutcome": "unknown",
}  # fmt: skip
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"]*", line \d+|\bline \d+, in \w+')
JSON_TYPE = {"Content-Type": "application/json"}
CSV_TYPE = {"Content-Type": "text/csv"}
MAX_BODY = 4 * 1024 * 1024  # the default max_body_bytes the session's service runs with
MAX_DATASET = 512 * 1024 * 1024
MAX_ANSWER = 16 * 1024  # an error never echoes a huge id, key, path or field name back whole

# Placeholders a case's path or body may hold, filled in from the session: the trained model's
# key (also its training job's id), the configured MongoDB's host:port, the canary's port.
MODEL, MONGO, CANARY = "@MODEL@", "@MONGO@", "@CANARY@"


# ------------------------------------------------------------------------------ raw HTTP


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
    content_length: int | None = None,
) -> Answer:
    """One request exactly as given: path unnormalised, body as bytes (chunked on request),
    Content-Length as given (a header-only claim when content_length is set and body is None)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        elif content_length is not None:
            connection.putheader("Content-Length", str(content_length))
        elif body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        try:
            if body is not None and chunked:
                for start in range(0, len(body), 1 << 16):
                    part = body[start : start + (1 << 16)]
                    connection.send(b"%x\r\n%s\r\n" % (len(part), part))
                connection.send(b"0\r\n\r\n")
            elif body is not None:
                connection.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (413) before the whole body was sent and closed its side
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def assert_error_answer(answer: Answer, status: int, code: str | None = None, *, method: str = "GET") -> None:
    """The status API.md gives, the error shape, no traceback, and Allow on a 405."""
    text = answer.body.decode("utf-8", "replace")
    assert answer.status == status, f"expected {status}, got {answer.status}: {text[:500]}"
    assert not TRACEBACK.search(text), text[:2000]
    assert len(answer.body) <= MAX_ANSWER, f"a {len(answer.body)}-byte error echoes the request: {text[:300]}"
    if status == 405:
        allowed = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
        assert allowed and method not in allowed, answer.headers
    if method == "HEAD":
        assert answer.body == b""
        return
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], list), error
    assert set(answer.json()) == {"error"}
    if code is not None:
        assert error["code"] == code, error


# ---------------------------------------------------------------------------- the battery


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    code: str | None = None
    body: Any = None  # bytes as they are; anything else is sent as JSON
    headers: dict[str, str] | None = None
    chunked: bool = False
    content_length: int | None = None

    def payload(self, fill: dict[str, str]) -> bytes | None:
        if self.body is None:
            return None
        raw = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        for placeholder, value in fill.items():
            raw = raw.replace(placeholder.encode(), value.encode())
        return raw

    def url_path(self, fill: dict[str, str]) -> str:
        path = self.path
        for placeholder, value in fill.items():
            path = path.replace(placeholder, value)
        return path


def job(**changes: Any) -> dict[str, Any]:
    return {**JOB, "inputCollection": E2E_BANK, **changes}


def job_schema(**changes: Any) -> dict[str, Any]:
    return job(schema={**JOB["schema"], **changes})


def first_feature(**changes: Any) -> dict[str, Any]:
    return job_schema(features=[{**JOB["schema"]["features"][0], **changes}, *JOB["schema"]["features"][1:]])


def predict(**changes: Any) -> dict[str, Any]:
    return {"modelkey": MODEL, "record": RECORD, **changes}


def predictall(**changes: Any) -> dict[str, Any]:
    return {"modelkey": MODEL, "inputCollection": E2E_BANK, "outputCollection": "hostile.out", **changes}


def deep(levels: int, opening: bytes, closing: bytes, inner: bytes = b"1") -> bytes:
    return opening * levels + inner + closing * levels


def cut(document: dict[str, Any]) -> bytes:
    raw = json.dumps(document).encode()
    return raw[: len(raw) // 2]


def post(id: str, path: str, body: Any, status: int = 400, code: str | None = None, **kw: Any) -> Case:
    return Case(id, "POST", path, status, code, body, {**JSON_TYPE, **kw.pop("headers", {})}, **kw)


BIG_RECORDS = {"modelkey": MODEL, "records": [RECORD] * (MAX_BODY // 250)}  # ~4.7 MB of JSON
JOB_ID_404 = "0123456789abcdef0123456789abcdef"

CASES = [
    # --- JSON syntax ----------------------------------------------------------------------
    post("malformed-json-predict", "/predict/", b'{"modelkey": "x", "record": {', code="invalid_json"),
    post("malformed-json-train-bare-word", "/train/", b'{"name": LogisticRegressionWrapper}', code="invalid_json"),
    post("malformed-json-single-quotes", "/predictall/", b"{'modelkey': 'x'}", code="invalid_json"),
    post("malformed-json-trailing-garbage", "/predict/", json.dumps(predict()).encode() + b"}", code="invalid_json"),
    post("truncated-json-train", "/train/", cut(job()), code="invalid_json"),
    post("truncated-json-predictall", "/predictall/", cut(predictall()), code="invalid_json"),
    post("truncated-json-predict", "/predict/", cut(predict()), code="invalid_json"),
    post("not-an-object-array-predict", "/predict/", b"[1, 2, 3]", code="invalid_request"),
    post("not-an-object-string-train", "/train/", b'"LogisticRegressionWrapper"', code="invalid_request"),
    post("not-an-object-null-predictall", "/predictall/", b"null", code="invalid_request"),
    post("not-an-object-number-predict", "/predict/", b"42", code="invalid_request"),
    post("nan-literal-predict", "/predict/", json.dumps(predict()).replace("41", "NaN").encode(), code="invalid_json"),
    post(
        "infinity-literal-train", "/train/", json.dumps(job()).replace("0.01", "Infinity").encode(), code="invalid_json"
    ),
    post(
        "minus-infinity-literal-train",
        "/train/",
        json.dumps(job(tol=7)).replace('"tol": 7', '"tol": -Infinity').encode(),
    ),
    post("1e999-predict", "/predict/", json.dumps(predict()).replace("1200", "1e999").encode(), code="invalid_json"),
    post("5000-digit-integer-predict", "/predict/", json.dumps(predict()).replace("1200", "9" * 5000).encode()),
    post(
        "5000-digit-integer-train",
        "/train/",
        json.dumps(job()).replace('"iterations": 100', '"iterations": ' + "7" * 5000).encode(),
    ),
    post("nested-arrays-10000-predict", "/predict/", deep(10_000, b"[", b"]"), code="invalid_json"),
    post("nested-objects-10000-train", "/train/", deep(10_000, b'{"a":', b"}"), code="invalid_json"),
    post("nested-65-levels-in-record", "/predict/", b'{"modelkey":"x","record":{"a":' + deep(64, b"[", b"]") + b"}}"),
    post("empty-body-predict", "/predict/", b"", code="invalid_json"),
    post("whitespace-body-train", "/train/", b" \r\n\t ", code="invalid_json"),
    post("not-utf8-body-predictall", "/predictall/", b'{"modelkey": "caf\xe9"}', code="invalid_json"),
    post("utf16-body-predict", "/predict/", json.dumps(predict()).encode("utf-16"), code="invalid_json"),
    # --- job document: wrong type of every field, unknown and missing fields ----------------
    post("job-name-not-a-string", "/train/", job(name=7), code="invalid_request"),
    post("job-inputCollection-array", "/train/", job(inputCollection=["e2e", "bank"]), code="invalid_request"),
    post("job-outputCollection-number", "/train/", job(outputCollection=12345), code="invalid_request"),
    post("job-schema-string", "/train/", job(schema="y ~ age"), code="invalid_request"),
    post("job-schema-label-string", "/train/", job_schema(label="y"), code="invalid_request"),
    post("job-schema-features-object", "/train/", job_schema(features={"key": "age"}), code="invalid_request"),
    post("job-schema-features-empty", "/train/", job_schema(features=[]), code="invalid_request"),
    post("job-feature-key-number", "/train/", first_feature(key=3), code="invalid_request"),
    post("job-feature-key-dollar", "/train/", first_feature(key="$where"), code="invalid_request"),
    post("job-feature-values-array", "/train/", first_feature(values=["a", "b"]), code="invalid_request"),
    post("job-feature-values-negative", "/train/", first_feature(values={"a": -1}), code="invalid_request"),
    post("job-feature-values-past-the-end", "/train/", first_feature(values={"a": 0, "b": 10**9})),
    post("job-regParam-number", "/train/", job(regParam=0.1), code="invalid_request"),
    post("job-regParam-string-item", "/train/", job(regParam=["0.1"]), code="invalid_request"),
    post("job-regParam-boolean-item", "/train/", job(regParam=[True]), code="invalid_request"),
    post("job-elasticNetParam-out-of-range", "/train/", job(elasticNetParam=[2]), code="invalid_request"),
    post("job-iterations-string", "/train/", job(iterations="100"), code="invalid_request"),
    post("job-iterations-zero", "/train/", job(iterations=0), code="invalid_request"),
    post("job-iterations-huge", "/train/", job(iterations=10**30), code="invalid_request"),
    post("job-numFolds-fraction", "/train/", job(numFolds=2.5), code="invalid_request"),
    post("job-tol-zero", "/train/", job(tol=0), code="invalid_request"),
    post("job-holdoutFraction-too-big", "/train/", job(holdoutFraction=0.9), code="invalid_request"),
    post("job-seed-negative", "/train/", job(seed=-1), code="invalid_request"),
    post("job-standardization-string", "/train/", job(standardization="yes"), code="invalid_request"),
    post("job-unknown-field", "/train/", job(shell="rm -rf /"), code="invalid_request"),
    post("job-unknown-1mb-field-name", "/train/", job(**{"f" * 1_000_000: 1}), code="invalid_request"),
    post("job-values-1mb-category", "/train/", first_feature(values={"c" * 1_000_000: "zero"}), code="invalid_request"),
    post("job-missing-name", "/train/", {k: v for k, v in job().items() if k != "name"}, code="invalid_request"),
    post("job-missing-inputCollection", "/train/", {k: v for k, v in job().items() if k != "inputCollection"}),
    post("job-missing-schema", "/train/", {k: v for k, v in job().items() if k != "schema"}, code="invalid_request"),
    post("job-label-is-a-feature", "/train/", job_schema(label={"key": "age"}), code="invalid_schema"),
    post("job-feature-listed-twice", "/train/", job_schema(features=[{"key": "age"}, {"key": "age"}])),
    # --- predict and predictall bodies ------------------------------------------------------
    post("predict-modelkey-number", "/predict/", predict(modelkey=5), code="invalid_request"),
    post("predict-modelkey-empty", "/predict/", predict(modelkey=""), code="invalid_request"),
    post("predict-modelkey-path", "/predict/", predict(modelkey="../../etc/passwd"), code="invalid_request"),
    post("predict-record-array", "/predict/", predict(record=[RECORD]), code="invalid_request"),
    post("predict-records-object", "/predict/", {"modelkey": MODEL, "records": RECORD}, code="invalid_request"),
    post("predict-records-of-numbers", "/predict/", {"modelkey": MODEL, "records": [1, 2]}, code="invalid_request"),
    post("predict-records-empty", "/predict/", {"modelkey": MODEL, "records": []}, code="invalid_request"),
    post("predict-records-over-the-maximum", "/predict/", {"modelkey": MODEL, "records": [{}] * 10_001}),
    post("predict-record-and-records", "/predict/", predict(records=[RECORD]), code="invalid_request"),
    post("predict-unknown-field", "/predict/", predict(explain=True), code="invalid_request"),
    post("predict-missing-modelkey", "/predict/", {"record": RECORD}, code="invalid_request"),
    post("predict-missing-record", "/predict/", {"modelkey": MODEL}, code="invalid_request"),
    post("predict-field-not-a-number", "/predict/", predict(record={**RECORD, "age": "forty"}), code="invalid_record"),
    post("predict-field-400-digit-int", "/predict/", predict(record={**RECORD, "age": 10**400}), code="invalid_record"),
    post("predict-field-a-list", "/predict/", predict(record={**RECORD, "job": ["admin."]}), code="invalid_record"),
    post("predict-field-an-object", "/predict/", predict(record={**RECORD, "job": {"$ne": 1}}), code="invalid_record"),
    post("predict-field-missing", "/predict/", predict(record={"age": 41}), code="invalid_record"),
    post("predict-batch-bad-record", "/predict/", {"modelkey": MODEL, "records": [RECORD, {**RECORD, "day": None}]}),
    post(
        "predict-schema-disagrees", "/predict/", predict(schema={"label": {"key": "y"}, "features": [{"key": "age"}]})
    ),
    post("predictall-modelkey-array", "/predictall/", predictall(modelkey=[MODEL]), code="invalid_request"),
    post("predictall-inputCollection-number", "/predictall/", predictall(inputCollection=5), code="invalid_request"),
    post("predictall-unknown-field", "/predictall/", predictall(overwrite=True), code="invalid_request"),
    post("predictall-missing-output", "/predictall/", {"modelkey": MODEL, "inputCollection": E2E_BANK}),
    post("predictall-output-is-input", "/predictall/", predictall(outputCollection=E2E_BANK), code="invalid_request"),
    # --- bodies too large (413) ----------------------------------------------------------------
    Case(
        "oversize-predict-content-length",
        "POST",
        "/predict/",
        413,
        "payload_too_large",
        None,
        JSON_TYPE,
        content_length=MAX_BODY + 1,
    ),
    Case("oversize-predict-real-body", "POST", "/predict/", 413, "payload_too_large", BIG_RECORDS, JSON_TYPE),
    Case(
        "oversize-train-chunked",
        "POST",
        "/train/",
        413,
        "payload_too_large",
        b'{"name": "' + b"x" * (MAX_BODY + 1024) + b'"}',
        JSON_TYPE,
        chunked=True,
    ),
    Case(
        "oversize-predictall-chunked",
        "POST",
        "/predictall/",
        413,
        "payload_too_large",
        BIG_RECORDS,
        JSON_TYPE,
        chunked=True,
    ),
    Case(
        "oversize-dataset-content-length",
        "PUT",
        "/datasets/hostile/big",
        413,
        "payload_too_large",
        None,
        CSV_TYPE,
        content_length=MAX_DATASET + 1,
    ),
    Case(
        "oversize-get-with-body",
        "GET",
        "/models/",
        413,
        "payload_too_large",
        None,
        JSON_TYPE,
        content_length=MAX_BODY + 1,
    ),
    # --- content types (415) -------------------------------------------------------------------
    post(
        "text-plain-predict",
        "/predict/",
        predict(),
        415,
        "unsupported_media_type",
        headers={"Content-Type": "text/plain"},
    ),
    post(
        "form-urlencoded-train",
        "/train/",
        b"name=os&inputCollection=e2e.bank",
        415,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case("no-content-type-predictall", "POST", "/predictall/", 415, "unsupported_media_type", predictall()),
    post(
        "multipart-predict",
        "/predict/",
        b'--b\r\nContent-Disposition: form-data; name="modelkey"\r\n\r\nx\r\n--b--\r\n',
        415,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    ),
    post("xml-train", "/train/", b"<job><name>os</name></job>", 415, headers={"Content-Type": "application/xml"}),
    Case(
        "dataset-form-urlencoded",
        "PUT",
        "/datasets/hostile/form",
        415,
        "unsupported_media_type",
        b"a=1&b=2",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "dataset-multipart",
        "PUT",
        "/datasets/hostile/multi",
        415,
        "unsupported_media_type",
        b"--b--\r\n",
        {"Content-Type": "multipart/form-data; boundary=b"},
    ),
    Case("dataset-no-content-type", "PUT", "/datasets/hostile/none", 415, "unsupported_media_type", b'[{"a": 1}]'),
    # --- dataset names in paths ---------------------------------------------------------------
    Case("dataset-put-dollar", "PUT", "/datasets/e2e/a$b", 400, "invalid_request", b'[{"a": 1}]', JSON_TYPE),
    Case("dataset-get-dotdot-collection", "GET", "/datasets/e2e/..", 400, "invalid_request"),
    Case("dataset-get-encoded-dotdot", "GET", "/datasets/e2e/%2E%2E", 400, "invalid_request"),
    Case(
        "dataset-put-encoded-slash-db",
        "PUT",
        "/datasets/e2e%2Fbank/x",
        400,
        "invalid_request",
        b'[{"a": 1}]',
        JSON_TYPE,
    ),
    Case(
        "dataset-delete-encoded-slash-traversal",
        "DELETE",
        "/datasets/e2e/bank%2F..%2F..%2Fadmin",
        400,
        "invalid_request",
    ),
    Case("dataset-get-encoded-slash-lowercase", "GET", "/datasets/e2e%2fbank/x", 400, "invalid_request"),
    Case("dataset-get-nul", "GET", "/datasets/e2e/ba%00nk", 400, "invalid_request"),
    Case("dataset-put-nul-db", "PUT", "/datasets/e2%00e/bank", 400, "invalid_request", b"a\n1\n", CSV_TYPE),
    Case("dataset-delete-dollar-cmd", "DELETE", "/datasets/e2e/$cmd", 400, "invalid_request"),
    Case(
        "dataset-put-long-collection", "PUT", "/datasets/e2e/" + "c" * 300, 400, "invalid_request", b"a\n1\n", CSV_TYPE
    ),
    Case("dataset-get-long-db", "GET", "/datasets/" + "d" * 100 + "/bank", 400, "invalid_request"),
    Case("dataset-put-admin", "PUT", "/datasets/admin/x", 400, "forbidden_target", b'[{"a": 1}]', JSON_TYPE),
    Case("dataset-get-Local", "GET", "/datasets/Local/startup_log", 400, "forbidden_target"),
    Case("dataset-delete-CONFIG", "DELETE", "/datasets/CONFIG/system.sessions", 400, "forbidden_target"),
    Case("dataset-delete-admin-users", "DELETE", "/datasets/admin/system.users", 400, "forbidden_target"),
    Case("dataset-schema-local", "GET", "/datasets/local/oplog.rs/schema?label=y", 400, "forbidden_target"),
    Case(
        "dataset-put-system-collection",
        "PUT",
        "/datasets/e2e/system.profile",
        400,
        "invalid_request",
        b'[{"a": 1}]',
        JSON_TYPE,
    ),
    Case(
        "dataset-put-mode-garbage",
        "PUT",
        "/datasets/hostile/mode?mode=drop%00",
        400,
        "invalid_request",
        b"a\n1\n",
        CSV_TYPE,
    ),
    Case(
        "dataset-put-json-dollar-key",
        "PUT",
        "/datasets/hostile/keys",
        400,
        "invalid_dataset",
        b'[{"a": {"$where": "sleep(1000)"}}]',
        JSON_TYPE,
    ),
    Case(
        "dataset-put-json-huge-int",
        "PUT",
        "/datasets/hostile/ints",
        400,
        "invalid_dataset",
        b'[{"a": ' + b"9" * 30 + b"}]",
        JSON_TYPE,
    ),
    Case(
        "dataset-put-csv-ragged", "PUT", "/datasets/hostile/ragged", 400, "invalid_dataset", b"a,b\n1,2,3\n", CSV_TYPE
    ),
    Case("dataset-put-json-nan", "PUT", "/datasets/hostile/nan", 400, "invalid_json", b'[{"a": NaN}]', JSON_TYPE),
    Case("dataset-schema-no-label", "GET", "/datasets/e2e/bank/schema?label=", 400, "invalid_request"),
    Case("dataset-schema-nul-label", "GET", "/datasets/e2e/bank/schema?label=%00%ff", 400, "invalid_schema"),
    Case("dataset-unknown-get", "GET", "/datasets/hostile/never_created", 404, "not_found"),
    Case("dataset-unknown-delete", "DELETE", "/datasets/hostile/never_created", 404, "not_found"),
    # --- system databases and foreign hosts in job documents and predictall bodies ------------
    post("job-input-admin", "/train/", job(inputCollection="admin.system.users"), code="forbidden_target"),
    post("job-input-Config", "/train/", job(inputCollection="Config.system.sessions"), code="forbidden_target"),
    post("job-output-LOCAL", "/train/", job(outputCollection="LOCAL.oplog.rs"), code="forbidden_target"),
    post("job-input-dollar-cmd", "/train/", job(inputCollection="e2e.$cmd"), code="invalid_request"),
    post("job-input-dotdot", "/train/", job(inputCollection="e2e..bank"), code="invalid_request"),
    post("job-input-nul", "/train/", job(inputCollection="e2e.ba\x00nk"), code="invalid_request"),
    post(
        "job-input-foreign-ip", "/train/", job(inputCollection="mongodb://10.1.2.3:27017/db.c"), code="forbidden_target"
    ),
    post(
        "job-input-foreign-name", "/train/", job(inputCollection="mongodb://example.com/db.c"), code="forbidden_target"
    ),
    post("job-input-srv", "/train/", job(inputCollection="mongodb+srv://x/db.c"), code="forbidden_target"),
    post(
        "job-input-credentials-foreign",
        "/train/",
        job(inputCollection="mongodb://user:pass@10.1.2.3/db.c"),
        code="forbidden_target",
    ),
    post(
        "job-input-userinfo-trick",
        "/train/",
        job(inputCollection=f"mongodb://{MONGO}@10.1.2.3/db.c"),
        code="forbidden_target",
    ),
    post(
        "job-input-second-seed-foreign",
        "/train/",
        job(inputCollection=f"mongodb://{MONGO},example.com/e2e.bank"),
        code="forbidden_target",
    ),
    post(
        "job-input-canary-port",
        "/train/",
        job(inputCollection=f"mongodb://127.0.0.1:{CANARY}/e2e.bank"),
        code="forbidden_target",
    ),
    post(
        "job-output-canary-port",
        "/train/",
        job(outputCollection=f"mongodb://127.0.0.1:{CANARY}/e2e.out"),
        code="forbidden_target",
    ),
    post(
        "job-input-wrong-credentials",
        "/train/",
        job(inputCollection=f"mongodb://intruder:guess@{MONGO}/e2e.bank"),
        code="invalid_request",
    ),
    post(
        "job-input-bad-port",
        "/train/",
        job(inputCollection="mongodb://127.0.0.1:99999/e2e.bank"),
        code="invalid_request",
    ),
    post(
        "job-input-tls-ca-file",
        "/train/",
        job(inputCollection=f"mongodb://{MONGO}/e2e.bank?tls=true&tlsCAFile=/etc/passwd"),
        code="forbidden_target",
    ),
    post(
        "job-input-aws-auth",
        "/train/",
        job(inputCollection=f"mongodb://{MONGO}/e2e.bank?authMechanism=MONGODB-AWS"),
        code="forbidden_target",
    ),
    post(
        "job-input-bad-option-value",
        "/train/",
        job(inputCollection=f"mongodb://{MONGO}/e2e.bank?readPreference=x"),
        code="invalid_request",
    ),
    post(
        "predictall-input-foreign",
        "/predictall/",
        predictall(inputCollection="mongodb://10.1.2.3:27017/db.c"),
        code="forbidden_target",
    ),
    post(
        "predictall-output-foreign",
        "/predictall/",
        predictall(outputCollection="mongodb://example.com/db.out"),
        code="forbidden_target",
    ),
    post(
        "predictall-output-srv",
        "/predictall/",
        predictall(outputCollection="mongodb+srv://cluster.example.com/db.out"),
        code="forbidden_target",
    ),
    post(
        "predictall-input-canary",
        "/predictall/",
        predictall(inputCollection=f"mongodb://127.0.0.1:{CANARY}/e2e.bank"),
        code="forbidden_target",
    ),
    post("predictall-output-admin", "/predictall/", predictall(outputCollection="admin.out"), code="forbidden_target"),
    # --- unknown jobs, models and algorithms -----------------------------------------------------
    Case("status-never-issued", "GET", f"/training/status/{JOB_ID_404}", 404, "not_found"),
    Case("status-10000-char-id", "GET", "/predictall/status/" + "a" * 10_000, 404, "not_found"),
    Case("jobs-10000-char-id", "GET", "/jobs/" + "f" * 10_000, 404, "not_found"),
    Case("jobs-nul-id", "GET", "/jobs/%00", 404, "not_found"),
    Case("jobs-200000-char-id", "GET", "/jobs/" + "j" * 200_000, 404, "not_found"),
    Case("model-100000-char-key-delete", "DELETE", "/models/" + "k" * 100_000, 404, "not_found"),
    Case("route-100000-char-path", "GET", "/" + "r" * 100_000, 404, "not_found"),
    Case("method-100000-char-path", "POST", "/jobs/" + "m" * 100_000, 405, "method_not_allowed", {}, JSON_TYPE),
    Case("dataset-100000-char-name", "DELETE", "/datasets/" + "d" * 100_000 + "/x", 400, "invalid_request"),
    Case("jobs-glob-id", "GET", "/jobs/*", 404, "not_found"),
    Case("predictall-status-of-a-training-job", "GET", f"/predictall/status/{MODEL}", 404, "not_found"),
    Case("model-unknown", "GET", "/models/no-such-model", 404, "not_found"),
    Case("model-unknown-delete", "DELETE", f"/models/{JOB_ID_404}", 404, "not_found"),
    Case("model-versions-hash", "GET", "/models/__versions__", 404, "not_found"),
    Case("model-versions-hash-delete", "DELETE", "/models/__versions__", 404, "not_found"),
    Case("model-10000-char-key", "GET", "/models/" + "k" * 10_000, 404, "not_found"),
    post("predict-unknown-model", "/predict/", predict(modelkey="no-such-model"), 404, "not_found"),
    post("predict-versions-hash", "/predict/", predict(modelkey="__versions__"), 404, "not_found"),
    post("predictall-unknown-model", "/predictall/", predictall(modelkey="no-such-model"), 404, "not_found"),
    post("predictall-versions-hash", "/predictall/", predictall(modelkey="__versions__"), 404, "not_found"),
    post("train-input-missing", "/train/", job(inputCollection="hostile.never_created"), 404, "not_found"),
    *[
        post(f"algorithm-{name or 'empty'}", "/train/", job(name=name))
        for name in (
            "os",
            "subprocess",
            "__import__",
            "LogisticRegressionWrapper.os",
            "../LogisticRegressionWrapper",
            "",
            "canary_algorithm",
            "builtins",
        )
    ],
    # --- wrong methods (405 with Allow) and unknown routes (404) --------------------------------
    Case("method-get-train", "GET", "/train/", 405, "method_not_allowed"),
    Case("method-get-train-no-slash", "GET", "/train", 405, "method_not_allowed"),
    Case("method-delete-health", "DELETE", "/health", 405, "method_not_allowed"),
    Case("method-put-predict", "PUT", "/predict/", 405, "method_not_allowed", predict(), JSON_TYPE),
    Case("method-get-predict-no-slash", "GET", "/predict", 405, "method_not_allowed"),
    Case("method-delete-predictall", "DELETE", "/predictall/", 405, "method_not_allowed"),
    Case("method-post-models", "POST", "/models/", 405, "method_not_allowed", {}, JSON_TYPE),
    Case("method-post-models-no-slash", "POST", "/models", 405, "method_not_allowed", {}, JSON_TYPE),
    Case("method-patch-model", "PATCH", f"/models/{MODEL}", 405, "method_not_allowed", {"coefficients": []}, JSON_TYPE),
    Case("method-put-model", "PUT", f"/models/{MODEL}", 405, "method_not_allowed", {"coefficients": []}, JSON_TYPE),
    Case("method-post-jobs", "POST", f"/jobs/{MODEL}", 405, "method_not_allowed", {}, JSON_TYPE),
    Case("method-delete-training-status", "DELETE", f"/training/status/{MODEL}", 405, "method_not_allowed"),
    Case("method-post-dataset", "POST", "/datasets/e2e/bank", 405, "method_not_allowed", b"a\n1\n", CSV_TYPE),
    Case("method-delete-dataset-schema", "DELETE", "/datasets/e2e/bank/schema", 405, "method_not_allowed"),
    Case("method-post-openapi", "POST", "/openapi.json", 405, "method_not_allowed", {}, JSON_TYPE),
    Case("method-trace-predict", "TRACE", "/predict/", 405, "method_not_allowed"),
    Case("method-invented", "BREW", "/health", 405, "method_not_allowed"),
    Case("route-unknown", "GET", "/admin", 404, "not_found"),
    Case("route-dataset-without-collection", "GET", "/datasets/e2e", 404, "not_found"),
    Case("route-model-subpath", "GET", f"/models/{MODEL}/coefficients", 404, "not_found"),
    Case("route-health-trailing", "GET", "/health/x", 404, "not_found"),
    Case("route-train-subpath", "POST", "/train/extra", 404, "not_found", job(), JSON_TYPE),
    Case("route-percent", "GET", "/%", 404, "not_found"),
    Case("route-dotdot", "GET", "/models/../../etc/passwd", 404, "not_found"),
    Case("route-head-unknown-job", "HEAD", "/jobs/" + JOB_ID_404, 404),
    # --- query strings with garbage --------------------------------------------------------------
    Case(
        "query-garbage-schema-label-missing",
        "GET",
        "/datasets/e2e/bank/schema?lab%00el=y&&=&%zz",
        400,
        "invalid_request",
    ),
    Case("query-garbage-unknown-job", "GET", f"/jobs/{JOB_ID_404}?history=%ff%fe&history=1", 404, "not_found"),
]

# HEAD on every GET route, and GETs with query garbage that must be ignored: 200, never a 5xx.
OK_CASES = [
    Case("head-health", "HEAD", "/health", 200),
    Case("head-openapi", "HEAD", "/openapi.json", 200),
    Case("head-models", "HEAD", "/models/", 200),
    Case("head-model", "HEAD", f"/models/{MODEL}", 200),
    Case("head-training-status", "HEAD", f"/training/status/{MODEL}", 200),
    Case("head-jobs", "HEAD", f"/jobs/{MODEL}", 200),
    Case("head-dataset", "HEAD", "/datasets/e2e/bank", 200),
    Case("head-dataset-schema", "HEAD", "/datasets/e2e/bank/schema?label=y", 200),
    Case("query-garbage-models", "GET", "/models/?%ff%00=%zz&&&=;&models[$gt]=", 200),
    Case("query-garbage-health", "GET", "/health?" + "x=1&" * 500, 200),
    Case("query-garbage-dataset", "GET", "/datasets/e2e/bank?limit=-1&fields[$where]=1", 200),
    Case("query-garbage-status", "GET", f"/training/status/{MODEL}?history=%00", 200),
]

RAN: set[str] = set()


@dataclass
class Snapshot:
    health: dict
    models: list
    coefficients: dict
    bank_count: int
    bank_checksum: str
    namespaces: dict
    jobs: int


def checksum(collection) -> str:
    digest = hashlib.sha256()
    for document in collection.find({}, sort=[("_id", 1)]):
        digest.update(bson.encode(document))
    return digest.hexdigest()


def job_records(service) -> int:
    client = redis.Redis.from_url(service.params["redis_url"])
    try:
        return sum(1 for key in client.scan_iter("job:*", count=1000) if not key.endswith(b":history"))
    finally:
        client.close()


def snapshot(service, mongo_client) -> Snapshot:
    health = service.get("/health").json()
    models = service.get("/models/").json()["models"]
    coefficients = {m["model_key"]: service.get(f"/models/{m['model_key']}").json()["coefficients"] for m in models}
    bank = mongo_client["e2e"]["bank"]
    namespaces = {
        db: sorted(mongo_client[db].list_collection_names())
        for db in mongo_client.list_database_names()
        if db not in ("admin", "local", "config")
    }
    return Snapshot(
        health={k: health[k] for k in ("status", "redis", "mongo")},
        models=sorted(models, key=lambda m: m["model_key"]),
        coefficients=coefficients,
        bank_count=service.get("/datasets/e2e/bank").json()["count"],
        bank_checksum=checksum(bank),
        namespaces=namespaces,
        jobs=job_records(service),
    )


@pytest.fixture(scope="module")
def canary():
    """A listener standing for a foreign MongoDB host: every connection to it is recorded."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    hits: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            hits.append(peer)
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], hits
    stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture(scope="module")
def before(service, bank_over_http, bank_model, mongo_client):
    return snapshot(service, mongo_client)


@pytest.fixture(scope="module")
def fill(service, bank_model, canary, before):
    mongo = service.params["mongodb_uri"].split("//", 1)[1].split("/", 1)[0]
    return {MODEL: bank_model, MONGO: mongo, CANARY: str(canary[0])}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_a_hostile_request_is_refused_with_the_error_shape(service, fill, case):
    answer = send(
        service.url,
        case.method,
        case.url_path(fill),
        case.payload(fill),
        case.headers,
        chunked=case.chunked,
        content_length=case.content_length,
    )
    assert 400 <= case.status < 500
    assert_error_answer(answer, case.status, case.code, method=case.method)
    RAN.add(case.id)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in OK_CASES])
def test_head_and_garbage_queries_on_get_routes_answer_200(service, fill, case):
    answer = send(service.url, case.method, case.url_path(fill), None, case.headers)
    assert answer.status == 200, answer.body[:500]
    assert answer.headers.get("content-type", "").startswith("application/json")
    if case.method == "HEAD":
        assert answer.body == b""
        assert int(answer.headers.get("content-length", "1")) > 0  # what the GET would send
    else:
        answer.json()
    RAN.add(case.id)


def test_the_battery_has_enough_cases():
    assert len({c.id for c in CASES + OK_CASES}) == len(CASES) + len(OK_CASES), "duplicate case ids"
    assert len(CASES) >= 60


def test_after_the_battery_nothing_changed(service, mongo_client, before, canary):
    """Runs after the battery in this module (file order). Run alone, it has nothing to check."""
    if len(RAN) < len(CASES) + len(OK_CASES):
        pytest.skip("the hostile battery did not run in full in this session")
    after = snapshot(service, mongo_client)
    assert after.health == {"status": "ok", "redis": "ok", "mongo": "ok"}
    assert after.models == before.models
    assert after.coefficients == before.coefficients
    assert after.bank_count == before.bank_count == 45211
    assert after.bank_checksum == before.bank_checksum
    assert after.namespaces == before.namespaces  # nothing created (no 'e2e%2Fbank', no 'hostile')
    assert after.jobs == before.jobs  # no job was queued
    assert canary[1] == [], f"the service connected to the canary 'foreign' host: {canary[1]}"
    assert not service.canary_mark.exists()  # no algorithm module was imported by name
    assert service.get("/health").json()["workers"] >= 1


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_submissions_with_ever_new_uris_leave_no_clients_behind(service):
    """Each distinct URI a job names must not leave a MongoClient (and its monitor threads) in
    the web process: a stream of submissions would exhaust it."""
    web = service.children["web"].pid
    mongo = service.params["mongodb_uri"].split("//", 1)[1].split("/", 1)[0]
    baseline = threads_of(web)
    for i in range(60):
        spec = f"mongodb://{mongo}/hostile.never_created?authSource=hostile{i}"
        answer = send(service.url, "POST", "/train/", json.dumps(job(inputCollection=spec)).encode(), JSON_TYPE)
        assert_error_answer(answer, 404, "not_found", method="POST")
    deadline = time.monotonic() + 30  # closed clients stop their monitor threads in the background
    while threads_of(web) > baseline + 20 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert threads_of(web) <= baseline + 20, f"{baseline} threads before, {threads_of(web)} after 60 URIs"


# -------------------------------------------------------------------- dataset size limit


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory, base_params):
    """A web server of its own whose dataset uploads stop at 4 KiB."""
    started = Service(tmp_path_factory.mktemp("small"), {**base_params, "max_dataset_bytes": 4096}, worker=False)
    yield started
    started.stop()


def test_a_dataset_past_max_dataset_bytes_is_413_and_the_old_data_stays(small_limits, mongo_db):
    db = mongo_db.name
    loaded = send(small_limits.url, "PUT", f"/datasets/{db}/kept", b"a,b\n1,2\n3,4\n", CSV_TYPE)
    assert loaded.status == 200 and loaded.json()["inserted"] == 2
    csv = b"a,b\n" + b"5,6\n" * 2000  # 8 KiB
    documents = json.dumps([{"a": 5, "b": 6}] * 500).encode()  # 7 KiB
    attempts = [
        send(small_limits.url, "PUT", f"/datasets/{db}/kept", csv, CSV_TYPE),
        send(small_limits.url, "PUT", f"/datasets/{db}/kept", csv, CSV_TYPE, chunked=True),
        send(small_limits.url, "PUT", f"/datasets/{db}/kept?mode=append", csv, CSV_TYPE, chunked=True),
        send(small_limits.url, "PUT", f"/datasets/{db}/kept", documents, JSON_TYPE),
        send(small_limits.url, "PUT", f"/datasets/{db}/kept", documents, JSON_TYPE, chunked=True),
        send(small_limits.url, "PUT", f"/datasets/{db}/kept", None, CSV_TYPE, content_length=4097),
    ]
    for answer in attempts:
        assert_error_answer(answer, 413, "payload_too_large", method="PUT")
    assert sorted((d["a"], d["b"]) for d in mongo_db.kept.find()) == [(1, 2), (3, 4)]
    assert mongo_db.list_collection_names() == ["kept"]  # no temporary collection left behind
    # The limit is the dataset limit, not max_body_bytes: 4 KiB of CSV still loads.
    fits = b"a,b\n" + b"7,8\n" * 1000
    assert send(small_limits.url, "PUT", f"/datasets/{db}/kept", fits, CSV_TYPE, chunked=True).status == 200
    assert mongo_db.kept.count_documents({}) == 1000


# ---------------------------------------------------------------------------- schemathesis

FUZZ_PREFIX = "fuzz_"
# API.md's operations, as /openapi.json lists them; a test checks the live document has no others.
OPERATIONS = [(method.upper(), route) for route, methods in API_ROUTES.items() for method in sorted(methods)]


@schemathesis.check
def no_traceback(ctx, response, case):
    text = response.text if response.content else ""
    if TRACEBACK.search(text):
        raise AssertionError(f"a traceback in the body: {text[:500]}")
    return None


@pytest.fixture(scope="module")
def api_schema(service, bank_over_http, mongo_client):
    yield schemathesis.openapi.from_url(service.url + "/openapi.json", timeout=30)
    for db in mongo_client.list_database_names():
        if db.startswith(FUZZ_PREFIX):
            mongo_client.drop_database(db)


@pytest.fixture(scope="module")
def fuzz_before(service, bank_over_http, mongo_client):
    return snapshot(service, mongo_client)


def test_the_fuzz_run_covers_every_documented_operation(api_schema):
    listed = {(result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()}
    assert listed | {("GET", "/openapi.json")} == set(OPERATIONS)  # schemathesis skips its own source


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_schemathesis_no_5xx_and_documented_responses(api_schema, fuzz_before, method, path):
    """Positive and negative cases generated from the live document. The schemathesis pytest
    plugin (from_fixture) does not run under pytest 9, so each operation is one hypothesis test
    over operation.as_strategy(). Every path parameter gets FUZZ_PREFIX: the destructive routes
    (PUT/DELETE /datasets, DELETE /models) only ever reach names no real data has. Any URI a job
    body may carry is refused unless its host is the configured loopback MongoDB."""
    operation = api_schema[path][method.lower()]
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
    session = requests.Session()

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case):
        if case.path_parameters:
            case.path_parameters = {k: f"{FUZZ_PREFIX}{v}" for k, v in case.path_parameters.items()}
        response = case.call(session=session, timeout=60)
        case.validate_response(
            response,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
                negative_data_rejection,
                no_traceback,
            ],
        )

    try:
        fuzz()
    finally:
        session.close()


def test_after_the_fuzz_run_the_real_data_is_unchanged(service, mongo_client, fuzz_before):
    after = snapshot(service, mongo_client)
    assert after.health == {"status": "ok", "redis": "ok", "mongo": "ok"}
    assert after.models == fuzz_before.models and after.coefficients == fuzz_before.coefficients
    assert after.bank_checksum == fuzz_before.bank_checksum and after.bank_count == 45211
    assert after.jobs == fuzz_before.jobs
    real = {db: names for db, names in after.namespaces.items() if not db.startswith(FUZZ_PREFIX)}
    assert real == fuzz_before.namespaces
