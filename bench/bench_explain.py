"""Forest explanations (exact path-dependent TreeSHAP, predictionservice.treeshap) per second.

A 100-tree depth-8 random forest is trained by Spark (local[2], in this process, on rows of the
binary ``logistic`` known model: noisy classes, so the trees grow to their full depth, where xor's
stop early) and read out with the worker's own forest_trees; the
web process's ForestPredictor then explains 1,000 records per call. Baselines in the same run, a
call of each in interleaved rounds (medians, and the median of the rounds' ratios, with spreads):
the same predictor's ``predict`` of the same records (what an answer without explanations costs),
and, when the ``shap`` package is importable (a bench extra, requirements-bench.txt, which `make
bench` installs; the service never imports it), shap.TreeExplainer
(path-dependent) on the same trees, the issue's goal being >= 1x; both give the same numbers,
checked before timing.

    .venv/bin/python bench/bench_explain.py [--quick] [--repeat N] [--train-rows N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from harness import Bench, arg_parser, interleaved, parse_args, run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import known_rows, shap_trees

BATCH = 1000


def trained_trees(bench: Bench, rows: list[dict], schema: dict, trees: int, depth: int) -> list[dict[str, Any]]:
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.linalg import Vectors

    from dataparser import DataParser
    from predictionservice.config import pick
    from predictionservice.sparkforest import forest_trees
    from predictionservice.sparksession import SparkSettings, get_spark

    spark = get_spark(pick(SparkSettings, bench.params(spark_master="local[2]")))
    bench.on_stop("SparkSession", spark.stop)
    parser = DataParser(schema)
    labels = [float(parser.class_names.index(r["y"])) for r in rows]
    frame = spark.createDataFrame(
        [(Vectors.dense(x), y) for x, y in zip(parser.encode(rows).tolist(), labels, strict=True)],
        ["features", "label"],
    )
    started = time.perf_counter()
    model = RandomForestClassifier(numTrees=trees, maxDepth=depth, seed=7).fit(frame)
    stored = forest_trees(model, spark)
    bench.figure("spark_train_seconds", time.perf_counter() - started, "s", f"{len(rows)} rows, {trees} trees")
    return stored


def shap_explainer(stored: list[dict[str, Any]]) -> Any:
    """shap.TreeExplainer over the same trees as arrays (helpers.shap_trees), or None without
    shap (requirements-bench.txt: `make bench` installs it)."""
    try:
        import shap
    except ImportError:
        return None
    return shap.TreeExplainer(shap_trees(stored), feature_perturbation="tree_path_dependent")


def per_second(work: Any) -> float:
    """Records per second of one call of work over BATCH records."""
    started = time.perf_counter()
    work()
    return BATCH / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, help="interleaved rounds, a call of each kind (default 5; --quick: 3)")
    parser.add_argument("--train-rows", type=int, help="rows the forest is trained on (default 20000; --quick: 5000)")
    args = parse_args(parser, {"repeat": 5, "train_rows": 20_000}, {"repeat": 3, "train_rows": 5000}, argv)
    from dataparser import DataParser
    from predictionservice.predictors import ForestPredictor

    with Bench("explain", args) as bench:
        rows, schema, _ = known_rows("logistic", args.train_rows, seed=7)
        trees = trained_trees(bench, rows, schema, 100, 8)
        bench.figure("leaves", sum(t["feature"].count(-1) for t in trees), "", "in 100 trees of depth <= 8")
        predictor = ForestPredictor(DataParser(schema), trees)
        records = [{k: v for k, v in r.items() if k != "y"} for r in rows[:BATCH]]
        explained = predictor.explanations(records)
        explainer = shap_explainer(trees)
        arms = {
            "explain": lambda: predictor.explanations(records),
            "predict": lambda: predictor.predict(records),
        }
        if explainer is None:
            bench.say("shap is not importable here: no shap.TreeExplainer baseline")
        else:
            check_against_shap(bench, predictor, explainer, records, explained)
            arms["shap"] = lambda: explainer.shap_values(predictor.parser.encode(records))
        bench.section(f"{BATCH} records per call, {args.repeat} interleaved rounds")
        for work in arms.values():
            work()  # untimed: first calls
        runs = interleaved(bench, list(arms), args.repeat, lambda arm: {"records_per_s": per_second(arms[arm])})
        for arm in arms:
            bench.median(f"{arm}_records_per_s", runs[arm]["records_per_s"], "records/s")
        rate = {arm: runs[arm]["records_per_s"] for arm in arms}
        bench.paired_ratio("explain / predict", rate["explain"], rate["predict"])
        if "shap" in rate:
            bench.paired_ratio("ours / shap.TreeExplainer", rate["explain"], rate["shap"], ">= 1")
        bench.figure("explained_records", len(explained))
        bench.save()
    return 0


def check_against_shap(bench: Bench, predictor: Any, explainer: Any, records: list[dict], explained: list) -> None:
    """Both give the same numbers (per schema feature, the predicted class's), before timing."""
    matrix = predictor.parser.encode(records)
    chosen = predictor.forest.evaluate(matrix).argmax(axis=1)
    theirs = np.asarray(explainer.shap_values(matrix))
    theirs = theirs[np.arange(BATCH), :, chosen] if theirs.ndim == 3 else theirs
    features = predictor.parser.features
    theirs = np.add.reduceat(theirs, [f.offset for f in features], axis=1)  # per schema feature
    ours = np.array([[e["contributions"][f.key] for f in features] for e in explained])
    bench.figure("largest_difference_from_shap", float(np.abs(theirs - ours).max()))


if __name__ == "__main__":
    sys.exit(run(main))
