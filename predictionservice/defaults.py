"""Every setting of the service, its default and the environment variable that overrides it.

This is the one place defaults live (in the spirit of rq's ``defaults.py``): ``parameters.json``
may set any key below, and the environment variable named beside it wins over both. The manual's
configuration page is generated from this list (``python -m predictionservice.config --markdown``).
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
    "request_header_timeout": Setting(
        10.0,
        "REQUEST_HEADER_TIMEOUT",
        "Seconds a request line and headers may take to arrive, however slowly they trickle (408 after).",
    ),
    "request_body_min_rate": Setting(
        65536,
        "REQUEST_BODY_MIN_RATE",
        "Bytes per second a body must arrive at on average once its headers are in, after an allowance "
        "of request_header_timeout seconds (408 slower).",
    ),
    "drain_timeout": Setting(
        10.0,
        "DRAIN_TIMEOUT",
        "Seconds a stopping web server (SIGTERM, SIGINT) has to answer the requests in flight and those "
        "it accepted before it stopped accepting connections; what still runs after is cut.",
    ),
    "autoreload": Setting(False, "AUTORELOAD", "Restart the web server when a source file changes."),
    "access_log": Setting(True, "ACCESS_LOG", "Paste TransLogger access log on stdout."),
    "log_level": Setting("INFO", "LOG_LEVEL", "Level of the service's own log."),
    "allowed_hosts": Setting(
        [],
        "ALLOWED_HOSTS",
        "Host names requests may carry in their Host header besides localhost, 127.0.0.1, [::1] and "
        "'host' (comma-separated in the environment; '*' allows any): others are refused, so a web page "
        "cannot reach a token-less service through DNS rebinding.",
    ),
    "trusted_proxies": Setting(
        [],
        "TRUSTED_PROXIES",
        "Addresses or networks (CIDR) of the proxies in front of the web server (comma-separated in the "
        "environment): only from these is X-Forwarded-For believed, and the access log names the client it "
        "gives; from anyone else the peer's own address is logged.",
    ),
    "auth_token": Setting(
        "",
        "AUTH_TOKEN",
        "When set, every route but /health needs 'Authorization: Bearer <token or key>': this token is one "
        "key with every scope, and POST /keys/ makes keys with fewer (predict, read, train, admin).",
    ),
    "datasets_allowed_dbs": Setting(
        ["datasets"],
        "DATASETS_ALLOWED_DBS",
        "MongoDB databases the service may list, read, export, train on, score and write (comma-separated in "
        "the environment; '*' every one but the system databases), besides those it created through its own "
        "API (recorded in Redis when first written); any other is 403 and not listed.",
    ),
    "api_keys": Setting(
        [],
        "API_KEYS",
        "Keys given by configuration, each 'name:scope+scope:secret' (comma-separated in the environment; "
        "the secret at least 32 characters): like auth_token, they turn the keys on; not listed by GET /keys/, "
        "revoked by removing them.",
    ),
    "api_key_secret": Setting(
        "",
        "API_KEY_SECRET",
        "The server secret API keys are stored under (HMAC-SHA256 of each key); empty, one is drawn at random "
        "and kept in Redis, shared by every replica.",
    ),
    "session_ttl": Setting(8 * 3600, "SESSION_TTL", "Seconds a page session (/ui/login) lasts without a new sign-in."),
    "auth_failures_allowed": Setting(
        20,
        "AUTH_FAILURES_ALLOWED",
        "Wrong keys or tokens one client address may send per auth_failure_window before it is answered "
        "429 with Retry-After (counted in Redis: across replicas).",
    ),
    "auth_failure_window": Setting(
        60, "AUTH_FAILURE_WINDOW", "Seconds over which auth_failures_allowed is counted, from the first failure."
    ),
    "audit_max_entries": Setting(
        10_000, "AUDIT_MAX_ENTRIES", "Changes the audit trail (GET /audit/) keeps; older ones are dropped."
    ),
    "worker_ping_interval": Setting(
        2.0,
        "WORKER_PING_INTERVAL",
        "Seconds between the web server's pings of the Celery workers (one background thread); /health "
        "reports the workers that answered the last one.",
    ),
    "max_body_bytes": Setting(
        4 * 1024 * 1024, "MAX_BODY_BYTES", "Largest request body outside dataset uploads (413 above)."
    ),
    "max_dataset_bytes": Setting(
        512 * 1024 * 1024, "MAX_DATASET_BYTES", "Largest body of PUT /datasets/<db>/<collection>."
    ),
    "max_json_containers": Setting(
        200_000,
        "MAX_JSON_CONTAINERS",
        "Most arrays and objects one JSON request body may hold (dataset uploads aside), counted before it "
        "is parsed (400 above): each costs the parser about 100 bytes and a visit, however short in the body.",
    ),
    "max_records_per_request": Setting(
        10_000, "MAX_RECORDS_PER_REQUEST", "Most records one POST /predict/ or one V2 infer request may score."
    ),
    "max_answer_probabilities": Setting(
        500_000,
        "MAX_ANSWER_PROBABILITIES",
        "Most class probabilities one POST /predict/ or V2 infer answer may hold (records x classes, or "
        "records x top_probabilities): beyond, 413 naming the remedy; 20 classes x 10,000 records fit.",
    ),
    "model_watch": Setting(
        True,
        "MODEL_WATCH",
        "Subscribe to the model store's change channel and trust cached predictors while that subscription "
        "is alive, instead of reading each model's version token on every prediction (one Redis round trip "
        "per request); off, every prediction checks the token.",
    ),
    "model_watch_ping": Setting(
        0.25,
        "MODEL_WATCH_PING",
        "Seconds between the change subscription's pings; unanswered for four of them, cached predictors "
        "are dropped and each prediction checks the version token until the subscription is back.",
    ),
    "metrics": Setting(
        True,
        "METRICS",
        "Count and time every request and serve GET /metrics (Prometheus); off, nothing is counted and "
        "/metrics is 404 (bench/bench_metrics.py measures the difference).",
    ),
    # --- prediction log and feedback ------------------------------------------------------------
    "prediction_log": Setting(
        False,
        "PREDICTION_LOG",
        "Write every answered POST /predict/ and V2 infer to MongoDB (prediction_log_collection), one "
        "document per record, in batches by a background thread: never in the request's way (a full queue "
        "or a MongoDB down loses entries, counted in /metrics, never an answer). Off here, on under make run.",
    ),
    "prediction_log_collection": Setting(
        "monitoring.predictions",
        "PREDICTION_LOG_COLLECTION",
        "<database>.<collection> of the prediction log on mongodb_uri; POST /feedback/ stores labels on it and "
        "GET /registry/<name>/monitor reads each version's logged predictions there.",
    ),
    "prediction_log_sample": Setting(
        1.0,
        "PREDICTION_LOG_SAMPLE",
        "Share of requests logged, 0 to 1 (each request drawn at random; a batch is logged whole or not at all).",
    ),
    "prediction_log_retention_days": Setting(
        0,
        "PREDICTION_LOG_RETENTION_DAYS",
        "Days a logged prediction is kept (a TTL index on its time; MongoDB removes it after); 0 keeps it.",
    ),
    "prediction_log_queue_size": Setting(
        10_000,
        "PREDICTION_LOG_QUEUE_SIZE",
        "Requests waiting for the log's writer; a request answered while it is full is not logged "
        "(counted as dropped, reason queue_full).",
    ),
    "prediction_log_batch_size": Setting(
        500, "PREDICTION_LOG_BATCH_SIZE", "Most log documents the writer sends in one insert."
    ),
    "prediction_log_linger_seconds": Setting(
        0.05,
        "PREDICTION_LOG_LINGER_SECONDS",
        "How long the log's writer waits after a document for more to fill its insert (up to "
        "prediction_log_batch_size): fewer, fuller inserts cost the web process less; a document reaches "
        "MongoDB at most this much later. 0 sends what is queued at once.",
    ),
    "shadow_queue_size": Setting(
        1000,
        "SHADOW_QUEUE_SIZE",
        "Requests waiting for the shadow's worker (PUT /registry/<name>/traffic with mode shadow: a candidate "
        "scores every request to the name off the request's thread); while it is full a request is not shadowed "
        "(counted as dropped, reason queue_full), never delayed. Shadow answers go to the prediction log: "
        "with prediction_log off nothing is scored (counted, reason not_logged).",
    ),
    "feedback_max_records": Setting(
        1000, "FEEDBACK_MAX_RECORDS", "Most labels one POST /feedback/ may carry in its records."
    ),
    "max_dataset_columns": Setting(
        1000, "MAX_DATASET_COLUMNS", "Most columns of an uploaded CSV, and fields of an uploaded JSON document."
    ),
    "max_csv_header_chars": Setting(
        64 * 1024, "MAX_CSV_HEADER_CHARS", "Longest header line of an uploaded CSV, in characters."
    ),
    "schema_sample_docs": Setting(
        50_000,
        "SCHEMA_SAMPLE_DOCS",
        "GET /datasets/<db>/<collection>/schema reads a random sample of this many documents of a larger "
        "collection, not all of it.",
    ),
    "schema_max_label_values": Setting(
        100,
        "SCHEMA_MAX_LABEL_VALUES",
        "Most classes a classification label may hold for a schema to be inferred (its value map is held "
        "in memory and stored with the model); a regression label (a number) has no such bound.",
    ),
    "report_max_classes": Setting(
        50,
        "REPORT_MAX_CLASSES",
        "Most classes a scored dataset's page compares its predictions with (a confusion matrix is this "
        "squared); a field with more values is not offered, and one found to have more shows no matrix.",
    ),
    "max_queued_jobs": Setting(
        50,
        "MAX_QUEUED_JOBS",
        "Jobs that may wait in the queue; a submission beyond is 429 with Retry-After (each waiting "
        "message holds its whole job document in Redis).",
    ),
    "max_queued_jobs_per_client": Setting(
        10,
        "MAX_QUEUED_JOBS_PER_CLIENT",
        "Jobs one client (by its address, as the web server sees it) may have waiting in the queue; a "
        "submission beyond is 429 with Retry-After, so that one client cannot fill max_queued_jobs for everyone.",
    ),
    "max_job_fits": Setting(
        100,
        "MAX_JOB_FITS",
        "Most model fits one training job may ask for: its algorithm's grid lists multiplied (regParam x "
        "elasticNetParam, numTrees x maxDepth) x numFolds.",
    ),
    "max_iterations": Setting(1000, "MAX_ITERATIONS", "Largest 'iterations' a training job may ask for."),
    "max_label_classes": Setting(
        1000,
        "MAX_LABEL_CLASSES",
        "Most classes a training job's label may map (its schema's label values): Spark planned a "
        "100,000-class label map for 11 minutes before training began.",
    ),
    "max_forest_nodes": Setting(
        2**20,
        "MAX_FOREST_NODES",
        "Largest numTrees x 2^maxDepth of a random forest job's grid point: the most nodes its trees may "
        "grow, which is what one fit costs (the default job: 20 x 2^5).",
    ),
    "max_feature_width": Setting(
        10_000,
        "MAX_FEATURE_WIDTH",
        "Largest feature vector a training job's schema may make (numeric features plus one-hot positions).",
    ),
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
    "spark_driver_host": Setting(
        "",
        "SPARK_DRIVER_HOST",
        "Address executors reach the driver (the Celery worker) at; empty: 127.0.0.1 for local[N] "
        "and for a spark:// master on this machine's loopback, Spark's own choice otherwise.",
    ),
    "spark_executor_memory": Setting("1g", "SPARK_EXECUTOR_MEMORY", "Memory of each executor on a cluster."),
    "spark_executor_cores": Setting(
        0, "SPARK_EXECUTOR_CORES", "Cores of each executor on a cluster; 0: all a cluster worker offers."
    ),
    "spark_cores_max": Setting(
        0, "SPARK_CORES_MAX", "Most cores the service's application takes from a cluster; 0: no limit."
    ),
    "spark_pyspark_python": Setting(
        "",
        "SPARK_PYSPARK_PYTHON",
        "The executors' Python (spark.pyspark.python); empty: the worker's own interpreter. It needs "
        "pymongo, pyarrow and numpy; the library itself is shipped to executors as a zip.",
    ),
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
    "spark_scratch_dir": Setting(
        "",
        "SPARK_SCRATCH_DIR",
        "Folder for a fitted forest's nodes on their way from Spark to the stored model (default: the "
        "system's temporary folder); on a multi-machine cluster, one every Spark node sees at the same path.",
    ),
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
    "job_heartbeat_interval": Setting(
        10.0, "JOB_HEARTBEAT_INTERVAL", "Seconds between a running job's heartbeats (its worker process is alive)."
    ),
    "job_heartbeat_timeout": Setting(
        45.0,
        "JOB_HEARTBEAT_TIMEOUT",
        "Seconds without a heartbeat after which a running job's worker counts as lost and the job is "
        "re-queued for another worker (or FAILED after job_max_attempts).",
    ),
    "job_reaper_interval": Setting(
        10.0, "JOB_REAPER_INTERVAL", "Seconds between each worker's look for jobs whose worker was lost."
    ),
    "job_ttl": Setting(14 * 24 * 3600, "JOB_TTL", "Seconds job records and task results are kept for polling."),
    "algorithms": Setting(
        ["LogisticRegressionWrapper", "LinearRegressionWrapper", "RandomForestWrapper"],
        "ALGORITHMS",
        "Algorithm names a job may use (comma-separated in the environment); each is the module "
        "and class of the same name. Nothing else is ever imported.",
    ),
    # --- scheduler (celery beat with redbeat: retraining schedules) ----------------------------
    "schedule_min_seconds": Setting(
        60,
        "SCHEDULE_MIN_SECONDS",
        "Shortest 'every_seconds' a retraining schedule may have (PUT /registry/<name>/schedule); shorter is 400.",
    ),
    "schedule_tick_seconds": Setting(
        5.0,
        "SCHEDULE_TICK_SECONDS",
        "Seconds between the scheduler's looks at its schedule (celery beat's loop): a new or changed "
        "schedule is seen within it. The running scheduler holds a lock in Redis for 5 times this; a "
        "killed one's lock expires then and a waiting scheduler process takes over.",
    ),
    # --- training profiles and the monitor (docs/API.md, "Quality and drift") ------------------
    "profile_bins": Setting(
        10,
        "PROFILE_BINS",
        "Quantile bins of each numeric feature (and of a regressor's prediction) in the training profile "
        "kept with every model; ties merge bins.",
    ),
    "profile_top_categories": Setting(
        20,
        "PROFILE_TOP_CATEGORIES",
        "Most frequent categories of a categorical feature the training profile counts one by one; the rest "
        "(and, live, any category never seen) count as one bin '(other)'.",
    ),
    "monitor_window_seconds": Setting(
        86400,
        "MONITOR_WINDOW_SECONDS",
        "The window GET /registry/<name>/monitor looks at when no 'since' is given: this many seconds back.",
    ),
    "monitor_max_records": Setting(
        100_000,
        "MONITOR_MAX_RECORDS",
        "Most logged predictions one monitor report reads (the newest of the window; the report says so).",
    ),
    "drift_p_value": Setting(
        0.01,
        "DRIFT_P_VALUE",
        "A feature (or the score) is drifted when its chi-square test against the training profile has a "
        "p-value below this AND its PSI is at least drift_min_psi: with windows drawn like the training data, "
        "at most this fraction of features is flagged.",
    ),
    "drift_min_psi": Setting(
        0.1,
        "DRIFT_MIN_PSI",
        "The population stability index a drifted feature must reach too (0.1: a moderate shift), so a very "
        "large window does not flag a negligible difference the chi-square test alone would call significant.",
    ),
    "drift_check_lag_seconds": Setting(
        60.0,
        "DRIFT_CHECK_LAG_SECONDS",
        'A schedule on drift ("when": "drift") checks the predictions logged up to this many seconds before its '
        "tick: the log is written in batches after the answers, and a document arriving after its window was "
        "checked would never be. Longer than the log's usual delay; the next check starts where this one ended.",
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

# Job document defaults: what a job of any algorithm may leave out (what it may leave out of the
# algorithm's own fields is that class's DEFAULTS, e.g. LogisticRegressionWrapper.DEFAULTS).
JOB_DEFAULTS: dict[str, Any] = {
    "numFolds": 3,
    "holdoutFraction": 0.2,
    "seed": 42,
}

# Limits of the request formats themselves (not settings: the API is the same on every server).
MAX_NUMBER_CHARS = 100  # a numeric string longer than this is refused unparsed: no number needs more
MAX_SCHEMA_ERRORS = 20  # a refused body reports its first errors; finding every one can cost gigabytes
MAX_SUGGESTED_NAMES = 5  # unknown fields of a document given a "did you mean" each; the rest only counted
# A CSV upload's bad lines (wrong number of fields, malformed quoting, a row over 16 MiB) are all
# counted; the answer names this many with their reasons (docs/API.md, "Partial batches"), the
# whole file refused by default, the good lines loaded with ?on_error=skip.
MAX_BAD_LINES_NAMED = 100
# A /predict/ batch refused for its bad records (on_error "fail") names every problem of every bad
# record, up to this many (each a record's index, field and problem); the message says how many more.
MAX_RECORD_ERRORS = 100
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # MongoDB's own limit of one document (BSON)
DATASET_BATCH_BYTES = 1024 * 1024  # JSON text of a dataset upload parsed before its batch is inserted
FINAL_UPDATE_ATTEMPTS = 6  # a job's COMPLETED or FAILED is written this often before its error is let through
FINAL_UPDATE_FIRST_WAIT = 0.5  # seconds before the second attempt; each wait doubles (15.5 s in all)
JOB_CANCEL_POLL = 1.0  # seconds between a running job's looks for a cancel (DELETE /jobs/<id>)
# Numbers an online batch's arrays hold at once (features, class scores, a forest's leaf values):
# 8 MB of float64; a bigger batch is scored in slices of rows (predictors.Predictor.predict).
PREDICT_CHUNK_VALUES = 1_000_000
QUEUE_FULL_RETRY_AFTER = 30  # seconds a 429 for a full job queue tells the client to wait
API_KEY_PREFIX = "psk_"  # every API key starts so: a leaked one is recognisable in a log or a scan
MAX_KEY_NAME_CHARS = 100
MAX_AUDIT_LIST = 1000  # most entries one GET /audit/ answers

# The registry of named models (docs/API.md, "Named models"; predictionservice.registry): the
# promotion policy a new name starts with. The metric follows the name's task unless a PUT
# /registry/<name>/policy chose one; lower is better for the metrics listed below.
POLICY_METRICS = {"binary": "auc", "multiclass": "log_loss", "regression": "rmse"}
POLICY_MIN_DELTA = 0.0  # a new version must beat production by more than this (0: strictly better)
POLICY_AUTO_PROMOTE = True  # the gate moves production itself when a new version wins
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})
MAX_COMPARED = 6  # models one comparison (POST /models/compare, the compare page) sets side by side
# The held-out metrics a policy may compare, by task (what training measures: docs/API.md).
TASK_METRICS = {
    "binary": ("auc", "area_under_pr", "accuracy", "log_loss"),
    "multiclass": ("accuracy", "f1", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
REGISTRY_HISTORY = 1000  # alias moves a name keeps (newest first); older ones are dropped
REGISTRY_RETRAINS = 200  # retrains (queued, skipped, failed) a name keeps (newest first)
REFERENCE_CACHE = 4096  # names whose resolution a web process keeps (references.References)

# Not settings: names of the environment variables read outside the table above.
PARAMETERS_FILE_ENV = "PARAMETERS_FILE"  # path of parameters.json for the worker and make run
DEFAULT_PARAMETERS_FILE = "parameters.json"
BANK_DATASET = ("datasets", "bank")
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})


def defaults() -> dict[str, Any]:
    """The built-in value of every setting, as a fresh dict (lists copied)."""
    return {k: (list(s.default) if isinstance(s.default, list) else s.default) for k, s in SETTINGS.items()}
