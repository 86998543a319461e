"""Every algorithm side by side, online and in training, in one run.

(a) Online: a model of each algorithm is trained by the worker's own code (Algorithm.train, Spark
    local[2], in this process) on data drawn from a known model and stored; the web server
    (modelserver.py) then answers POST /predict/ with one record over 16 keep-alive connections
    and with 1,000 records per request. Each figure is also given as a ratio to the binary
    logistic model's, measured the same way in the same run (the reference the service started
    with). The forest is 100 trees of depth 8.
(b) Training: each algorithm's Spark training time (read, encode, cross-validation, held-out
    evaluation, the stored model) against scikit-learn's equivalent on the same rows, grid,
    folds and held-out split (GridSearchCV with refit), in the same run: the ratio Spark / sklearn.

    .venv/bin/python bench/bench_algorithms.py [--quick] [--duration S] [--train-rows N]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import harness
from bench_predict import check, load
from harness import Bench, arg_parser, parse_args

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import Progress, known_rows
from modelfactory import ModelFactory, Resources
from predictionservice.modelstore import ModelStore
from predictionservice.mongotarget import MongoClients
from predictionservice.redisclient import connect

FOREST = {"numTrees": [100], "maxDepth": [8]}
# key -> (algorithm, data kind, classes, grid); "binary" is the reference.
MODELS = {
    "binary": ("LogisticRegressionWrapper", "logistic", 2, {"regParam": [0.001, 0.01]}),
    "multiclass": ("LogisticRegressionWrapper", "logistic", 5, {"regParam": [0.001, 0.01]}),
    "linear": ("LinearRegressionWrapper", "linear", 0, {"regParam": [0.001, 0.01]}),
    "forest": ("RandomForestWrapper", "xor", 2, FOREST),
    "forest_regression": ("RandomForestWrapper", "wave", 0, FOREST),
}


def train_all(bench: Bench, params: dict[str, Any], rows: int) -> dict[str, tuple[dict, list[dict]]]:
    """Each model trained by Algorithm.train on its own collection: key -> (stored model, rows)."""
    from predictionservice.config import pick
    from predictionservice.sparksession import SparkSettings, get_spark

    spark = get_spark(pick(SparkSettings, params))
    bench.on_stop("SparkSession", spark.stop)
    store = ModelStore(connect(params["redis_url"], params["models_db"]))
    resources = Resources(params, store, MongoClients(params["mongodb_timeout_ms"]), lambda: spark)
    factory = ModelFactory(params["algorithms"])
    out = {}
    for key, (name, kind, classes, grid) in MODELS.items():
        data, schema, _ = known_rows(kind, rows, seed=7, classes=max(classes, 2))
        bench.collection(f"bench.{key}").insert_many([dict(r) for r in data])
        job = {"name": name, "inputCollection": f"bench.{key}", "schema": schema, **grid}
        started = time.perf_counter()
        model = factory.train(job, resources, Progress(f"bench-{key}"))
        bench.figure(f"{key}_spark_train_seconds", time.perf_counter() - started, "s", f"{rows} rows, {grid}")
        bench.figure(f"{key}_metrics", model["metrics"])
        out[key] = (model, data)
    return out


def sklearn_equivalent(key: str, job: dict[str, Any]) -> tuple[Any, str | None]:
    """scikit-learn's model of the same kind, scaled as Spark standardises, and its grid."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import ElasticNet, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if key in ("binary", "multiclass"):
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=100)), "logisticregression__C"
    if key == "linear":
        return make_pipeline(StandardScaler(), ElasticNet(l1_ratio=0.0, max_iter=100)), "elasticnet__alpha"
    forest = RandomForestClassifier if key == "forest" else RandomForestRegressor
    return forest(n_estimators=100, max_depth=8, max_features="sqrt" if key == "forest" else 1 / 3), None


def sklearn_train(bench: Bench, key: str, model: dict[str, Any], data: list[dict]) -> None:
    from sklearn.model_selection import GridSearchCV, train_test_split

    from dataparser import DataParser

    started = time.perf_counter()
    parser = DataParser(model["schema"])
    X = parser.encode(data)
    y = [parser.encode_label(r) for r in data]
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=42)
    estimator, param = sklearn_equivalent(key, model["parameters"])
    if param is None:  # the forest: one grid point, as Spark's
        grid = {"n_estimators": [100]}
    else:  # Spark's regParam as C = 1 / (regParam n), or as ElasticNet's alpha
        regs = model["parameters"]["regParam"]
        grid = {param: [1.0 / (r * len(y_train)) for r in regs] if param.endswith("__C") else list(regs)}
    GridSearchCV(estimator, grid, cv=3, refit=True, n_jobs=1).fit(X_train, y_train)
    bench.figure(f"{key}_sklearn_train_seconds", time.perf_counter() - started, "s", "encode + GridSearchCV + refit")
    bench.ratio(f"{key} training: Spark / scikit-learn", f"{key}_spark_train_seconds", f"{key}_sklearn_train_seconds")


def online(bench: Bench, service: Any, trained: dict, args: Any) -> None:
    url = service.url + "/predict/"
    for key, (model, data) in trained.items():
        records = [{k: v for k, v in r.items() if k != "y"} for r in data]
        single = json.dumps({"modelkey": model["model_key"], "record": records[0]}).encode()
        batch = json.dumps({"modelkey": model["model_key"], "records": records[: args.batch]}).encode()
        check(url, single, '"prediction"')
        load(bench, f"{key}_single", url, single, args)
        load(bench, f"{key}_batch", url, batch, args, connections=2, rows_per_request=min(args.batch, len(records)))
    for key in trained:
        if key != "binary":
            bench.ratio(f"{key} / binary single", f"{key}_single_requests_per_s", "binary_single_requests_per_s")
            bench.ratio(f"{key} / binary 1,000 rows", f"{key}_batch_rows_per_s", "binary_batch_rows_per_s")


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds of each timed load (default 10; --quick: 2)")
    parser.add_argument("--connections", type=int, help="concurrent connections for single records (default 16)")
    parser.add_argument("--processes", type=int, help="load generator processes (default 2)")
    parser.add_argument("--batch", type=int, help="records per request (default 1000)")
    parser.add_argument("--train-rows", type=int, help="rows of each training set (default 20000; --quick: 3000)")
    normal = {"duration": 10.0, "connections": 16, "processes": 2, "batch": 1000, "train_rows": 20_000}
    args = parse_args(parser, normal, {"duration": 2.0, "train_rows": 3000}, argv)
    with Bench("algorithms", args) as bench:
        bench.start_stores()
        params = bench.params(spark_master="local[2]")
        bench.section(f"(b) training on {args.train_rows} rows each: Spark (Algorithm.train) and scikit-learn")
        trained = train_all(bench, params, args.train_rows)
        for key, (model, data) in trained.items():
            sklearn_train(bench, key, model, data)
        bench.section(f"(a) online: one record over {args.connections} connections, {args.batch} per request")
        service = bench.start_service(params, worker=False)
        online(bench, service, trained, args)
        bench.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(harness.run(main))
