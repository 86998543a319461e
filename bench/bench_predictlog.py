"""What the prediction log costs online prediction: POST /predict/ with one bank record against two
real web servers (CherryPy + TransLogger + Flask, modelserver.py) on the same Redis, MongoDB and
model, one with the setting ``prediction_log`` on (every answer queued for the writer thread, which
inserts it into MongoDB in batches) and one with it off. The loads alternate, off then on, for
--rounds rounds, so drift of a shared machine falls on both; the figure is the median requests/s of
each, and the ratio on / off (goal >= 0.9: the log costs at most 10 % of the throughput). The log
server's /metrics after the loads shows what was written and dropped, and the collection's count
what reached MongoDB.

    .venv/bin/python bench/bench_predictlog.py [--quick] [--duration S] [--rounds N]
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import harness
import loadgen
import requests
from harness import JOB, Bench, arg_parser, bank_documents, encode_valid, fit_and_store, parse_args

from dataparser import DataParser

COLLECTION = "bench.predictions"


def throughput(url: str, body: bytes, args: Any) -> float:
    result = loadgen.run(url, body, connections=args.connections, processes=args.processes, duration=args.duration)
    if result.errors or set(result.statuses) != {200}:
        raise RuntimeError(f"{url}: {result.errors} errors, statuses {dict(result.statuses)}")
    return result.per_second


def log_counts(url: str) -> dict[str, float]:
    """The prediction log's counters on a server's /metrics (written, dropped, queue depth)."""
    counts: dict[str, float] = {}
    for line in requests.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith("prediction_service_prediction_log_"):
            name, _, value = line.rpartition(" ")
            name = name.removeprefix("prediction_service_prediction_log_").split("{")[0]
            counts[name] = counts.get(name, 0.0) + float(value)
    return counts


def settled(url: str, timeout: float = 120.0) -> dict[str, float]:
    """The log's counters once its queue is empty (every answer written or counted lost)."""
    deadline = time.monotonic() + timeout
    counts = log_counts(url)
    while counts.get("queue_depth", 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        counts = log_counts(url)
    time.sleep(0.5)  # the last batch's insert, taken off the queue, may still be on its way
    return log_counts(url)


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds of each timed load (default 10; --quick: 3)")
    parser.add_argument("--rounds", type=int, help="alternating off/on rounds (default 4; --quick: 2)")
    parser.add_argument("--connections", type=int, help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--processes", type=int, help="load generator processes (default 2)")
    normal = {"duration": 10.0, "rounds": 4, "connections": 16, "processes": 2}
    args = parse_args(parser, normal, {"duration": 3.0, "rounds": 2}, argv)
    with Bench("predictlog", args) as bench:
        bench.start_stores()
        docs = bank_documents(bench)
        key = fit_and_store(bench, bench.params(), JOB, docs)["model_key"]
        on = bench.start_service(bench.params(prediction_log=True, prediction_log_collection=COLLECTION), worker=False)
        off = bench.start_service(bench.params(prediction_log=False), worker=False)
        _, _, kept = encode_valid(DataParser(JOB["schema"]), docs, labels=False)
        record = {k: v for k, v in docs[kept[0]].items() if k != JOB["schema"]["label"]["key"]}
        body = json.dumps({"modelkey": key, "record": record}).encode()
        for service in (on, off):
            answer = requests.post(service.url + "/predict/", data=body, headers={"Content-Type": "application/json"})
            if answer.status_code != 200:
                raise RuntimeError(f"{service.url}/predict/: {answer.status_code} {answer.text[:300]}")

        bench.section(
            f"single records, {args.connections} connections, {args.rounds} x (off, on) of {args.duration:g}s"
        )
        runs: dict[str, list[float]] = {"off": [], "on": []}
        for round_ in range(args.rounds):
            for name, service in (("off", off), ("on", on)):
                runs[name].append(throughput(service.url + "/predict/", body, args))
                bench.say(f"round {round_ + 1}: prediction log {name}: {runs[name][-1]:,.0f} req/s")
        bench.result["runs"] = runs
        bench.figure("log_off_requests_per_s", statistics.median(runs["off"]), "req/s", "median")
        bench.figure("log_on_requests_per_s", statistics.median(runs["on"]), "req/s", "median")
        bench.ratio("log on / off requests per s", "log_on_requests_per_s", "log_off_requests_per_s", ">= 0.9")
        counts = settled(on.url)
        bench.figure("log_written", counts.get("written_total", 0), "documents", "by /metrics of the logging server")
        bench.figure("log_dropped", counts.get("dropped_total", 0), "documents", "queue full, write failed...")
        bench.figure("log_documents_in_mongodb", bench.collection(COLLECTION).count_documents({}), "documents")
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
