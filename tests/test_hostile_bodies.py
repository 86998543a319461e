"""Hostile bodies: JSON syntax, bodies too large (413) and content types (415).

The battery and its checks are helpers.hostile_battery's.
"""

from __future__ import annotations

import json

from helpers import (
    BIG_RECORDS,
    CSV_TYPE,
    JSON_TYPE,
    MAX_BODY,
    MAX_DATASET,
    Case,
    cut,
    deep,
    hostile_battery,
    job,
    post,
    predict,
    predictall,
)

SURROGATE = "e2e.b\\ud800nk"  # as JSON text: the escape of a lone surrogate


def surrogate_put(id: str, body: bytes) -> Case:
    return Case(id, "PUT", "/datasets/hostile/surrogates", 400, "invalid_json", body, JSON_TYPE)


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
    # --- lone surrogates (issue 11, finding 6): valid JSON, no UTF-8 form --------------------------
    post("surrogate-train-input", "/train/", SURROGATE.join(json.dumps(job()).split("e2e.bank")).encode()),
    post("surrogate-predictall-output", "/predictall/", json.dumps(predictall()).replace(".out", ".\\udfff").encode()),
    post("surrogate-predict-record-key", "/predict/", b'{"modelkey": "x", "record": {"\\ud800": 1}}'),
    post("surrogate-predict-value", "/predict/", json.dumps(predict()).replace("married", "\\udbff").encode()),
    surrogate_put("surrogate-dataset-value", b'[{"a": "\\ud800"}]'),
    surrogate_put("surrogate-dataset-key", b'[{"\\udc00x": 1}]'),
    surrogate_put("surrogate-dataset-nested", b'[{"a": [{"b": "\\uDABC"}]}]'),
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
]

(
    test_a_hostile_request_is_refused_with_the_error_shape,
    test_the_battery_has_enough_cases,
    test_after_the_battery_nothing_changed,
) = hostile_battery(CASES, 45)
