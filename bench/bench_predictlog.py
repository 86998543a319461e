"""What the prediction log costs online prediction: POST /predict/ with one bank record against two
real web servers (CherryPy + TransLogger + Flask, modelserver.py) on the same Redis, MongoDB and
model, one with the setting ``prediction_log`` on (every answer queued for the writer thread, which
inserts it into MongoDB in batches) and one with it off. The loads alternate, off then on, for
--rounds rounds, so drift of a shared machine falls on both; the figure is the median requests/s of
each, and the ratio on / off (goal >= 0.9: the log costs at most 10 % of the throughput). The log
server's /metrics after the loads shows what was written and dropped, and the collection's count
what reached MongoDB.

A third arm, "shadow": a third server with the log on, whose requests go to a named model (the same
fitted model stored as versions 1 and 2 under two keys) with ``PUT /registry/<name>/traffic``
``{"alias": "candidate", "mode": "shadow"}``: production answers, and the candidate scores each
request again in the shadow's worker thread, its answer logged too. Ratio shadow / off (goal >=
0.8), and the shadow's counters (scored, dropped, failed).

    .venv/bin/python bench/bench_predictlog.py [--quick] [--duration S] [--rounds N]
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from typing import Any

import harness
import loadgen
import requests
from harness import JOB, Bench, arg_parser, bank_documents, encode_valid, fit_and_store, parse_args

from dataparser import DataParser

COLLECTION = "bench.predictions"
SHADOW_COLLECTION = "bench.shadow_predictions"


def throughput(url: str, body: bytes, args: Any) -> float:
    result = loadgen.run(url, body, connections=args.connections, processes=args.processes, duration=args.duration)
    if result.errors or set(result.statuses) != {200}:
        raise RuntimeError(f"{url}: {result.errors} errors, statuses {dict(result.statuses)}")
    return result.per_second


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process has used so far."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mongodb_pid() -> int:
    """The MongoDB server this run started (SecantusDB): whose CPU the log's inserts cost."""
    found = [pid for pid, command in harness.own_children().items() if "secantus" in command.lower()]
    if len(found) != 1:
        raise RuntimeError(f"expected one SecantusDB process among this run's children, found {found}")
    return found[0]


def log_counts(url: str, prefix: str = "prediction_service_prediction_log_") -> dict[str, float]:
    """The prediction log's counters on a server's /metrics (written, dropped, queue depth), or
    the shadow's with prefix prediction_service_shadow_."""
    counts: dict[str, float] = {}
    for line in requests.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(prefix):
            name, _, value = line.rpartition(" ")
            name, _, labels = name.removeprefix(prefix).partition("{")
            counts[name] = counts.get(name, 0.0) + float(value)
            if labels.startswith('reason="'):  # e.g. dropped_total{reason="queue_full"}
                reason = f"{name}:{labels.split(chr(34))[1]}"
                counts[reason] = counts.get(reason, 0.0) + float(value)
    return counts


