"""Training job.json on the bank collection through the service, against scikit-learn.

With a warm worker (one training run first, untimed), POST /train/ is timed until GET
/training/status/<id> says COMPLETED (polled every 0.1 s): wall time, held-out AUC, and the time
of each stage from the job's history (GET /jobs/<id>?history=1).

Baseline in the same run: scikit-learn GridSearchCV(Pipeline([StandardScaler(),
LogisticRegression(max_iter=iterations, tol=tol)])) over C = 1 / (regParam * n_train) for each of
job.json's regParam (0: no penalty), cv=numFolds, scoring roc_auc, on the same documents encoded
with DataParser(job["schema"]).encode into the same 51 columns (rows that fail to encode skipped), split
80/20. Its fit time and held-out AUC; the ratio service time / scikit-learn time (goal <= 3).

With --profile the worker's Spark writes its event log (spark.eventLog.enabled, through a
SPARK_CONF_DIR of the run's own) and the Spark jobs of the median timed run are summarised
(bench/sparkevents.py): how many, their mean time, and where a job's time goes.

    .venv/bin/python bench/bench_train.py [--quick] [--repeat N] [--profile] [--cv-parallelism N]
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import harness
import sparkbaseline
import sparkevents
from harness import (
    BANK,
    JOB,
    Api,
    Bench,
    arg_parser,
    c_of,
    encode_valid,
    interleaved,
    logistic_pipeline,
    parse_args,
    report_stages,
)

from dataparser import DataParser
from LogisticRegressionWrapper import LogisticRegressionWrapper


def sklearn_baseline(bench: Bench, job: dict[str, Any], jobs: int, docs: list[dict[str, Any]]) -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GridSearchCV, train_test_split

    started = time.perf_counter()
    X, y, kept = encode_valid(DataParser(job["schema"]), docs)
    bench.figure("sklearn_encode_seconds", time.perf_counter() - started, "s", f"{len(kept)} of {len(docs)} rows")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=float(job["holdoutFraction"]), random_state=int(job["seed"]), stratify=y
    )
    grid = {"logisticregression__C": [c_of(float(r), len(y_train)) for r in job["regParam"]]}
    search = GridSearchCV(
        logistic_pipeline(1.0, int(job["iterations"]), float(job["tol"])),
        grid,
        cv=int(job["numFolds"]),
        scoring="roc_auc",
        n_jobs=jobs,
    )
    started = time.perf_counter()
    search.fit(X_train, y_train)
    seconds = time.perf_counter() - started
    auc = float(roc_auc_score(y_test, search.predict_proba(X_test)[:, 1]))
    fits = len(grid["logisticregression__C"]) * int(job["numFolds"]) + 1
    bench.figure("sklearn_fit_seconds", seconds, "s", f"{fits} fits, n_jobs={jobs}, {X.shape[1]} columns")
    bench.figure("sklearn_heldout_auc", auc)
    bench.result["sklearn_best_params"] = search.best_params_


def event_log_conf(bench: Bench) -> Path:
    """A Spark configuration folder whose spark-defaults.conf turns the event log on (plain JSON
    lines into the run's directory); SPARK_CONF_DIR names it for the worker's spark-submit."""
    conf, logs = bench.dir / "spark-conf", bench.dir / "spark-events"
    conf.mkdir()
    logs.mkdir()
    settings = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": logs.as_uri(),
        "spark.eventLog.compress": "false",
    }
    (conf / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in settings.items()))
    os.environ["SPARK_CONF_DIR"] = str(conf)
    return logs


def profile_run(bench: Bench, logs: Path, run: dict[str, Any]) -> None:
    """The Spark jobs of one service job (its job group) from the worker's event log."""
    files = sorted(logs.iterdir())
    if not files:
        bench.say("no Spark event log was written")
        return
    result = sparkevents.summary(sparkevents.read_jobs(files[-1], run["job_id"]))
    bench.result["profile"] = result
    bench.figure("spark_jobs", result["jobs"], "", "Spark jobs of the median timed run")
    bench.figure("spark_job_mean_ms", result["job_mean_ms"], "ms", "mean wall time of one Spark job")
    sparkevents.report(result)


def headline(bench: Bench) -> None:
    figures = bench.result["figures"]
    ratios = bench.result["ratios"]
    bare, sklearn = ratios["service / bare PySpark time"], ratios["service / sklearn time"]
    print(
        f"\n  RATIO service / bare PySpark: {bare['value']:.2f}x "
        f"(goal <= 1.25: {'met' if bare['met'] else 'NOT met'}); "
        f"service / scikit-learn: {figures['service_train_seconds']:.2f} s / {figures['sklearn_fit_seconds']:.2f} s = "
        f"{sklearn['value']:.2f}x (goal <= 3: {'met' if sklearn['met'] else 'NOT met'}); bare PySpark "
        f"{figures['bare_spark_seconds']:.2f} s; held-out AUC {figures['service_heldout_auc']:.4f} (goal >= 0.905), "
        f"bare PySpark {figures['bare_spark_heldout_auc']:.4f}, scikit-learn {figures['sklearn_heldout_auc']:.4f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, help="interleaved rounds, at least 3 (default 3); medians count")
    parser.add_argument("--sklearn-jobs", type=int, help="n_jobs of GridSearchCV (default 1)")
    parser.add_argument("--reg-params", help="comma-separated regParam grid (default job.json's; --quick: 0.01)")
    parser.add_argument("--folds", type=int, help="numFolds (default job.json's; --quick: 2)")
    parser.add_argument("--profile", action="store_true", help="Spark's event log: where the timed run's jobs spend")
    parser.add_argument("--cv-parallelism", type=int, help="the worker's spark_cv_parallelism (default the service's)")
    grid = ",".join(map(str, JOB["regParam"]))
    normal = {"repeat": 3, "sklearn_jobs": 1, "reg_params": grid, "folds": JOB["numFolds"]}
    args = parse_args(parser, normal, {"reg_params": "0.01", "folds": 2, "rows": 3000}, argv)
    if args.repeat < 3:
        parser.error("--repeat: at least 3 (a median of fewer is one of them)")
    with Bench("train", args) as bench:
        bench.start_stores()
        bench.load_bank()
        logs = event_log_conf(bench) if args.profile else None
        overrides = {} if args.cv_parallelism is None else {"spark_cv_parallelism": args.cv_parallelism}
        params = bench.params(**overrides)
        api = Api(bench.start_service(params))
        grid = [float(x) for x in args.reg_params.split(",")]
        job = {**JOB, "inputCollection": BANK, "regParam": grid, "numFolds": args.folds}
        bench.say(f"job.json with regParam {grid}, numFolds {args.folds}, on {BANK}")
        full_job = LogisticRegressionWrapper.with_defaults(job)
        docs = list(bench.collection(BANK).find({}, {"_id": 0}))

        median_run = service_against_bare_spark(bench, api, job, full_job, docs, params["spark_cv_parallelism"])
        report_stages(bench, median_run)
        if logs is not None:
            profile_run(bench, logs, median_run)

        bench.section("baseline: scikit-learn GridSearchCV on the same rows and columns")
        sklearn_baseline(bench, full_job, args.sklearn_jobs, docs)
        bench.ratio("service / sklearn time", "service_train_seconds", "sklearn_fit_seconds", "<= 3")
        bench.ratio("bare PySpark / sklearn time", "bare_spark_seconds", "sklearn_fit_seconds")
        bench.ratio("service / sklearn AUC", "service_heldout_auc", "sklearn_heldout_auc")
        headline(bench)
        bench.save()
    return 0


def service_against_bare_spark(
    bench: Bench, api: Api, job: dict[str, Any], full_job: dict[str, Any], docs: list[dict], parallelism: int
) -> dict[str, Any]:
    """The service's POST /train/ (until COMPLETED) and the bare PySpark cross-validation of the
    same job on the same rows held in memory (bench/sparkbaseline.py, a SparkSession of this
    process), in interleaved rounds after one untimed run of each; the service's median run."""
    from predictionservice.config import pick
    from predictionservice.sparksession import SparkSettings, get_spark

    bench.section(f"the service's POST /train/ and the bare PySpark CrossValidator, {bench.args.repeat} rounds")
    cold = api.run_job("/train/", job)
    bench.figure("cold_seconds", cold["seconds"], "s", "first run: Spark starts in the worker (untimed)")
    spark = get_spark(pick(SparkSettings, bench.params(spark_master="local[2]")))
    bench.on_stop("SparkSession", spark.stop)
    X, y, kept = encode_valid(DataParser(full_job["schema"]), docs)
    frame = sparkbaseline.in_memory_frame(spark, X, y)
    sparkbaseline.cross_validate(frame, full_job, parallelism)  # untimed: this JVM's first run
    services: list[dict[str, Any]] = []

    def measure(arm: str) -> dict[str, float]:
        if arm == "service":
            services.append(api.run_job("/train/", job))
            return {"seconds": services[-1]["seconds"], "auc": services[-1]["status"]["metrics"]["auc"]}
        bare = sparkbaseline.cross_validate(frame, full_job, parallelism)
        return {"seconds": bare["seconds"], "auc": bare["auc"]}

    runs = interleaved(bench, ["service", "bare_spark"], bench.args.repeat, measure)
    bench.median("service_train_seconds", runs["service"]["seconds"], "s", "POST /train/ until COMPLETED")
    bench.median("bare_spark_seconds", runs["bare_spark"]["seconds"], "s", f"{len(kept)} rows held in memory")
    bench.median("service_heldout_auc", runs["service"]["auc"])
    bench.median("bare_spark_heldout_auc", runs["bare_spark"]["auc"])
    bench.paired_ratio(
        "service / bare PySpark time", runs["service"]["seconds"], runs["bare_spark"]["seconds"], "<= 1.25"
    )
    ordered = sorted(services, key=lambda run: run["seconds"])
    median = ordered[(len(ordered) - 1) // 2]
    bench.figure("service_invalid_rows", median["status"].get("invalid_rows", 0))
    return median


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
