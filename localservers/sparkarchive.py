"""A class-data-sharing archive of what a worker's JVM loads to train and score, for the tests.

    python -m localservers.sparkarchive .venv/spark-classes.jsa

Every Spark driver the tests start (their own, the workers', those of make run) spends its first
seconds reading, parsing and verifying the same tens of thousands of classes from pyspark's jars.
A JVM started with ``-XX:SharedArchiveFile`` maps them from an archive instead. ``make test``
builds the archive once per virtualenv, and tests/conftest.py starts every JVM of the suite with
``jvm_options``.

To fill the archive, this does what a worker does, in a JVM started with
``-XX:ArchiveClassesAtExit``: it trains each algorithm on the example data of examples/ (read
through the MongoDB data source from an embedded MongoDB) and scores a collection with a forest.
A class the archive lacks loads as usual. A JVM of another JDK, or with other jars on its class
path, ignores the archive; ``jvm_options`` silences its warning about that.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

# Every JVM the tests start lives seconds to a minute: the C2 compiler's threads and G1 spend
# more CPU than their code saves before it ends, and two test streams share two cores.
TEST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# A JVM whose class path differs (the Spark launcher's, a cluster daemon's) ignores the archive.
QUIET_CDS = "-Xlog:cds=off,cds+dynamic=off"
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# make test's archive: the running virtualenv's, since it belongs to that venv's pyspark jars.
ARCHIVE = Path(sys.prefix) / "spark-classes.jsa"
JOBS = {
    "random_forest_xor.json": "xor.csv",
    "linear_regression.json": "linear.csv",
    "logistic_regression_classes5.json": "classes5.csv",
}


def jvm_options(archive: Path) -> str:
    """JDK_JAVA_OPTIONS for the tests' JVMs: the archive when it has been built."""
    if archive.is_file():
        return f"{TEST_JVM_OPTIONS} -XX:SharedArchiveFile={archive} {QUIET_CDS}"
    return TEST_JVM_OPTIONS


def mapped(pid: int, archive: Path) -> bool:
    """Whether process pid maps archive. A JVM that cannot use an archive (another JDK, other
    jars) says nothing with QUIET_CDS and unmaps it: only its memory map tells."""
    return str(archive) in Path(f"/proc/{pid}/maps").read_text()


class _Progress:
    """The handler a job reports to; nobody reads these reports."""

    def __init__(self) -> None:
        self.job_id = f"archive-{uuid.uuid4().hex[:8]}"

    def progress(self, message: str, progress: float) -> None:
        pass


def _jobs() -> list[tuple[dict[str, Any], Path]]:
    """The example jobs with their data, and a binary logistic regression on the forest's."""
    import json

    def light(document: dict[str, Any]) -> dict[str, Any]:  # the same classes, from a smaller grid
        return {**{k: v[:1] if isinstance(v, list) else v for k, v in document.items()}, "numFolds": 2}

    jobs = [(light(json.loads((EXAMPLES / name).read_text())), EXAMPLES / csv) for name, csv in JOBS.items()]
    forest, data = jobs[0]
    binary = {k: v for k, v in forest.items() if k not in ("numTrees", "maxDepth")}
    return [*jobs, ({**binary, "name": "LogisticRegressionWrapper"}, data)]


def _work(params: dict[str, Any]) -> None:
    """Train every job and score the forest's input with its model, as a worker would."""
    import redis

    from modelfactory import ModelFactory, Resources
    from predictionservice import datasetloader
    from predictionservice.config import pick
    from predictionservice.job import ScoringJob, TrainingJob
    from predictionservice.modelstore import ModelStore
    from predictionservice.mongotarget import MongoClients, MongoTargets
    from predictionservice.sparksession import SparkSettings, get_spark

    factory = ModelFactory(["RandomForestWrapper", "LinearRegressionWrapper", "LogisticRegressionWrapper"])
    resolve = pick(MongoTargets, params).resolve
    clients = MongoClients()
    resources = Resources(params, ModelStore(redis.Redis.from_url(params["redis_url"])), clients,
                          lambda: get_spark(pick(SparkSettings, params)))  # fmt: skip
    models, loaded = [], set()
    for document, data in _jobs():
        job = TrainingJob.from_document(document, factory.algorithm_class, resolve)
        if data not in loaded:
            with clients.collection(job.source) as collection:
                datasetloader.load_csv(collection, data)
            loaded.add(data)
        models.append(factory.algorithm(document["name"]).train(job, resources, _Progress()))
    scoring = {"modelkey": "m", "inputCollection": "examples.xor", "outputCollection": "examples.scores"}
    factory.algorithm("RandomForestWrapper").predict_all(
        models[0], ScoringJob.from_document(scoring, resolve), resources, _Progress()
    )


def _end_jvm() -> None:
    """Stop Spark and wait for its JVM to exit, which is when it writes the archive: the JVM
    ends when its standard input, held by this process, closes."""
    from pyspark import SparkContext

    process = SparkContext._gateway.proc
    SparkContext._active_spark_context.stop()
    process.stdin.close()
    process.wait(120)


def build(archive: Path) -> None:
    """Run the work in a JVM that dumps its classes at exit, into archive (whole or not at all)."""
    from localservers import embedded
    from predictionservice.config import load_parameters

    archive = archive.resolve()
    partial = archive.with_name(f".{archive.name}.{os.getpid()}")
    os.environ["JDK_JAVA_OPTIONS"] = TEST_JVM_OPTIONS
    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-java-options -XX:ArchiveClassesAtExit={partial} pyspark-shell"
    with tempfile.TemporaryDirectory(prefix="spark-archive-") as scratch:
        folder = Path(scratch)
        redis_server = embedded.start_redis(embedded.free_port(), folder / "redis", persistent=False)
        mongo = embedded.start_mongo(embedded.free_port(), folder / "mongo", use_mongod=False)
        try:
            params = load_parameters(
                environ={},
                overrides={"redis_url": redis_server.url, "mongodb_uri": mongo.url, "spark_master": "local[2]",
                           "spark_shuffle_partitions": 2, "spark_driver_memory": "1g"},
            )  # fmt: skip
            _work(params)
            _end_jvm()
        finally:
            mongo.stop()
            redis_server.stop()
    if not partial.is_file():
        raise RuntimeError(f"the JVM wrote no archive at {partial}")
    # A JVM given a damaged archive (a dump cut short by a full disk) dies of SIGBUS: prove it whole.
    if not usable(partial):
        partial.unlink()
        raise RuntimeError(f"a Spark session could not use the archive dumped at {partial}: removed")
    os.replace(partial, archive)


def usable(archive: Path) -> bool:
    """Whether a Spark session started with archive maps it: ``check`` in a process of its own
    (a JVM reads JDK_JAVA_OPTIONS when it starts), in a scratch folder for a crash's hs_err file."""
    with tempfile.TemporaryDirectory(prefix="spark-archive-check-") as scratch:
        command = [sys.executable, "-m", "localservers.sparkarchive", "--check", str(archive)]
        return subprocess.run(command, cwd=scratch, env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode == 0


def check(archive: Path) -> None:
    """Start a Spark session with the archive and see that its JVM maps it (run by ``usable``)."""
    from pyspark.sql import SparkSession

    os.environ["JDK_JAVA_OPTIONS"] = jvm_options(archive)
    os.environ.pop("PYSPARK_SUBMIT_ARGS", None)
    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        if not mapped(spark.sparkContext._gateway.proc.pid, archive):
            raise SystemExit(f"the JVM did not map {archive}")
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--check":
        check(Path(args[1]).resolve())
        return 0
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    build(Path(args[0]))
    print(f"wrote {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