def settled(url: str, timeout: float = 120.0, prefix: str = "prediction_service_prediction_log_") -> dict[str, float]:
    """The log's (or the shadow's) counters once its queue is empty (every answer written or
    counted lost)."""
    deadline = time.monotonic() + timeout
    counts = log_counts(url, prefix)
    while counts.get("queue_depth", 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        counts = log_counts(url, prefix)
    time.sleep(0.5)  # the last batch's insert, taken off the queue, may still be on its way
    return log_counts(url, prefix)


def shadowed_name(bench: Bench, service: Any, model: dict[str, Any]) -> str:
    """The fitted model stored again as versions 1 (production) and 2 (candidate) of a name, the
    candidate shadowing production through the service's PUT /registry/<name>/traffic."""
    from predictionservice.modelstore import ModelStore
    from predictionservice.redisclient import connect
    from predictionservice.registry import Registry

    params = bench.params()
    registry = Registry(ModelStore(connect(params["redis_url"], params["models_db"])))
    name = f"bench-shadow-{uuid.uuid4().hex[:6]}"
    for _ in range(2):
        registry.add_version(name, uuid.uuid4().hex, model)
    put = requests.put(f"{service.url}/registry/{name}/traffic", json={"alias": "candidate", "mode": "shadow"})
    if put.status_code != 200:
        raise RuntimeError(f"PUT /registry/{name}/traffic: {put.status_code} {put.text[:300]}")
    return name


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
        model = fit_and_store(bench, bench.params(), JOB, docs)
        key = model["model_key"]
        on = bench.start_service(bench.params(prediction_log=True, prediction_log_collection=COLLECTION), worker=False)
        off = bench.start_service(bench.params(prediction_log=False), worker=False)
        shadow_params = bench.params(prediction_log=True, prediction_log_collection=SHADOW_COLLECTION)
        shadow = bench.start_service(shadow_params, worker=False, name="shadow")
        _, _, kept = encode_valid(DataParser(JOB["schema"]), docs, labels=False)
        record = {k: v for k, v in docs[kept[0]].items() if k != JOB["schema"]["label"]["key"]}
        body = json.dumps({"modelkey": key, "record": record}).encode()
        named_body = json.dumps({"modelkey": shadowed_name(bench, shadow, model), "record": record}).encode()
        arms = (("off", off, body), ("on", on, body), ("shadow", shadow, named_body))
        for _, service, sent in arms:
            answer = requests.post(service.url + "/predict/", data=sent, headers={"Content-Type": "application/json"})
            if answer.status_code != 200:
                raise RuntimeError(f"{service.url}/predict/: {answer.status_code} {answer.text[:300]}")

        bench.section(
            f"single records, {args.connections} connections, {args.rounds} x (off, on, shadow) of {args.duration:g}s"
        )
        runs: dict[str, list[float]] = {"off": [], "on": [], "shadow": []}
        mongo, cores = mongodb_pid(), {"off": [], "on": [], "shadow": []}  # the cores MongoDB used during each load
        for round_ in range(args.rounds):
            for name, service, sent in arms:
                cpu, started = cpu_seconds(mongo), time.monotonic()
                runs[name].append(throughput(service.url + "/predict/", sent, args))
                cores[name].append((cpu_seconds(mongo) - cpu) / (time.monotonic() - started))
                bench.say(
                    f"round {round_ + 1}: prediction log {name}: {runs[name][-1]:,.0f} req/s "
                    f"(MongoDB busy {cores[name][-1]:.2f} cores)"
                )
        bench.result["runs"], bench.result["mongodb_cores"] = runs, cores
        machine = os.cpu_count() or 1
        on_cores = statistics.median(cores["on"])
        bench.figure("mongodb_cores_during_on", on_cores, "cores", f"of this machine's {machine}: the log's inserts")
        bench.figure(
            "on_off_ratio_if_mongodb_is_the_bound", (machine - on_cores) / machine, "",
            "the cores left to the web server and the load generator, as a share of all: what the log's "
            "inserts leave when MongoDB runs on this machine",
        )  # fmt: skip
        bench.figure("log_off_requests_per_s", statistics.median(runs["off"]), "req/s", "median")
        bench.figure("log_on_requests_per_s", statistics.median(runs["on"]), "req/s", "median")
        bench.figure("shadow_requests_per_s", statistics.median(runs["shadow"]), "req/s", "median, log on + shadow")
        bench.ratio("log on / off requests per s", "log_on_requests_per_s", "log_off_requests_per_s", ">= 0.9")
        bench.ratio("shadow / off requests per s", "shadow_requests_per_s", "log_off_requests_per_s", ">= 0.8")
        counts = settled(on.url)
        bench.figure(
            "log_written", int(counts.get("written_total", 0)), "documents", "by /metrics of the logging server"
        )
        bench.figure("log_dropped", counts.get("dropped_total", 0), "documents", "queue full, write failed...")
        bench.figure("log_documents_in_mongodb", bench.collection(COLLECTION).count_documents({}), "documents")
        shadowed = settled(shadow.url, prefix="prediction_service_shadow_")
        for count in ("scored", "dropped", "failed"):
            bench.figure(
                f"shadow_{count}", int(shadowed.get(f"{count}_total", 0)), "requests", "the shadow server's /metrics"
            )
        logged = settled(shadow.url)
        bench.figure(
            "shadow_server_log_written", int(logged.get("written_total", 0)), "documents", "answers and shadows"
        )
        bench.figure("shadow_server_log_dropped", int(logged.get("dropped_total", 0)), "documents")
        for reason in ("queue_full", "write_failed"):
            bench.figure(
                f"shadow_server_log_dropped_{reason}", int(logged.get(f"dropped_total:{reason}", 0)), "documents"
            )
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
