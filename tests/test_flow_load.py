"""Load: 16 concurrent clients for 30 s against the real service, mixing online predictions (single
records and micro-batches of 50 from the bank data) with status polls of the trained job.

Correctness under load is asserted (every answer 200, every prediction well-formed, no 5xx, no
connection error); throughput and latency are only reported (pytest -s prints them, and they are
recorded as properties in the JUnit report). No timed assertions.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict

import requests

CLIENTS = 16
DURATION = 30.0
BATCH = 50


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def test_sixteen_clients_for_thirty_seconds(service, bank_model, bank_sample, mongo_client, record_property):
    db, collection = bank_sample.split(".")
    records = [
        {k: v for k, v in doc.items() if k not in ("_id", "y")}
        for doc in mongo_client[db][collection].find({"job": {"$ne": "killhim"}}, limit=2000)
    ]
    assert len(records) == 2000
    url = service.url
    deadline = time.monotonic() + DURATION
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        rng = random.Random(number)
        seen: dict[str, list[float]] = defaultdict(list)
        codes: Counter = Counter()
        problems: list[str] = []
        with requests.Session() as session:
            start.wait()
            while time.monotonic() < deadline:
                roll = rng.random()
                began = time.perf_counter()
                try:
                    if roll < 0.6:
                        kind = "predict-1"
                        response = session.post(
                            f"{url}/predict/", json={"modelkey": bank_model, "record": rng.choice(records)}, timeout=60
                        )
                        ok = response.status_code == 200 and response.json()["prediction"] in (0, 1)
                    elif roll < 0.75:
                        kind = f"predict-{BATCH}"
                        batch = rng.sample(records, BATCH)
                        response = session.post(
                            f"{url}/predict/", json={"modelkey": bank_model, "records": batch}, timeout=60
                        )
                        ok = response.status_code == 200 and len(response.json()["predictions"]) == BATCH
                    else:
                        kind = "status"
                        response = session.get(f"{url}/training/status/{bank_model}", timeout=60)
                        ok = response.status_code == 200 and response.json()["status"] == "COMPLETED"
                except (requests.RequestException, ValueError, KeyError) as exc:
                    problems.append(f"{type(exc).__name__}: {exc}")
                    continue
                seen[kind].append(time.perf_counter() - began)
                codes[response.status_code] += 1
                if not ok:
                    problems.append(f"{kind}: {response.status_code} {response.text[:200]}")
        with lock:
            for kind, values in seen.items():
                latencies[kind].extend(values)
            statuses.update(codes)
            errors.extend(problems)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DURATION + 120)
    elapsed = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads)

    total = sum(len(v) for v in latencies.values())
    lines = [f"load: {CLIENTS} clients, {elapsed:.1f} s, {total} requests, {total / elapsed:.1f} req/s"]
    record_property("requests", total)
    record_property("requests_per_second", round(total / elapsed, 1))
    for kind in sorted(latencies):
        values = latencies[kind]
        p50, p99 = percentile(values, 0.50) * 1000, percentile(values, 0.99) * 1000
        rate = len(values) / elapsed
        lines.append(f"  {kind:10s} {len(values):6d} requests {rate:7.1f}/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
        record_property(f"{kind}_p50_ms", round(p50, 1))
        record_property(f"{kind}_p99_ms", round(p99, 1))
    print("\n" + "\n".join(lines))

    assert errors == [], f"{len(errors)} errors, first: {errors[:5]}"
    assert not [code for code in statuses if code >= 500], statuses
    assert set(statuses) == {200}, statuses
    assert all(latencies[kind] for kind in ("predict-1", f"predict-{BATCH}", "status")), "a request kind never ran"
    assert service.get("/health").json()["status"] == "ok"
