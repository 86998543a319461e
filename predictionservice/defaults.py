"""Every setting of the service, its default and the environment variable that overrides it.

This is the one place defaults live (in the spirit of rq's ``defaults.py``): ``parameters.json``
may set any key below, and the environment variable named beside it wins over both. The README's
configuration table is generated from this list (``python -m predictionservice.config --markdown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    default: Any
    env: str
    doc: str


SETTINGS: dict[str, Setting] = {
    # --- web server ---------------------------------------------------------------------------
    "host": Setting("127.0.0.1", "HOST", "Address the web server binds; loopback unless you mean it."),
    "port": Setting(5000, "PORT", "TCP port of the web server."),
    "threads": Setting(16, "THREADS", "CherryPy worker threads (concurrent requests)."),
    "autoreload": Setting(False, "AUTORELOAD", "Restart the web server when a source file changes."),
    "access_log": Setting(True, "ACCESS_LOG", "Paste TransLogger access log on stdout."),
    "log_level": Setting("INFO", "LOG_LEVEL", "Level of the service's own log."),
    "auth_token": Setting("", "AUTH_TOKEN", "When set, every route but /health needs 'Authorization: Bearer <token>'."),
    "max_body_bytes": Setting(
        4 * 1024 * 1024, "MAX_BODY_BYTES", "Largest request body outside dataset uploads (413 above)."
    ),
    "max_dataset_bytes": Setting(
        512 * 1024 * 1024, "MAX_DATASET_BYTES", "Largest body of PUT /datasets/<db>/<collection>."
    ),
    "max_records_per_request": Setting(10_000, "MAX_RECORDS_PER_REQUEST", "Most records one POST /predict/ may score."),
    # --- Redis --------------------------------------------------------------------------------
    "redis_url": Setting(
        "redis://127.0.0.1:6379/0",
        "REDIS_URL",
        "Redis for the Celery broker, task results and job records (its db number is used); make run "
        "starts its own instead unless $REDIS_URL names one.",
    ),
    "models_db": Setting(1, "MODELS_DB", "Redis database that holds the models, keyed by job id."),
    "redis_key_prefix": Setting(
        "",
        "REDIS_KEY_PREFIX",
        "Prefix of every Redis key the service writes (job records, models, Celery's queue and results): "
        "two services sharing one Redis knowingly each take their own.",
    ),
    "queue_name": Setting(
        "prediction_service", "QUEUE_NAME", "Celery queue the web server sends jobs to and the worker consumes."
    ),
    "redis_timeout": Setting(5.0, "REDIS_TIMEOUT", "Seconds before a Redis call counts as failed."),
    # --- MongoDB ------------------------------------------------------------------------------
    "mongodb_uri": Setting(
        "mongodb://127.0.0.1:27017/",
        "MONGODB_URI",
        "MongoDB holding the datasets; make run starts its own instead unless $MONGODB_URI names one.",
    ),
    "mongodb_allowed_hosts": Setting(
        [],
        "MONGODB_ALLOWED_HOSTS",
        "Extra host[:port] entries a job's mongodb:// URI may name (comma-separated in the "
        "environment); the host of mongodb_uri is always allowed.",
    ),
    "mongodb_timeout_ms": Setting(5000, "MONGODB_TIMEOUT_MS", "Server selection timeout of every MongoDB client."),
    # --- Spark (worker only) ------------------------------------------------------------------
    "spark_master": Setting("local[*]", "SPARK_MASTER", "Spark master: local[N] or spark://host:port."),
    "spark_driver_memory": Setting("2g", "SPARK_DRIVER_MEMORY", "Memory of the worker's Spark driver."),
    "spark_shuffle_partitions": Setting(
        4, "SPARK_SHUFFLE_PARTITIONS", "spark.sql.shuffle.partitions; small data, small number."
    ),
    "spark_read_partitions": Setting(
        4, "SPARK_READ_PARTITIONS", "Most partitions the MongoDB reader splits a collection into."
    ),
    "spark_partition_mb": Setting(
        64.0, "SPARK_PARTITION_MB", "About this much data per read partition (the connector's size)."
    ),
    "spark_write_batch": Setting(1000, "SPARK_WRITE_BATCH", "Documents per insert_many of the MongoDB writer."),
    "spark_cv_parallelism": Setting(2, "SPARK_CV_PARALLELISM", "Grid points CrossValidator fits at once."),
    "spark_ui": Setting(
        False,
        "SPARK_UI",
        "Turn on the Spark web UI of each worker process; a running job's status then gives its address.",
    ),
    "spark_ui_port": Setting(4040, "SPARK_UI_PORT", "First port the Spark UI tries (Spark takes the next free one)."),
    # --- Celery worker ------------------------------------------------------------------------
    "worker_concurrency": Setting(1, "WORKER_CONCURRENCY", "Celery pool processes; each holds a Spark driver."),
    "job_time_limit": Setting(3600, "JOB_TIME_LIMIT", "Seconds a job may run before its pool process is killed."),
    "job_max_attempts": Setting(
        3, "JOB_MAX_ATTEMPTS", "Starts of one job (re-runs after a lost worker) before it FAILs."
    ),
    "job_ttl": Setting(14 * 24 * 3600, "JOB_TTL", "Seconds job records and task results are kept for polling."),
    "algorithms": Setting(
        ["LogisticRegressionWrapper"],
        "ALGORITHMS",
        "Algorithm names a job may use (comma-separated in the environment); each is the module "
        "and class of the same name. Nothing else is ever imported.",
    ),
    # --- local stack (make run) ---------------------------------------------------------------
    "var_dir": Setting("var", "VAR_DIR", "Where make run keeps the data of the servers it starts (and its lock)."),
    "local_redis_port": Setting(
        6390, "LOCAL_REDIS_PORT", "Port of the redis-server make run starts for itself (unless REDIS_URL names one)."
    ),
    "local_mongo_port": Setting(
        27090, "LOCAL_MONGO_PORT", "Port of the MongoDB make run starts for itself (unless MONGODB_URI names one)."
    ),
    "bank_csv": Setting(
        "",
        "BANK_CSV",
        "CSV loaded into datasets.bank when empty; else ./data/bank-full.csv, else ../shared/data/bank-full.csv.",
    ),
}

# Job document defaults: what a job may leave out. regParam is a small positive grid: with no
# penalty a separable dataset drives the coefficients to infinity and every probability to
# exactly 0 or 1, and one-hot columns plus an intercept leave the coefficients not unique.
JOB_DEFAULTS: dict[str, Any] = {
    "regParam": [0.001, 0.01, 0.1],
    "elasticNetParam": [0.0],
    "iterations": 100,
    "numFolds": 3,
    "tol": 1e-6,
    "holdoutFraction": 0.2,
    "seed": 42,
    "standardization": True,
}

# Not settings: names of the environment variables read outside the table above.
PARAMETERS_FILE_ENV = "PARAMETERS_FILE"  # path of parameters.json for the worker and make run
DEFAULT_PARAMETERS_FILE = "parameters.json"
BANK_DATASET = ("datasets", "bank")
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})


def defaults() -> dict[str, Any]:
    """The built-in value of every setting, as a fresh dict (lists copied)."""
    return {k: (list(s.default) if isinstance(s.default, list) else s.default) for k, s in SETTINGS.items()}
