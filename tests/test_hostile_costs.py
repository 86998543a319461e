"""Hostile requests that cost the server far more than the client (issue 11, findings 1-3):
each refused with the error shape like every battery's, and, sent one after another while
/health is polled, each answered within 2 s with /health answering throughout.

The battery and its checks are helpers.hostile_battery's.
"""

from __future__ import annotations

import threading
import time

import requests

from helpers import CSV_TYPE, MODEL, RECORD, Case, check_refused, deep, hostile_battery, job, post, predict

LONG_DIGITS = "1" * 15_000 + "x"  # a backtracking parse of it took 4.8 s and held the GIL
WIDE_HEADER = ",".join(f"c{i}" for i in range(40_000)).encode()  # its duplicate check took 14 s
NESTED_59 = deep(59, b"[", b"]")  # 2 million Python lists in 4 MB: 190 MB and 2-3 s to parse (issue 25, 3.7)


def csv_put(id: str, body: bytes) -> Case:
    return Case(id, "PUT", "/datasets/hostile/costly", 400, "invalid_dataset", body, CSV_TYPE)


CASES = [
    # --- numeric strings (finding 1) ------------------------------------------------------------
    post("cost-numeric-string-15000-digits", "/predict/", predict(record={**RECORD, "age": LONG_DIGITS})),
    post("cost-numeric-string-100000-digits", "/predict/", predict(record={**RECORD, "balance": "9" * 100_000 + "-"})),
    post("cost-numeric-string-decimal", "/predict/", predict(record={**RECORD, "age": "1." + "1" * 15_000 + "e"})),
    post("cost-numeric-string-spaces", "/predict/", predict(record={**RECORD, "age": " " * 15_000 + "1 x"})),
    post(
        "cost-numeric-strings-in-a-batch",
        "/predict/",
        {"modelkey": MODEL, "records": [{**RECORD, "duration": LONG_DIGITS}] * 200},
        code="invalid_record",
    ),
    # --- schema errors by the hundred thousand (finding 2) --------------------------------------
    post("cost-records-of-ones", "/predict/", {"modelkey": MODEL, "records": [1] * 400_000}),
    post("cost-records-of-strings", "/predict/", {"modelkey": MODEL, "records": ["x"] * 300_000}),
    post("cost-records-of-arrays", "/predict/", {"modelkey": MODEL, "records": [[]] * 400_000}),
    post("cost-arrays-nested-59-deep", "/predict/", b'{"records": [' + b",".join([NESTED_59] * 34_900) + b"]}"),
    post("cost-features-of-numbers", "/train/", job(schema={"label": {"key": "y"}, "features": [1] * 9_000})),
    # --- CSV headers (finding 3) -----------------------------------------------------------------
    csv_put("cost-csv-40000-columns", WIDE_HEADER + b"\n1\n"),
    csv_put("cost-csv-1001-columns", ",".join(f"c{i}" for i in range(1001)).encode() + b"\n" + b"1," * 1000 + b"1\n"),
    csv_put("cost-csv-header-without-end", b"h" * 4_000_000),
    csv_put("cost-csv-duplicate-columns", b",".join([b"a"] * 1000) + b"\n" + b"1," * 999 + b"1\n"),
]


def test_costly_requests_answer_within_2_s_while_health_answers(service, fill, before):
    """Each case alone, timed; a thread asks /health every 0.2 s meanwhile, and every one of
    its answers must be a 200 within 2 s too."""
    stop = threading.Event()
    health: list[tuple[int, float]] = []

    def poll() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                started = time.monotonic()
                status = session.get(service.url + "/health", timeout=30).status_code
                health.append((status, time.monotonic() - started))
                stop.wait(0.2)

    poller = threading.Thread(target=poll)
    poller.start()
    slow = {}
    try:
        for case in CASES:
            started = time.monotonic()
            check_refused(service, fill, case)
            seconds = time.monotonic() - started
            if seconds > 2.0:
                slow[case.id] = round(seconds, 2)
    finally:
        stop.set()
        poller.join(60)
    assert slow == {}, f"answered in more than 2 s: {slow}"
    assert health and all(status == 200 for status, _ in health), health
    assert max(seconds for _, seconds in health) <= 2.0, sorted(s for _, s in health)[-5:]


(
    test_a_hostile_request_is_refused_with_the_error_shape,
    test_the_battery_has_enough_cases,
    test_after_the_battery_nothing_changed,
) = hostile_battery(CASES, 13)
