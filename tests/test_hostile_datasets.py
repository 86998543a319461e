"""Hostile dataset routes: names in paths, and uploads past max_dataset_bytes.

The battery and its checks are helpers.hostile_battery's.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from helpers import (
    CSV_TYPE,
    JSON_TYPE,
    Case,
    Service,
    assert_error_answer,
    hostile_battery,
    send,
)

SCHEMA = "invalid_schema"
HEADER_130 = ",".join(f"c{i}" for i in range(130)).encode()


def named(id: str, path: str) -> Case:
    """A good CSV body to a path the service must refuse."""
    return Case(id, "PUT", path, 400, "invalid_request", b"a\n1\n", CSV_TYPE)


def csv(id: str, body: bytes) -> Case:
    return Case(id, "PUT", "/datasets/hostile/csv", 400, "invalid_dataset", body, CSV_TYPE)


def documents(id: str, body: bytes) -> Case:
    return Case(id, "PUT", "/datasets/hostile/json", 400, "invalid_dataset", body, JSON_TYPE)


CASES = [
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
    # --- issue 11: names in bytes, reserved prefixes, long query values, headers, rows, arrays ---
    Case("dataset-db-63-e-acute", "GET", "/datasets/" + "%C3%A9" * 63 + "/x", 400, "invalid_request"),
    named("dataset-put-db-32-e-acute", "/datasets/" + "%C3%A9" * 32 + "/x"),
    named("dataset-put-loading-prefix", "/datasets/hostile/__loading_1_x_mine"),
    named("dataset-put-writing-prefix", "/datasets/e2e/__writing_67a0b1c2_deadbeef_bank?mode=append"),
    Case("dataset-delete-writing-prefix", "DELETE", "/datasets/e2e/__writing_67a0b1c2_x", 400, "invalid_request"),
    Case("dataset-get-loading-prefix", "GET", "/datasets/e2e/__loading_", 400, "invalid_request"),
    named("dataset-put-mode-20kb", "/datasets/hostile/m?mode=" + "m" * 20_000),
    Case("dataset-schema-label-20kb", "GET", "/datasets/e2e/bank/schema?label=" + "l" * 20_000, 400, "invalid_request"),
    Case("dataset-schema-label-257", "GET", "/datasets/e2e/bank/schema?label=" + "l" * 257, 400, "invalid_request"),
    Case("dataset-schema-bad-task", "GET", "/datasets/e2e/bank/schema?label=balance&task=%00x", 400, "invalid_request"),
    Case("dataset-schema-empty-task", "GET", "/datasets/e2e/bank/schema?label=balance&task=", 400, "invalid_request"),
    Case("dataset-schema-text-regressed", "GET", "/datasets/e2e/bank/schema?label=y&task=regression", 400, SCHEMA),
    Case(
        "dataset-schema-balance-as-classes",
        "GET",
        "/datasets/e2e/bank/schema?label=balance&task=classification",
        400,
        SCHEMA,
    ),
    csv("dataset-csv-header-cell-131073", b"h" * 131_073 + b",b\n1,2\n"),
    csv("dataset-csv-header-70000", b"a" * 70_000 + b"\n1\n"),
    csv("dataset-csv-row-over-16-mib", HEADER_130 + b"\n" + b",".join([b"x" * 130_000] * 130) + b"\n"),
    csv("dataset-csv-cell-over-field-limit", b"a,b\n" + b"x" * 131_073 + b",1\n"),
    csv("dataset-csv-5000-digits", b"a\n" + b"9" * 5000 + b'\n"open'),
    documents("dataset-json-dollar-in-array", b'[{"a": [1, {"$where": "sleep(1000)"}]}]'),
    documents("dataset-json-dot-in-nested-array", b'[{"a": [[{"b.c": 1}]]}]'),
    documents("dataset-json-dollar-deep-in-arrays", b'[{"a": {"b": [[[{"$gt": 1}]]]}}]'),
    documents("dataset-json-1001-fields", json.dumps([{f"f{i}": i for i in range(1001)}]).encode()),
    Case("dataset-unknown-get", "GET", "/datasets/hostile/never_created", 404, "not_found"),
    Case("dataset-unknown-delete", "DELETE", "/datasets/hostile/never_created", 404, "not_found"),
]

(
    test_a_hostile_request_is_refused_with_the_error_shape,
    test_the_battery_has_enough_cases,
    test_after_the_battery_nothing_changed,
) = hostile_battery(CASES, 45)


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


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def sampled_put(service, path: str, body: bytes) -> tuple[requests.Response, float]:
    """The answer to a PUT of body, and how far the web server's RSS rose above where it was
    while the request ran (sampled from /proc every 10 ms)."""
    pid = service.children["web"].pid
    before, peak, done = rss_mb(pid), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        answer = service.request("PUT", path, data=body, headers=JSON_TYPE)
    finally:
        done.set()
        sampler.join()
    return answer, peak[0] - before


def test_a_large_json_upload_is_read_a_batch_at_a_time(service, mongo_db):
    """24 MB of records holding many small objects, whose last item is refused: read whole, the
    body made some 25x its size in Python objects before the 400 (84 MB of '[1,{},{},...]' peaked
    at 2.86 GB). Streamed, what the server holds is a batch of records (DATASET_BATCH_BYTES of
    text), whatever the body's size; the refusal still names the item, and nothing is loaded."""
    record = b'{"v":[' + b",".join([b"{}"] * 3000) + b"]}"
    count = 24 * 1024 * 1024 // len(record)
    body = b"[" + b",\n".join([record] * count) + b',\n{"$bad": 1}]'
    answer, growth = sampled_put(service, f"/datasets/{mongo_db.name}/big", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith(f"item {count}: field name '$bad' may not start with '$'")
    assert "big" not in mongo_db.list_collection_names()
    print(f"24 MB JSON upload: web server RSS +{growth:.0f} MB")
    assert growth < 200, f"the web server grew by {growth:.0f} MB for a 24 MB body"


def test_a_json_upload_loads_every_record(service, mongo_db):
    records = [{"i": i, "name": f"n{i}", "tags": [i, {"k": 'x\\"]} ,{'}]} for i in range(12_001)]
    answer = service.request(
        "PUT", f"/datasets/{mongo_db.name}/all", data=json.dumps(records, indent=1), headers=JSON_TYPE
    )
    assert answer.status_code == 200 and answer.json()["inserted"] == 12_001, answer.text
    assert sorted(mongo_db.all.find({}, {"_id": 0}), key=lambda d: d["i"]) == records
