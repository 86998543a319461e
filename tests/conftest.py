"""Fixtures only (what tests share besides fixtures is in helpers.py). Session fixtures start
real servers once; function fixtures isolate each test.

* ``redis_url``: a private redis-server on a free port (no persistence), per session;
  ``redis_db`` hands each test a flushed database of it.
* ``mongo_uri``: ``$MONGODB_URI`` (a real mongod) when set, else a SecantusDB server process
  on a free port; ``mongo_db`` hands each test a database of its own, dropped afterwards.
* ``spark``: one ``local[2]`` session (UI off, 2 shuffle partitions), what a worker builds.

Every test is in one tier, a marker (``make test-fast`` runs the first two):

* ``unit``: no server at all;
* ``app``: the app in process (Flask's test client) or the library, on the session's real Redis
  and MongoDB;
* ``system``: the service's own processes (web server, Celery worker, ``make run``), Spark, a
  browser, HAProxy, a notebook.

A test module may declare its tier (``pytestmark = pytest.mark.system``); otherwise the tier
follows from what the test uses: a fixture that starts Spark or the service's processes, or a
module that starts them itself, is ``system``; a fixture on Redis or MongoDB is ``app``.

A test file is named after what it tests (tests/test_testsuite.py holds it): ``test_<module>.py``
(``test_<package>_<module>.py`` where two packages share a name, ``test_<module>_<aspect>.py`` for
an aspect wanting a file of its own), and ``test_flow_<flow>.py`` for a flow through the running
service (training, scoring, a worker lost, an outage), ``test_hostile_<surface>.py`` for hostile
input against one surface of it. The tier is independent of the name.

The files run heaviest first, by the seconds tests/filetimes.json records (``heaviest_first`` in
helpers.py; ``make test-times`` records them again with ``--record-file-times``).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pymongo
import pytest
import redis

from helpers import (
    BANK_CSV,
    CANARY,
    E2E_BANK,
    EXAMPLES,
    JOB,
    MODEL,
    MONGO,
    TOKEN,
    XOR_JOB,
    InProcess,
    Service,
    heaviest_first,
    recorded_file_times,
    snapshot,
    write_file_times,
)
from localservers import embedded, sparkarchive
from predictionservice import datasetloader, sampledata
from predictionservice.config import load_parameters

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# Every JVM the tests start (their Spark sessions, the workers', make run's) runs with C1 alone and
# the serial collector, and maps its classes from the archive make test builds when there is one
# (localservers/sparkarchive.py says why).
os.environ.setdefault("JDK_JAVA_OPTIONS", sparkarchive.jvm_options(sparkarchive.ARCHIVE))

# job.json as the session's bank trainings send it (test_flow_training reads the two fields back)
BANK_JOB = {**JOB, "description": "who subscribes a term deposit", "tags": ["uci"]}

TIERS = ("unit", "app", "system")
# Fixtures that start Spark or the service's processes (directly or through another of these).
SYSTEM_FIXTURES = {
    "spark", "service", "token_service", "xor_model", "bank_over_http", "bank_sample", "bank_training", "bank_model",
}  # fmt: skip
SERVER_FIXTURES = {"redis_url", "mongo_uri"}  # every fixture on Redis or MongoDB depends on one
# A module that starts the service's processes, a browser or a notebook itself.
SPAWNS = re.compile(r"\b(Service|StackRun|Popen|ServiceProcesses|NotebookClient)\(|webdriver\.")
STARTS_STORES = re.compile(r"\bstart_(redis|mongo)\(")  # a module that starts a Redis or MongoDB of its own


def pytest_sessionstart(session):
    """SIGTERM (a CI timeout, `timeout`, a kill) ends the run as Ctrl-C does, so the session
    fixtures' finalizers stop the servers they started; pytest's default is to die at once and
    leave them running. A second SIGTERM while they stop is ignored (SIGKILL still works)."""
    signal.signal(signal.SIGTERM, _terminated)


def pytest_addoption(parser):
    parser.addoption(
        "--record-file-times", metavar="PATH",
        help="write the seconds each test file took to PATH (make test-times: tests/filetimes.json)",
    )  # fmt: skip


def pytest_configure(config):
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: a test of the {tier} tier (tests/conftest.py says which is which)")


def pytest_collection_modifyitems(config, items):
    sources: dict[Path, str] = {}
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue  # declared by its module or itself
        path = Path(item.fspath)
        source = sources.setdefault(path, path.read_text())
        names = set(item.fixturenames)
        if names & SYSTEM_FIXTURES or SPAWNS.search(source):
            item.add_marker("system")
        elif names & SERVER_FIXTURES or STARTS_STORES.search(source):
            item.add_marker("app")
        else:
            item.add_marker("unit")
    items[:] = heaviest_first(items, recorded_file_times(), _tier)


def _tier(item) -> str:
    return next(tier for tier in TIERS if item.get_closest_marker(tier))


FILE_SECONDS: dict[str, float] = {}  # test file name -> the seconds its tests' phases took so far


def pytest_runtest_logreport(report):
    """Each phase's seconds, added to its file's (the streams' reports reach the controller too)."""
    name = Path(report.nodeid.split("::")[0]).name
    FILE_SECONDS[name] = FILE_SECONDS.get(name, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    """With --record-file-times, the controller (not a stream) writes what the run took by file."""
    path = session.config.getoption("record_file_times")
    if path and not hasattr(session.config, "workerinput"):
        write_file_times(FILE_SECONDS, Path(path))


def _terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def bank_csv() -> Path:
    if BANK_CSV is None:
        places = ", ".join(str(p) for p in sampledata.bank_csv_candidates(os.environ.get("BANK_CSV")))
        pytest.fail(f"bank-full.csv not found (set BANK_CSV); looked at {places}")
    return BANK_CSV


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    server = embedded.start_redis(embedded.free_port(), tmp_path_factory.mktemp("redis"), persistent=False)
    yield server.url
    server.stop()


@pytest.fixture()
def redis_db(redis_url):
    """A flushed Redis database (db 9) for tests of the stores; the service tests use 0 and 1."""
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/9")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    server = embedded.start_mongo(embedded.free_port(), tmp_path_factory.mktemp("mongo"), use_mongod=False)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def mongo_client(mongo_uri):
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=10_000)
    yield client
    client.close()


@pytest.fixture()
def mongo_db(mongo_client):
    """A database of this test's own."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield mongo_client[name]
    mongo_client.drop_database(name)


@pytest.fixture(scope="session")
def bank_collection(mongo_client, bank_csv):
    """datasets.bank loaded once per session; tests must not modify it."""
    collection = mongo_client["datasets"]["bank"]
    if collection.estimated_document_count() != 45211:
        datasetloader.load_csv(collection, bank_csv)
    return collection


@pytest.fixture(scope="session")
def base_params(redis_url, mongo_uri):
    return load_parameters(
        environ={},
        overrides={
            "redis_url": redis_url,
            "mongodb_uri": mongo_uri,
            "spark_master": "local[2]",
            "spark_shuffle_partitions": 2,
            "spark_driver_memory": "1g",
            # tests send wrong tokens by the hundred from one address: only test_authlimit is limited
            "auth_failures_allowed": 1_000_000,
            # tests make their databases directly: only test_alloweddbs holds the default's limits
            "datasets_allowed_dbs": ["*"],
            # schedules of a second or two, and a scheduler that looks twice a second (lock: 2 s)
            "schedule_min_seconds": 1,
            "schedule_tick_seconds": 0.5,
            # a drift check reads the log up to a second ago (its documents are written within it)
            "drift_check_lag_seconds": 1.0,
        },
    )


@pytest.fixture(scope="session")
def spark(base_params):
    from predictionservice import sparksession
    from predictionservice.config import pick

    session = sparksession.get_spark(pick(sparksession.SparkSettings, base_params))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def service(tmp_path_factory, base_params, bank_collection):
    started = Service(tmp_path_factory.mktemp("service"), base_params)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def token_service(tmp_path_factory, base_params, service):
    """A second web server (no worker of its own: the session's takes its jobs) with a token."""
    started = Service(tmp_path_factory.mktemp("token-service"), {**base_params, "auth_token": TOKEN}, worker=False)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def xor_model(service):
    """examples/xor.csv loaded through the API into examples.xor and a small forest trained on it."""
    with open(EXAMPLES / "xor.csv", "rb") as body:
        response = service.request("PUT", "/datasets/examples/xor", data=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    final, _ = service.train(XOR_JOB)
    assert final["status"] == "COMPLETED", final
    return final["model_key"]


@pytest.fixture(scope="session")
def bank_over_http(service, bank_csv):
    """bank-full.csv PUT through the API into e2e.bank."""
    with open(bank_csv, "rb") as body:
        response = service.request("PUT", "/datasets/e2e/bank", data=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 45211
    return E2E_BANK


@pytest.fixture(scope="session")
def bank_sample(bank_collection):
    """Every 9th row of datasets.bank (5,024, over its whole time span: the file is in date order)
    in datasets.bank_sample: for tests about a worker's life cycle, not the model, a training a
    fifth as long on the same schema, and no service needed to load it."""
    sample = bank_collection.database["bank_sample"]
    if sample.estimated_document_count() == 0:
        rows = itertools.islice(bank_collection.find({}, {"_id": 0}), 0, None, 9)
        sample.insert_many(list(rows))
    return sample.full_name


@pytest.fixture(scope="session")
def bank_training(service, bank_over_http):
    """job.json trained on all the uploaded rows, as a user would: (final status, statuses seen).
    For the end-to-end training test; tests that need a bank model take ``bank_model``."""
    return service.train({**BANK_JOB, "inputCollection": bank_over_http})


@pytest.fixture(scope="session")
def bank_model(service, bank_sample):
    """job.json's model, for tests that need a model of the bank's schema, not a good one
    (scoring, the hostile batteries, V2, the replicas): trained on the ninth of the rows in
    ``bank_sample``, a fraction of the time of all of them, once per session."""
    final, _ = service.train({**BANK_JOB, "inputCollection": bank_sample})
    assert final["status"] == "COMPLETED", final
    return final["model_key"]


# ------------------------------------------------------------ hostile batteries (per module)


@pytest.fixture(scope="module")
def canary():
    """A listener standing for a foreign MongoDB host: every connection to it is recorded."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    hits: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            hits.append(peer)
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], hits
    stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture(scope="module")
def before(service, bank_over_http, bank_model, mongo_client):
    return snapshot(service, mongo_client)


@pytest.fixture(scope="module")
def fill(service, bank_model, canary, before):
    mongo = service.params["mongodb_uri"].split("//", 1)[1].split("/", 1)[0]
    return {MODEL: bank_model, MONGO: mongo, CANARY: str(canary[0])}


@pytest.fixture(scope="session")
def client(base_params):
    """The app in process on the session's Redis and MongoDB, through Flask's test client: for
    everything that needs no real HTTP server (no worker runs behind it: nothing may be queued)."""
    from modelservice import modelservice

    return InProcess(modelservice(base_params))


@pytest.fixture()
def unconsumed(base_params, bank_collection):
    """The app in process with a queue and keys of its own (no worker consumes them: a job it
    accepts stays queued, to be looked at); its keys removed afterwards."""
    from modelservice import modelservice

    prefix = f"t{uuid.uuid4().hex[:8]}:"
    app = InProcess(modelservice({**base_params, "queue_name": "nobody", "redis_key_prefix": prefix}))
    yield app
    services = app.app.extensions["prediction_service"]
    for key in services.redis.scan_iter(prefix + "*"):
        services.redis.delete(key)
