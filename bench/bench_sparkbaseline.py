"""The bare PySpark training baseline alone: job.json's cross-validation written directly against
Spark ML (bench/sparkbaseline.py) on the bank rows encoded and held in memory, in a SparkSession
of this process (local[2]), beside scikit-learn's GridSearchCV of the same grid on the same rows
(bench_train's baseline). No service, no MongoDB read in the timed part: what Spark itself costs
this job on this machine, the floor bench_train holds the service to (service / bare <= 1.25).

One untimed run first (the JVM's warm-up), then --repeat timed runs; the median, its spread, and
the ratio bare PySpark / scikit-learn.

    .venv/bin/python bench/bench_sparkbaseline.py [--quick] [--repeat N] [--reg-params R,R] [--folds N]
"""

from __future__ import annotations

import statistics

import harness
import sparkbaseline
from bench_train import sklearn_baseline
from harness import JOB, Bench, arg_parser, bank_documents, encode_valid, parse_args

from dataparser import DataParser
from LogisticRegressionWrapper import LogisticRegressionWrapper


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, help="timed runs, at least 3 (default 3)")
    parser.add_argument("--reg-params", help="comma-separated regParam grid (default job.json's; --quick: 0.01)")
    parser.add_argument("--folds", type=int, help="numFolds (default job.json's; --quick: 2)")
    parser.add_argument("--cv-parallelism", type=int, help="CrossValidator's parallelism (default 2, the service's)")
    normal = {"repeat": 3, "reg_params": ",".join(map(str, JOB["regParam"])), "folds": JOB["numFolds"],
              "cv_parallelism": 2}  # fmt: skip
    args = parse_args(parser, normal, {"reg_params": "0.01", "folds": 2, "rows": 3000}, argv)
    if args.repeat < 3:
        parser.error("--repeat: at least 3 (a median of fewer is one of them)")
    with Bench("sparkbaseline", args) as bench:
        from predictionservice.config import pick
        from predictionservice.sparksession import SparkSettings, get_spark

        grid = [float(x) for x in args.reg_params.split(",")]
        job = LogisticRegressionWrapper.with_defaults({**JOB, "regParam": grid, "numFolds": args.folds})
        docs = bank_documents(bench)
        X, y, kept = encode_valid(DataParser(job["schema"]), docs)
        spark = get_spark(pick(SparkSettings, bench.params(spark_master="local[2]")))
        bench.on_stop("SparkSession", spark.stop)
        frame = sparkbaseline.in_memory_frame(spark, X, y)
        bench.section(f"bare PySpark CrossValidator: regParam {grid}, {args.folds} folds, {len(kept)} rows")
        first = sparkbaseline.cross_validate(frame, job, args.cv_parallelism)
        bench.figure("bare_spark_cold_seconds", first["seconds"], "s", "the first run (untimed)")
        runs = [sparkbaseline.cross_validate(frame, job, args.cv_parallelism) for _ in range(args.repeat)]
        bench.median("bare_spark_seconds", [run["seconds"] for run in runs], "s", f"{first['fits']} fits each")
        bench.figure("bare_spark_heldout_auc", statistics.median(run["auc"] for run in runs))
        bench.section("scikit-learn GridSearchCV on the same rows and columns")
        sklearn_baseline(bench, job, 1, docs)
        bench.ratio("bare PySpark / sklearn time", "bare_spark_seconds", "sklearn_fit_seconds")
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
