"""Loading bank-full.csv into MongoDB, and reading it back with Spark.

(a) datasetloader.load_csv (parse, type, insert in batches into a temporary collection, rename
    over the target) in this process, and PUT /datasets/<db>/<collection> of the same file
    through the web server (which runs load_csv), in rows/s, against a plain pymongo
    insert_many of the same rows already parsed (csv.DictReader + int conversion) into another
    collection (goal: both >= 0.7 of it).
(b) Spark (local[2]) reading the collection through the project's MongoDB data source and
    counting its rows, with the default partitioning and with partitions=4, partition_mb=1, in
    rows/s, against one pymongo find() of the same collection iterated to the end.

    .venv/bin/python bench/bench_load.py [--quick] [--repeat N] [--rows N]
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import harness
from harness import BANK, Api, Bench, arg_parser, end_process, parse_args

from predictionservice import datasetloader


def timed(runs: int, work: Callable[[], Any]) -> list[float]:
    """Seconds of each of `runs` calls of work()."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return seconds


def parsed_rows(data: bytes) -> list[dict[str, Any]]:
    """The baseline's parse: csv.DictReader, integer columns converted."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    numeric = [k for k, v in rows[0].items() if v.lstrip("-").isdigit()]
    for row in rows:
        for key in numeric:
            row[key] = int(row[key])
    return rows


def bench_loading(bench: Bench, runs: int) -> int:
    """load_csv in this process, PUT /datasets through the web server and the plain insert_many,
    one of each per round (so a shared machine's drift falls on all three), each into a
    collection dropped beforehand, untimed: the same empty start as the baseline's."""
    bench.section("(a) loading the CSV into MongoDB")
    data = bench.csv_bytes()
    db, _, name = BANK.partition(".")
    api = Api(bench.start_service(bench.params(), worker=False))
    target, uploaded, baseline = (bench.collection(f"{db}.{n}") for n in (name, "bank_put", "bank_insert_many"))
    put_path, csv_type = f"/datasets/{db}/bank_put", {"Content-Type": "text/csv"}
    counts: dict[str, int] = {}
    work: dict[str, Callable[[], int]] = {
        "load_csv": lambda: datasetloader.load_csv(target, io.BytesIO(data)),
        "put": lambda: api.call("PUT", put_path, data=data, headers=csv_type, timeout=3600)["inserted"],
    }
    seconds: dict[str, list[float]] = {"load_csv": [], "put": [], "insert_many": []}
    for _ in range(runs):
        for key, collection in (("load_csv", target), ("put", uploaded)):
            collection.drop()
            seconds[key] += timed(1, lambda key=key: counts.update({key: work[key]()}))
        baseline.drop()
        docs = parsed_rows(data)  # fresh documents: insert_many gives each an _id
        seconds["insert_many"] += timed(1, lambda docs=docs: baseline.insert_many(docs))
    rows = counts["load_csv"]
    assert counts["put"] == rows and baseline.count_documents({}) == rows == uploaded.count_documents({})
    bench.figure("rows", rows)
    for key, label in (("load_csv", "load_csv"), ("put", "put_datasets"), ("insert_many", "insert_many")):
        shown = ", ".join(f"{s:.2f}" for s in seconds[key])
        bench.figure(f"{label}_seconds", min(seconds[key]), "s", f"best of {runs}: {shown}")
        bench.figure(f"{label}_rows_per_s", rows / min(seconds[key]), "rows/s")
    bench.ratio("load_csv / insert_many", "load_csv_rows_per_s", "insert_many_rows_per_s", ">= 0.7")
    bench.ratio("PUT /datasets / insert_many", "put_datasets_rows_per_s", "insert_many_rows_per_s", ">= 0.7")
    baseline.drop()
    uploaded.drop()
    return rows


def bench_reading(bench: Bench, runs: int, rows: int) -> None:
    bench.section("(b) reading the collection with Spark")
    from predictionservice import sparksession
    from predictionservice.config import pick
    from predictionservice.mongotarget import MongoTargets

    params = bench.params()
    bench.say(f"starting Spark ({params['spark_master']}, {params['spark_shuffle_partitions']} shuffle partitions)")
    spark = sparksession.get_spark(pick(sparksession.SparkSettings, params))
    gateway = spark.sparkContext._gateway

    def stop_spark() -> None:
        spark.stop()
        jvm = getattr(gateway, "proc", None)  # the JVM outlives SparkSession.stop() until Python exits
        if jvm is not None:
            end_process(jvm.pid)

    bench.on_stop("Spark", stop_spark)
    ref = pick(MongoTargets, params).resolve(BANK)
    layouts = {
        "default": {"partitions": params["spark_read_partitions"], "partition_mb": params["spark_partition_mb"]},
        "4x1mb": {"partitions": 4, "partition_mb": 1.0},  # as the server allows (SecantusDB: one)
        "4x1mb_split": {"partitions": 4, "partition_mb": 1.0, "split_scans": True},  # four ranges anyway
    }
    warm = sparksession.read_collection(spark, ref, **layouts["default"])
    assert warm.count() == rows  # warm-up, untimed: the JVM, Python workers, the data source
    bench.say("Spark warmed up")
    for name, layout in layouts.items():
        parts = sparksession.read_collection(spark, ref, **layout).rdd.getNumPartitions()
        seconds = timed(runs, lambda layout=layout: sparksession.read_collection(spark, ref, **layout).count())
        bench.figure(
            f"spark_{name}_seconds",
            statistics.median(seconds),
            "s",
            f"{parts} partition(s), {layout}; median of {runs}",
        )
        bench.figure(f"spark_{name}_rows_per_s", rows / statistics.median(seconds), "rows/s")

    collection = bench.collection(BANK)
    seen: list[int] = []
    seconds = timed(runs, lambda: seen.append(sum(1 for _ in collection.find())))
    assert seen[-1] == rows
    bench.figure("pymongo_find_seconds", statistics.median(seconds), "s", f"median of {runs}")
    bench.figure("pymongo_find_rows_per_s", rows / statistics.median(seconds), "rows/s")
    for name in layouts:
        bench.ratio(f"spark {name} / pymongo find", f"spark_{name}_rows_per_s", "pymongo_find_rows_per_s")


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, help="timed runs of each measure (default 3; --quick: 1)")
    args = parse_args(parser, {"repeat": 3}, {"repeat": 1}, argv)
    with Bench("load", args) as bench:
        bench.start_stores()
        rows = bench_loading(bench, args.repeat)
        bench_reading(bench, args.repeat, rows)
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
