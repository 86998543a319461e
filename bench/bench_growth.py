"""Growth: loading, training and /predictall/ at 1x and 4x bank-full (its rows repeated; 16x too on request).

At each size: PUT /datasets of the repeated CSV through the web server, POST /train/ of job.json
on it (a lighter grid by default: regParam 0.01, 2 folds) and POST /predictall/ of it with the
model just trained, each timed until done (a job: until its status says COMPLETED), while a
sampler reads from /proc every 0.2 s the RSS (VmRSS) of the web process and of the worker's whole
process tree (the Celery main and pool processes, the Spark JVM, Spark's Python workers), and of
the JVM alone. Spark starts first on a small warm-up collection (a training and a scoring run,
untimed). Prints the time per row of each operation at each size with its ratio to the first
size (goal: <= 1.1, time per row does not grow) and each peak RSS with its ratio to the first
size's (goal: <= 1.25, nothing grows with the data: nothing is collected on the driver). The
sum over a tree counts pages forked processes share once per process.

    .venv/bin/python bench/bench_growth.py [--quick] [--sizes 1,4] [--reg-params G] [--folds N]
    .venv/bin/python bench/bench_growth.py --sizes 1,4,16    # 16x: 723,376 rows
    .venv/bin/python bench/bench_growth.py --cluster         # the executors' RSS apart from the driver's
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import harness
from harness import JOB, Api, Bench, arg_parser, parse_args

from localservers.embedded import child_pids
from localservers.sparkcluster import start_cluster

DB = "datasets"
GROWTH, SCORED, WARM = "growth", "growth_scored", "growth_warm"
WARM_ROWS = 2000
SAMPLE_EVERY = 0.2
TIME_GOAL, RSS_GOAL = "<= 1.1", "<= 1.25"
OPERATIONS = ("load", "train", "predictall")
MEASURED = ("web", "worker_tree", "jvm")  # what must stay flat; a cluster's executors hold the data
CSV_TYPE = {"Content-Type": "text/csv"}
UPLOAD_TIMEOUT = 3600  # seconds: the answer to a PUT comes once the whole load is published


def tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(child_pids(current, running_only=True))
    return found


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def is_jvm(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip() == "java"
    return False


class Sampler:
    """Peak RSS (MB) of the web process, the worker's process tree and its JVM while running;
    on a cluster, also of the executors (every process the Spark worker daemon started)."""

    def __init__(self, web: int, worker: int, spark_worker: int | None = None):
        self.web, self.worker, self.spark_worker = web, worker, spark_worker
        self.peaks = dict.fromkeys(MEASURED if spark_worker is None else (*MEASURED, "executors"), 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> dict[str, float]:
        pids = tree(self.worker)
        sampled = {
            "web": rss_kb(self.web) / 1024,
            "worker_tree": sum(rss_kb(p) for p in pids) / 1024,
            "jvm": sum(rss_kb(p) for p in pids if is_jvm(p)) / 1024,
        }
        if self.spark_worker is not None:
            sampled["executors"] = sum(rss_kb(p) for p in tree(self.spark_worker)[1:]) / 1024
        return sampled

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, value in self.sample().items():
                self.peaks[key] = max(self.peaks[key], value)
            self._stop.wait(SAMPLE_EVERY)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def repeated_csv(data: bytes, times: int) -> bytes:
    header, _, body = data.partition(b"\n")
    body = body if body.endswith(b"\n") else body + b"\n"
    return header + b"\n" + body * times


def measure(bench: Bench, sampler_of: Any, label: str, work: Any) -> tuple[float, Any, dict[str, float]]:
    with sampler_of() as sampler:
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
    bench.say(f"{label}: {seconds:.1f}s; peak RSS " + ", ".join(f"{k} {v:.0f} MB" for k, v in sampler.peaks.items()))
    return seconds, result, sampler.peaks


def run_size(bench: Bench, api: Api, sampler_of: Any, job: dict[str, Any], data: bytes, k: int) -> dict[str, Any]:
    """Load, train and score k times the CSV's rows; seconds and peak RSS of each."""
    csv = repeated_csv(data, k)
    for name in (GROWTH, SCORED):
        bench.collection(f"{DB}.{name}").drop()  # untimed: no run pays for dropping the last size's
    out: dict[str, Any] = {}
    seconds, answer, peaks = measure(
        bench, sampler_of, f"{k}x: PUT /datasets ({len(csv) / 2**20:.0f} MB)",
        lambda: api.call("PUT", f"/datasets/{DB}/{GROWTH}", data=csv, headers=CSV_TYPE, timeout=UPLOAD_TIMEOUT),
    )  # fmt: skip
    rows = answer["inserted"]
    out["load"] = {"seconds": seconds, "rows": rows, "rss": peaks}
    seconds, run, peaks = measure(
        bench,
        sampler_of,
        f"{k}x: POST /train/",
        lambda: api.run_job("/train/", {**job, "inputCollection": f"{DB}.{GROWTH}"}),
    )
    out["train"] = {"seconds": seconds, "rows": rows, "rss": peaks}
    body = {
        "modelkey": run["status"]["model_key"],
        "inputCollection": f"{DB}.{GROWTH}",
        "outputCollection": f"{DB}.{SCORED}",
    }
    seconds, run, peaks = measure(
        bench, sampler_of, f"{k}x: POST /predictall/", lambda: api.run_job("/predictall/", body)
    )
    out["predictall"] = {"seconds": seconds, "rows": run["status"]["rows"], "rss": peaks}
    return out


