"""What the training profile costs a training run (docs/API.md, "Quality and drift").

job.json (logistic regression, its grid, 3 folds) trained by the worker's own code
(Algorithm.train, Spark local[2], in this process) on the bank sample (every 9th row of
bank-full.csv, about 5,000 rows, as tests/conftest.py's bank_sample), alternately with the
profile and without it (Algorithm._profiling replaced by nothing), after one untimed warm-up run:
the median wall time of each, their difference, and the profile's own Spark work (its feature
aggregations and its score aggregation) timed inside the runs with it.

    .venv/bin/python bench/bench_profile.py [--quick] [--repeat N]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import harness
from harness import Bench, arg_parser, parse_args

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import Progress
from modelfactory import Algorithm, ModelFactory, Resources
from predictionservice import sparkprofile
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients
from predictionservice.redisclient import connect

ROOT = Path(__file__).resolve().parent.parent


def timed(spent: list[float], function: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    return wrapper


def main() -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=None, help="timed runs of each (default 5; --quick 2)")
    args = parse_args(parser, {"repeat": 5}, {"repeat": 2, "rows": None})
    with Bench("profile", args) as bench:
        bench.start_stores()
        bench.load_bank("datasets.bank")
        sample = list(bench.collection("datasets.bank").find({}, {"_id": 0}))[::9]
        bench.collection("datasets.bank_sample").insert_many(sample)
        params = bench.params(spark_master="local[2]")
        from predictionservice.config import pick
        from predictionservice.sparksession import SparkSettings, get_spark

        spark = get_spark(pick(SparkSettings, params))
        bench.on_stop("SparkSession", spark.stop)
        store = ModelStore(connect(params["redis_url"], params["models_db"]))
        resources = Resources(params, store, MongoClients(params["mongodb_timeout_ms"]), lambda: spark)
        factory = ModelFactory(params["algorithms"])
        from predictionservice.job import TrainingJob
        from predictionservice.mongotarget import MongoTargets

        document = {**json.loads((ROOT / "job.json").read_text()), "inputCollection": "datasets.bank_sample"}
        document.pop("outputCollection", None)
        job = TrainingJob.from_document(document, factory.algorithm_class, pick(MongoTargets, params).resolve)
        with_profile = Algorithm._profiling
        spent: list[float] = []
        sparkprofile.feature_profile = timed(spent, sparkprofile.feature_profile)
        sparkprofile.score_profile = timed(spent, sparkprofile.score_profile)

        def without(encoded: Any, parser: Any, settings: Any) -> tuple[dict, None]:
            return {}, None

        def train(profiled: bool) -> float:
            Algorithm._profiling = staticmethod(with_profile if profiled else without)
            started = time.perf_counter()
            model = factory.train(job, resources, Progress("bench-profile"))
            assert ("features" in model["profile"]) == profiled
            seconds = time.perf_counter() - started
            bench.say(f"trained {'with' if profiled else 'without'} the profile in {seconds:.1f}s")
            return seconds

        bench.say(f"{len(sample)} rows; warm-up run")
        train(True)
        spent.clear()
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeat):
            for profiled in (False, True):
                times[profiled].append(train(profiled))
        Algorithm._profiling = staticmethod(with_profile)
        plain, profiled = statistics.median(times[False]), statistics.median(times[True])
        bench.figure("rows", len(sample))
        bench.figure("train_without_profile_seconds", plain, "s", f"median of {args.repeat}: {times[False]}")
        bench.figure("train_with_profile_seconds", profiled, "s", f"median of {args.repeat}: {times[True]}")
        bench.figure("profile_cost_seconds", profiled - plain, "s", f"{(profiled - plain) / plain:+.1%}")
        bench.figure("profile_own_spark_seconds", sum(spent) / args.repeat, "s", "its aggregations, per run")
        bench.save()
    return 0


if __name__ == "__main__":
    sys.exit(harness.run(main))
