"""Scale-out on one 2-core machine, side by side in one run.

(a) Spark: job.json trained (POST /train/ to COMPLETED) and bank-full scored by /predictall/ with
    the worker's Spark on local[2], then with the same worker on a standalone cluster started from
    the wheel (a master and a worker of 2 cores, localservers/sparkcluster.py). Each is warmed by
    one untimed run; the ratio cluster / local.
(b) Web: POST /predict/ with one record over 16 connections through HAProxy (deploy/haproxy.cfg)
    to one web replica, then to two; the ratio two / one.

    .venv/bin/python bench/bench_scaleout.py [--quick] [--duration S]
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import harness
import loadgen
from bench_predict import check
from harness import BANK, JOB, ROOT, Api, Bench, arg_parser, bank_documents, fit_and_store, parse_args, warm_then_timed

from localservers import embedded
from localservers.sparkcluster import start_cluster

RECORD_FIELDS = [f["key"] for f in JOB["schema"]["features"]]


def spark_runs(bench: Bench, label: str, params: dict[str, Any], args: Any) -> None:
    """Training and batch scoring on the given Spark master, each warmed once."""
    service = bench.start_service(params)
    api = Api(service)
    job = {**JOB, "inputCollection": BANK}
    train = warm_then_timed(bench, api, "/train/", job, args.repeat)
    bench.figure(f"{label}_train_seconds", train["seconds"], "s", f"median of {train['times']}")
    bench.figure(f"{label}_auc", train["status"]["metrics"]["auc"])
    body = {"modelkey": train["status"]["model_key"], "inputCollection": BANK, "outputCollection": "bench.scored"}
    scored = warm_then_timed(bench, api, "/predictall/", body, args.repeat)
    bench.figure(f"{label}_predictall_seconds", scored["seconds"], "s", f"median of {scored['times']}")
    bench.figure(f"{label}_predictall_rows", scored["status"]["rows"])
    service.stop()


def balancer(bench: Bench, replicas: list[str]) -> str:
    """HAProxy with the shipped configuration in front of the given replica addresses."""
    port = embedded.free_port()
    env = {**os.environ, "LISTEN": f"127.0.0.1:{port}", "WEB1": replicas[0], "WEB2": replicas[-1]}
    url = f"http://127.0.0.1:{port}"
    argv = ["env", *[f"{k}={v}" for k, v in env.items() if k in ("LISTEN", "WEB1", "WEB2")]]
    argv += ["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")]
    bench.start_server(f"haproxy-{len(set(replicas))}", argv, url, lambda: embedded.port_taken("127.0.0.1", port))
    return url


def web_runs(bench: Bench, params: dict[str, Any], args: Any) -> None:
    docs = bank_documents(bench)
    key = fit_and_store(bench, params, JOB, docs)["model_key"]
    record = {k: docs[0][k] for k in RECORD_FIELDS}
    body = json.dumps({"modelkey": key, "record": record}).encode()
    replicas = [bench.start_service({**params, "port": embedded.free_port()}, worker=False) for _ in range(2)]
    addresses = [r.url.split("//", 1)[1] for r in replicas]
    for label, chosen in (("one_replica", addresses[:1]), ("two_replicas", addresses)):
        url = balancer(bench, chosen) + "/predict/"
        check(url, body, '"probability"')
        result = loadgen.run(url, body, connections=16, duration=args.duration, processes=2)
        bench.figure(f"{label}_requests_per_s", result.per_second, "req/s", "16 connections through HAProxy")
        bench.figure(f"{label}_p99_ms", result.summary()["p99_ms"], "ms")
        bench.figure(f"{label}_errors", result.errors)
    bench.ratio("two replicas / one", "two_replicas_requests_per_s", "one_replica_requests_per_s")


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds of each load through HAProxy (default 15)")
    parser.add_argument("--repeat", type=int, help="timed runs of each job (default 2; --quick: 1)")
    args = parse_args(parser, {"duration": 15.0, "repeat": 2}, {"duration": 3.0, "repeat": 1}, argv)
    if shutil.which("haproxy") is None:
        parser.error("haproxy is not installed (make system installs it)")
    with Bench("scaleout", args) as bench:
        bench.start_stores()
        bench.load_bank()
        bench.section("(a) Spark: local[2] and a standalone cluster on the same 2 cores")
        spark_runs(bench, "local", bench.params(spark_master="local[2]"), args)
        cluster = start_cluster(bench.dir / "spark-cluster", cores=2, memory="2g")
        bench.on_stop("Spark cluster", cluster.stop)
        spark_runs(bench, "cluster", bench.params(spark_master=cluster.url, spark_executor_memory="1g"), args)
        bench.ratio("cluster / local training time", "cluster_train_seconds", "local_train_seconds")
        bench.ratio("cluster / local predictall time", "cluster_predictall_seconds", "local_predictall_seconds")
        bench.section("(b) /predict/ through HAProxy: one replica, then two")
        web_runs(bench, bench.params(), args)
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
