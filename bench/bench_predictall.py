"""Batch scoring: POST /predictall/ on the bank collection, end to end, against plain numpy.

The service (a warm worker: one scoring run first, untimed) reads the collection with Spark,
scores every document and writes {score, probability, value} documents into the output
collection, replacing it; the time from the POST until GET /predictall/status/<id> says
COMPLETED (polled every 0.1 s) gives rows/s, writes included (goal >= 5,000 rows/s).

Baseline in the same run, the "no Spark" path: one pymongo find() of the same documents, the
stored model's numpy scorer (DataParser.encode, weights, logistic), the same output documents
written with insert_many into another collection.

The model is a real LogisticRegressionWrapper model with job.json's schema: fitted with
scikit-learn and stored through ModelStore, or with --train trained by the service itself.

    .venv/bin/python bench/bench_predictall.py [--quick] [--repeat N] [--train]
"""

from __future__ import annotations

import time
from typing import Any

import harness
import numpy as np
from harness import (
    BANK,
    JOB,
    Api,
    Bench,
    arg_parser,
    bank_documents,
    encode_valid,
    fit_and_store,
    parse_args,
    report_stages,
    warm_then_timed,
)

from LogisticRegressionWrapper import LogisticRegressionWrapper
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect

OUTPUT = "datasets.bankResults"
BASELINE_OUTPUT = "datasets.bankResults_numpy"


def numpy_baseline(bench: Bench, model: dict[str, Any]) -> tuple[int, float]:
    """Rows written and seconds: find() all, score in numpy, insert_many the results."""
    started = time.perf_counter()
    docs = list(bench.collection(BANK).find())
    predictor = LogisticRegressionWrapper().compile(model)
    X, _, kept = encode_valid(predictor.parser, docs, labels=False)
    margin = X @ predictor.weights[0] + predictor.intercepts[0]
    probability = 1.0 / (1.0 + np.exp(-margin))
    no, yes = predictor.names
    out = [
        {"score": int(m > 0), "label": yes if m > 0 else no, "probability": p,
         "probabilities": {no: 1.0 - p, yes: p}, "value": docs[i]}
        for i, m, p in zip(kept, margin.tolist(), probability.tolist(), strict=True)
    ]  # fmt: skip
    target = bench.collection(BASELINE_OUTPUT)
    target.drop()
    if out:
        target.insert_many(out, ordered=False)
    return len(out), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, help="timed scoring runs (default 3; --quick: 1); the median counts")
    parser.add_argument("--train", action="store_true", help="train the model through the service (slower)")
    args = parse_args(parser, {"repeat": 3}, {"repeat": 1}, argv)
    with Bench("predictall", args) as bench:
        bench.start_stores()
        rows = bench.load_bank()
        params = bench.params()
        api = Api(bench.start_service(params))
        if args.train:
            key = api.run_job("/train/", {**JOB, "inputCollection": BANK})["status"]["model_key"]
        else:
            key = fit_and_store(bench, params, JOB, bank_documents(bench))["model_key"]
        model, _ = ModelStore(connect(params["redis_url"], params["models_db"])).load(key)
        body = {"modelkey": key, "inputCollection": BANK, "outputCollection": OUTPUT}

        bench.section(f"the service: POST /predictall/ of {rows} documents until COMPLETED")
        bench.figure("input_rows", rows)
        median_run = warm_then_timed(bench, api, "/predictall/", body, args.repeat)
        written = median_run["status"]["rows"]
        assert bench.collection(OUTPUT).count_documents({}) == written
        bench.figure("service_seconds", median_run["seconds"], "s", f"(lower) median of {median_run['times']}")
        bench.figure("service_rows_written", written, "", f"{median_run['status'].get('invalid_rows', 0)} invalid")
        bench.figure("service_rows_per_s", written / median_run["seconds"], "rows/s")
        report_stages(bench, median_run)
        bench.goal("service_rows_per_s", "service_rows_per_s", ">= 5000")

        bench.section("baseline: pymongo find() + numpy scoring + insert_many, no Spark")
        numpy_rows, seconds = numpy_baseline(bench, model)
        bench.figure("numpy_seconds", seconds, "s")
        bench.figure("numpy_rows_written", numpy_rows)
        bench.figure("numpy_rows_per_s", numpy_rows / seconds, "rows/s")
        bench.ratio("service / numpy rows per s", "service_rows_per_s", "numpy_rows_per_s")
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
