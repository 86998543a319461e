"""Hostile documents: job documents, predict and predictall bodies, system databases and foreign
hosts, unknown jobs, models and algorithms.

The battery and its checks are helpers.hostile_battery's.
"""

from __future__ import annotations

import json
import os
import time

from helpers import (
    CANARY,
    E2E_BANK,
    JOB_ID_404,
    JSON_TYPE,
    MODEL,
    MONGO,
    RECORD,
    Case,
    assert_error_answer,
    first_feature,
    hostile_battery,
    job,
    job_schema,
    post,
    predict,
    predictall,
    send,
)

CASES = [
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
    post("predict-unknown-field", "/predict/", predict(explained=True), code="invalid_request"),
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
    # --- issue 11: URIs, names, caps, keys, same targets, hosts ---------------------------------
    post("job-input-bad-second-seed", "/train/", job(inputCollection="mongodb://[::1]:27017,[zz]:27017/e2e.bank")),
    post("job-input-unbalanced-seed", "/train/", job(inputCollection="mongodb://[::1],x]/e2e.bank")),
    post("job-output-bad-seed", "/train/", job(outputCollection=f"mongodb://{MONGO},[::1/e2e.out")),
    post("predictall-input-bad-seed", "/predictall/", predictall(inputCollection="mongodb://[zz]/e2e.bank")),
    post("job-input-db-63-e-acute", "/train/", job(inputCollection="\u00e9" * 63 + ".bank"), code="invalid_request"),
    post("predictall-output-db-32-e-acute", "/predictall/", predictall(outputCollection="\u00e9" * 32 + ".o")),
    post("job-input-loading-prefix", "/train/", job(inputCollection="e2e.__loading_1_x_bank"), code="invalid_request"),
    post("predictall-output-writing-prefix", "/predictall/", predictall(outputCollection="e2e.__writing_x")),
    post("job-fits-over-the-cap", "/train/", job(regParam=[0.01 * i for i in range(1, 35)]), code="invalid_request"),
    post("job-fits-grid-of-two-lists", "/train/", job(regParam=[0.1] * 10, elasticNetParam=[0.5] * 10, numFolds=2)),
    post("job-iterations-over-the-cap", "/train/", job(iterations=1001), code="invalid_request"),
    post("job-feature-width-over-the-cap", "/train/", first_feature(values={f"v{i}": i for i in range(10_001)})),
    post("job-feature-key-comma", "/train/", first_feature(key="age,balance"), code="invalid_request"),
    post("job-feature-key-backtick", "/train/", first_feature(key="age`) or (`x"), code="invalid_request"),
    post("job-label-key-comma", "/train/", job_schema(label={"key": "y,age"}), code="invalid_request"),
    post(
        "predictall-output-is-input-as-uri",
        "/predictall/",
        predictall(outputCollection=f"mongodb://{MONGO}/e2e.bank?w=1"),
        code="invalid_request",
    ),
    post(
        "predictall-input-is-output-as-uri",
        "/predictall/",
        predictall(inputCollection=f"mongodb://{MONGO}/hostile.out", outputCollection="hostile.out"),
        code="invalid_request",
    ),
    post("predictall-output-w0", "/predictall/", predictall(outputCollection=f"mongodb://{MONGO}/e2e.o?w=0")),
    post("job-input-w0", "/train/", job(inputCollection=f"mongodb://{MONGO}/e2e.bank?w=0"), code="forbidden_target"),
    post("train-rebound-host", "/train/", job(), code="invalid_host", headers={"Host": "rebind.attacker.example"}),
    post("predict-rebound-host", "/predict/", predict(), code="invalid_host", headers={"Host": "127.0.0.1.nip.io"}),
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
]

(
    test_a_hostile_request_is_refused_with_the_error_shape,
    test_the_battery_has_enough_cases,
    test_after_the_battery_nothing_changed,
) = hostile_battery(CASES, 125)


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_submissions_with_ever_new_uris_leave_no_clients_behind(service):
    """Each distinct URI a job names must not leave a MongoClient (and its monitor threads) in
    the web process: a stream of submissions would exhaust it. The web process keeps at most 8
    clients (MongoClients' size), each with its monitor threads (about 3 against one server):
    once that cache is full, 30 more URIs add no thread."""
    web = service.children["web"].pid
    mongo = service.params["mongodb_uri"].split("//", 1)[1].split("/", 1)[0]
    baseline = threads_of(web)

    def submit(first: int, count: int) -> int:
        for i in range(first, first + count):
            spec = f"mongodb://{mongo}/hostile.never_created?authSource=hostile{i}"
            answer = send(service.url, "POST", "/train/", json.dumps(job(inputCollection=spec)).encode(), JSON_TYPE)
            assert_error_answer(answer, 404, "not_found", method="POST")
        deadline, last = time.monotonic() + 30, threads_of(web)  # closed clients end their threads late
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = threads_of(web)
            if now == last:
                return now
            last = now
        return last

    full = submit(0, 30)
    assert full <= baseline + 8 * 4, f"{baseline} threads before, {full} after 30 URIs"
    after = submit(30, 30)
    assert after <= full + 2, f"{full} threads after 30 URIs, {after} after 60 URIs"
