"""The worker's Spark: its configuration (``start_conf``, as in the classic code), the one
SparkSession each worker process creates and reuses for every job, and reading and writing
collections through the project's MongoDB data source.

Only Celery worker processes import this module; the web process never starts a JVM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from predictionservice import sparkmongo
from predictionservice.mongotarget import CollectionRef

APP_NAME = "prediction-service"
_lock = threading.Lock()


@dataclass(frozen=True)
class SparkSettings:
    """The settings the worker's Spark session is started with (``config.pick`` fills it from the
    settings by these names): this module reads nothing else of the configuration."""

    spark_master: str
    spark_driver_memory: str
    spark_shuffle_partitions: int
    spark_ui: bool
    spark_ui_port: int
    spark_pyspark_python: str = ""
    spark_driver_host: str = ""
    spark_executor_memory: str = ""
    spark_executor_cores: int = 0
    spark_cores_max: int = 0


def start_conf(setup: SparkSettings) -> SparkConf:
    """SparkConf of the worker's session: app name and master from configuration."""
    master = setup.spark_master
    conf = (
        SparkConf()
        .setAppName(APP_NAME)
        .setMaster(master)
        .set("spark.driver.memory", setup.spark_driver_memory)
        .set("spark.sql.shuffle.partitions", str(setup.spark_shuffle_partitions))
        .set("spark.default.parallelism", str(setup.spark_shuffle_partitions))
        .set("spark.ui.enabled", "true" if setup.spark_ui else "false")
        .set("spark.ui.port", str(setup.spark_ui_port))
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.sql.execution.arrow.pyspark.enabled", "true")
        .set("spark.sql.adaptive.enabled", "false")  # tiny jobs: planning cost > its gain
        .set("spark.locality.wait", "0")
    )
    conf.set("spark.pyspark.python", setup.spark_pyspark_python or sys.executable)
    host = setup.spark_driver_host or ("127.0.0.1" if _loopback(master) else "")
    if host:
        conf.set("spark.driver.host", host).set("spark.driver.bindAddress", host)
    if not master.startswith("local"):
        conf.set("spark.executor.memory", setup.spark_executor_memory or "1g")
        for key, count in (
            ("spark.executor.cores", setup.spark_executor_cores),
            ("spark.cores.max", setup.spark_cores_max),
        ):
            if int(count or 0) > 0:
                conf.set(key, str(count))
    return conf


def _loopback(master: str) -> bool:
    """local[N], or a standalone master on this machine's loopback (the tests' cluster)."""
    return master.startswith("local") or master.startswith(("spark://127.", "spark://localhost"))


def package_zip(directory: Path) -> Path:
    """This library package as one zip for executors (``addPyFile``): an executor whose working
    directory is not the project imports the data source and what it needs from there."""
    package = Path(__file__).resolve().parent
    target = directory / f"{package.name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(package.glob("*.py")):
            archive.write(source, f"{package.name}/{source.name}")
    return target


def get_spark(setup: SparkSettings) -> SparkSession:
    """This process's SparkSession, created on first use and then reused by every job."""
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        os.environ.setdefault("PYSPARK_PYTHON", setup.spark_pyspark_python or sys.executable)
        spark = SparkSession.builder.config(conf=start_conf(setup)).getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        # Executors and the data source planner import the source from the shipped package.
        spark.sparkContext.addPyFile(str(package_zip(Path(tempfile.mkdtemp(prefix="prediction-service-")))))
        spark.dataSource.register(sparkmongo.MongoDataSource)
        return spark


def discard(timeout: float = 20.0) -> None:
    """Stop this process's SparkSession so the next job starts a fresh one: after a job was
    interrupted in the middle of a py4j call (a time limit), that link cannot be trusted. When the
    session does not stop cleanly, its JVM is killed and the next session launches a new one."""
    with _lock:
        context = SparkContext._active_spark_context
        if context is None:
            return
        stopped = threading.Event()

        def stop() -> None:
            try:
                context.stop()
                stopped.set()
            except Exception:
                logging.getLogger("prediction_service").warning("Spark did not stop cleanly", exc_info=True)

        stopper = threading.Thread(target=stop, daemon=True)
        stopper.start()
        stopper.join(timeout)
        if not stopped.is_set():
            process = getattr(SparkContext._gateway, "proc", None)
            if process is not None:
                process.kill()
            SparkContext._gateway = None
            SparkContext._jvm = None
        SparkContext._active_spark_context = None
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None


def cancel_group(group_id: str) -> None:
    """Cancel the Spark jobs of a job group (a job's id, see job_group) from any thread: its
    running action fails soon after with Spark's own cancellation error."""
    context = SparkContext._active_spark_context
    if context is not None:
        context.cancelJobGroup(group_id)


def jvm_exited() -> bool:
    """This process's Spark JVM has exited (the worker's process group was signalled): its
    session cannot be used again."""
    process = getattr(SparkContext._gateway, "proc", None)
    return process is not None and process.poll() is not None


def ui_url() -> str | None:
    """The address of this process's Spark UI (None while no session runs, or with the UI off).
    The context, not the thread's active session: CrossValidator reports from its own threads."""
    context = SparkContext._active_spark_context
    return context.uiWebUrl if context is not None else None


def read_collection(
    spark: SparkSession,
    ref: CollectionRef,
    *,
    partitions: int,
    partition_mb: float = 64.0,
    fields: list[str] | None = None,
    schema: Any = None,
    split_scans: bool = False,
) -> Any:
    reader = (
        spark.read.format(sparkmongo.FORMAT)
        .option("uri", ref.uri)
        .option("database", ref.db)
        .option("collection", ref.collection)
        .option("numPartitions", str(partitions))
        .option("partitionSizeMB", str(partition_mb))
    )
    if fields:
        reader = reader.option("fields", ",".join(fields))
    if split_scans:
        reader = reader.option("splitScans", "true")
    if schema is not None:
        reader = reader.schema(schema)
    return reader.load()


def write_collection(
    df: Any, ref: CollectionRef, *, batch_size: int, overwrite: bool = True, key: str | None = None
) -> None:
    """Write df through the MongoDB sink. key names a column unique per row that becomes each
    document's _id (a scored document takes its input's, value._id): a task attempt Spark
    retries then writes the same documents again, which the sink recognises, never twice."""
    if key is not None:
        from pyspark.sql import functions as F

        df = df.select(F.col(key).alias("_id"), *[c for c in df.columns if c != "_id"])
    (
        df.write.format(sparkmongo.FORMAT)
        .option("uri", ref.uri)
        .option("database", ref.db)
        .option("collection", ref.collection)
        .option("batchSize", str(batch_size))
        .mode("overwrite" if overwrite else "append")
        .save()
    )


@contextlib.contextmanager
def job_group(spark: SparkSession, group_id: str, description: str) -> Iterator[None]:
    """Run a job's Spark work under its id, so a failure (or a soft time limit) cancels what it
    left running instead of letting it occupy the shared session. An exit (SystemExit,
    KeyboardInterrupt) is let through untouched: it may have struck in the middle of a py4j
    exchange, and a call on that link would read the interrupted call's answer (``KeyError: 'p'``)
    and hide it."""
    context = spark.sparkContext
    context.setJobGroup(group_id, description, interruptOnCancel=True)
    exited = False
    try:
        yield
    except Exception:
        context.cancelJobGroup(group_id)
        raise
    except BaseException:
        exited = True
        raise
    finally:
        if not exited:
            for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
                context.setLocalProperty(key, None)  # type: ignore[arg-type]  # None removes it
