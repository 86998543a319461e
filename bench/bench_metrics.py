"""What /metrics costs online prediction: POST /predict/ with one bank record against two real web
servers (CherryPy + TransLogger + Flask, modelserver.py) on the same Redis and model, one with the
setting ``metrics`` on (every request counted and timed, every prediction counted) and one with it
off (no hook installed). The loads alternate, off then on, for --rounds rounds, so drift of a
shared machine falls on both; the figure is the median requests/s of each, and the ratio on / off
(goal >= 0.95: the metrics cost at most 5 % of the throughput). A scrape of /metrics after the
loads shows the counted requests.

    .venv/bin/python bench/bench_metrics.py [--quick] [--duration S] [--rounds N]
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import harness
import loadgen
import requests
from harness import JOB, Bench, arg_parser, bank_documents, encode_valid, fit_and_store, parse_args

from dataparser import DataParser


def throughput(bench: Bench, url: str, body: bytes, args: Any) -> float:
    result = loadgen.run(url, body, connections=args.connections, processes=args.processes, duration=args.duration)
    if result.errors or set(result.statuses) != {200}:
        raise RuntimeError(f"{url}: {result.errors} errors, statuses {dict(result.statuses)}")
    return result.per_second


def counted(url: str) -> float:
    """The /predict/ requests a server's /metrics counted."""
    text = requests.get(url + "/metrics", timeout=30).text
    prefix = 'prediction_service_http_requests_total{method="POST",route="/predict/",status="200"} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds of each timed load (default 10; --quick: 3)")
    parser.add_argument("--rounds", type=int, help="alternating off/on rounds (default 4; --quick: 2)")
    parser.add_argument("--connections", type=int, help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--processes", type=int, help="load generator processes (default 2)")
    normal = {"duration": 10.0, "rounds": 4, "connections": 16, "processes": 2}
    args = parse_args(parser, normal, {"duration": 3.0, "rounds": 2}, argv)
    with Bench("metrics", args) as bench:
        bench.start_stores()
        docs = bank_documents(bench)
        key = fit_and_store(bench, bench.params(), JOB, docs)["model_key"]
        on = bench.start_service(bench.params(metrics=True), worker=False)
        off = bench.start_service(bench.params(metrics=False), worker=False)
        _, _, kept = encode_valid(DataParser(JOB["schema"]), docs, labels=False)
        record = {k: v for k, v in docs[kept[0]].items() if k != JOB["schema"]["label"]["key"]}
        body = json.dumps({"modelkey": key, "record": record}).encode()
        for service in (on, off):
            answer = requests.post(service.url + "/predict/", data=body, headers={"Content-Type": "application/json"})
            if answer.status_code != 200:
                raise RuntimeError(f"{service.url}/predict/: {answer.status_code} {answer.text[:300]}")
        if requests.get(off.url + "/metrics", timeout=30).status_code != 404:
            raise RuntimeError("the server with metrics off still serves /metrics")

        bench.section(
            f"single records, {args.connections} connections, {args.rounds} x (off, on) of {args.duration:g}s"
        )
        runs: dict[str, list[float]] = {"off": [], "on": []}
        for round_ in range(args.rounds):
            for name, service in (("off", off), ("on", on)):
                runs[name].append(throughput(bench, service.url + "/predict/", body, args))
                bench.say(f"round {round_ + 1}: metrics {name}: {runs[name][-1]:,.0f} req/s")
        bench.result["runs"] = runs
        bench.figure("metrics_off_requests_per_s", statistics.median(runs["off"]), "req/s", "median")
        bench.figure("metrics_on_requests_per_s", statistics.median(runs["on"]), "req/s", "median")
        bench.ratio("metrics on / off requests per s", "metrics_on_requests_per_s", "metrics_off_requests_per_s",
                    ">= 0.95")  # fmt: skip
        bench.figure("predict_requests_counted", counted(on.url), "", "by /metrics of the server with metrics on")
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
