"""Training job.json on the bank collection through the service, against scikit-learn.

With a warm worker (one training run first, untimed), POST /train/ is timed until GET
/training/status/<id> says COMPLETED (polled every 0.1 s): wall time, held-out AUC, and the time
of each stage from the job's history (GET /jobs/<id>?history=1).

Baseline in the same run: scikit-learn GridSearchCV(Pipeline([StandardScaler(),
LogisticRegression(max_iter=iterations, tol=tol)])) over C = 1 / (regParam * n_train) for each of
job.json's regParam (0: no penalty), cv=numFolds, scoring roc_auc, on the same documents encoded
with DataParser(job["schema"]).encode into the same 51 columns (rows that fail to encode skipped), split
80/20. Its fit time and held-out AUC; the ratio service time / scikit-learn time (goal <= 3).

    .venv/bin/python bench/bench_train.py [--quick] [--repeat N]
"""

from __future__ import annotations

import time
from typing import Any

import harness
from harness import (
    BANK,
    JOB,
    Api,
    Bench,
    arg_parser,
    c_of,
    encode_valid,
    logistic_pipeline,
    parse_args,
    report_stages,
    warm_then_timed,
)

from dataparser import DataParser
from LogisticRegressionWrapper import LogisticRegressionWrapper


def sklearn_baseline(bench: Bench, job: dict[str, Any], jobs: int) -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GridSearchCV, train_test_split

    docs = list(bench.collection(job["inputCollection"]).find({}, {"_id": 0}))
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


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, help="timed trainings (default 2; --quick: 1); the median counts")
    parser.add_argument("--sklearn-jobs", type=int, help="n_jobs of GridSearchCV (default 1)")
    parser.add_argument("--reg-params", help="comma-separated regParam grid (default job.json's; --quick: 0.01)")
    parser.add_argument("--folds", type=int, help="numFolds (default job.json's; --quick: 2)")
    grid = ",".join(map(str, JOB["regParam"]))
    normal = {"repeat": 2, "sklearn_jobs": 1, "reg_params": grid, "folds": JOB["numFolds"]}
    args = parse_args(parser, normal, {"repeat": 1, "reg_params": "0.01", "folds": 2, "rows": 3000}, argv)
    with Bench("train", args) as bench:
        bench.start_stores()
        bench.load_bank()
        api = Api(bench.start_service(bench.params()))
        grid = [float(x) for x in args.reg_params.split(",")]
        job = {**JOB, "inputCollection": BANK, "regParam": grid, "numFolds": args.folds}
        bench.say(f"job.json with regParam {grid}, numFolds {args.folds}, on {BANK}")

        bench.section("the service: POST /train/ until COMPLETED")
        median_run = warm_then_timed(bench, api, "/train/", job, args.repeat)
        bench.figure("service_train_seconds", median_run["seconds"], "s", f"(lower) median of {median_run['times']}")
        bench.figure("service_heldout_auc", median_run["status"]["metrics"]["auc"])
        bench.figure("service_invalid_rows", median_run["status"].get("invalid_rows", 0))
        report_stages(bench, median_run)

        bench.section("baseline: scikit-learn GridSearchCV on the same rows and columns")
        sklearn_baseline(bench, LogisticRegressionWrapper.with_defaults(job), args.sklearn_jobs)
        bench.ratio("service / sklearn time", "service_train_seconds", "sklearn_fit_seconds", "<= 3")
        bench.ratio("service / sklearn AUC", "service_heldout_auc", "sklearn_heldout_auc")
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