def warm_up(bench: Bench, api: Api, job: dict[str, Any], data: bytes) -> None:
    """Spark started in the worker (training and scoring once on a small collection), untimed."""
    lines = data.splitlines(keepends=True)[: WARM_ROWS + 1]
    api.call("PUT", f"/datasets/{DB}/{WARM}", data=b"".join(lines), headers={"Content-Type": "text/csv"})
    started = time.perf_counter()
    key = api.run_job("/train/", {**job, "inputCollection": f"{DB}.{WARM}"})["status"]["model_key"]
    api.run_job(
        "/predictall/", {"modelkey": key, "inputCollection": f"{DB}.{WARM}", "outputCollection": f"{DB}.{SCORED}"}
    )
    bench.figure("warm_up_seconds", time.perf_counter() - started, "s", "Spark starts in the worker (untimed)")


def report(bench: Bench, results: dict[int, dict[str, Any]]) -> None:
    sizes = sorted(results)
    first = sizes[0]
    bench.section("time per row (µs) and peak RSS (MB) at each size")
    for k in sizes:
        for op in OPERATIONS:
            entry = results[k][op]
            bench.figure(f"{op}_{k}x_us_per_row", entry["seconds"] / entry["rows"] * 1e6, "µs/row",
                         f"{entry['rows']:,} rows in {entry['seconds']:.1f}s")  # fmt: skip
            for what, mb in entry["rss"].items():
                bench.figure(f"{op}_{k}x_{what}_rss_mb", mb, "MB")
    if len(sizes) < 2:
        return
    bench.section(f"ratios to {first}x (time per row: goal {TIME_GOAL}; peak RSS: goal {RSS_GOAL})")
    for k in sizes[1:]:
        for op in OPERATIONS:
            bench.ratio(
                f"{op} per row {k}x / {first}x", f"{op}_{k}x_us_per_row", f"{op}_{first}x_us_per_row", TIME_GOAL
            )
            for what in results[k][op]["rss"]:
                bench.ratio(f"{op} {what} RSS {k}x / {first}x", f"{op}_{k}x_{what}_rss_mb",
                            f"{op}_{first}x_{what}_rss_mb", RSS_GOAL if what in MEASURED else "")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        help="comma-separated multiples of the CSV's rows (default 1,4; --quick: 1,2); 16 is slow on SecantusDB",
    )
    parser.add_argument("--reg-params", help="comma-separated regParam grid of the training (default 0.01)")
    parser.add_argument("--folds", type=int, help="numFolds of the training (default 2)")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="the worker's Spark on a standalone cluster of its own (a master and a 2-core worker): the "
        "driver's JVM apart from the executors', which hold the cached data (local mode: one JVM)",
    )
    normal = {"sizes": "1,4", "reg_params": "0.01", "folds": 2}
    args = parse_args(parser, normal, {"sizes": "1,2", "rows": 5000}, argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    job = {**JOB, "regParam": [float(g) for g in args.reg_params.split(",")], "numFolds": args.folds}
    with Bench("growth", args) as bench:
        bench.start_stores()
        params = bench.params(max_dataset_bytes=2**31)
        spark_worker = None
        if args.cluster:
            cluster = start_cluster(bench.dir / "spark-cluster", cores=2, memory="2g")
            bench.on_stop("Spark cluster", cluster.stop)
            params = {**params, "spark_master": cluster.url, "spark_executor_memory": "1g"}
            spark_worker = cluster.worker.pid
            bench.say(f"Spark: a standalone cluster at {cluster.url}")
        service = bench.start_service(params)
        api = Api(service)
        data = bench.csv_bytes()
        base_rows = data.count(b"\n") - 1
        bench.say(f"sizes {sizes} x {base_rows:,} rows; regParam {job['regParam']}, {job['numFolds']} folds")
        web, worker = service.children["web"].pid, service.children["worker"].pid
        warm_up(bench, api, job, data)
        idle = Sampler(web, worker, spark_worker).sample()
        bench.say("RSS after the warm-up: " + ", ".join(f"{k} {v:.0f} MB" for k, v in idle.items()))
        bench.result["rss_after_warm_up_mb"] = idle
        results = {}
        for k in sizes:
            results[k] = run_size(bench, api, lambda: Sampler(web, worker, spark_worker), job, data, k)
        bench.result["runs"] = results
        report(bench, results)
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
