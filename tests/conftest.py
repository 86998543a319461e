"""Session fixtures start real servers once; function fixtures isolate each test.

* ``redis_url``: a private redis-server on a free port (no persistence), per session;
  ``redis_db`` hands each test a flushed database of it.
* ``mongo_uri``: ``$MONGODB_URI`` (a real mongod) when set, else a SecantusDB server process
  on a free port; ``mongo_db`` hands each test a database of its own, dropped afterwards.
* ``spark``: one ``local[2]`` session (UI off, 2 shuffle partitions), what a worker builds.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pymongo
import pytest
import redis
import requests

import datasetloader
import embedded
from config import load_parameters
from serviceprocesses import ServiceProcesses

ROOT = Path(__file__).resolve().parent.parent
BANK_CSV = datasetloader.find_bank_csv(os.environ.get("BANK_CSV"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def bank_csv() -> Path:
    if BANK_CSV is None:
        places = ", ".join(str(p) for p in datasetloader.bank_csv_candidates(os.environ.get("BANK_CSV")))
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
        },
    )


@pytest.fixture(scope="session")
def spark(base_params):
    import sparksession

    session = sparksession.get_spark(base_params)
    yield session
    session.stop()


# ------------------------------------------------------------------------------ the service


JOB = json.loads((ROOT / "job.json").read_text())
FINAL = ("COMPLETED", "FAILED")

# API.md, route by route: the methods each path answers (HEAD is implied by GET and not listed).
API_ROUTES = {
    "/train/": {"post"},
    "/training/status/{job_id}": {"get"},
    "/predictall/": {"post"},
    "/predictall/status/{job_id}": {"get"},
    "/jobs/{job_id}": {"get"},
    "/predict/": {"post"},
    "/models/": {"get"},
    "/models/{key}": {"get", "delete"},
    "/datasets/{db}/{collection}": {"put", "get", "delete"},
    "/datasets/{db}/{collection}/schema": {"get"},
    "/health": {"get"},
    "/openapi.json": {"get"},
}


class Service(ServiceProcesses):
    """A real worker process and a real web server (CherryPy on loopback) on this session's
    Redis and MongoDB, driven over HTTP with requests."""

    def __init__(self, workdir: Path, params: dict, *, worker: bool = True):
        params = {**params, "port": embedded.free_port()}
        params_file = workdir / "parameters.json"
        params_file.write_text(json.dumps(params))
        # A module that must never be imported: it leaves a mark if it is (see test_modelservice).
        canary = workdir / "canary"
        canary.mkdir(exist_ok=True)
        (canary / "canary_algorithm.py").write_text(
            f"open({str(canary / 'imported')!r}, 'w').write('imported')\nclass canary_algorithm: pass\n"
        )
        self.canary_mark = canary / "imported"
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONGODB_URI", "PORT", "AUTH_TOKEN")}
        env["PYTHONPATH"] = str(canary)
        super().__init__(
            params, params_file, workdir, env, worker=worker, worker_name=f"test-{uuid.uuid4().hex[:6]}@%h"
        )
        self.start()
        self.wait_healthy(timeout=90)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def wait_job(self, job_id: str, timeout: float = 600.0, path: str = "/jobs/") -> tuple[dict, list[dict]]:
        """The final status of a job (polled at path) and its history (every step it took)."""
        deadline = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < deadline:
            response = self.get(path + job_id)
            assert response.status_code == 200, response.text
            status = response.json()
            if status["status"] in FINAL:
                history = self.get(f"/jobs/{job_id}", params={"history": "1"}).json()["history"]
                return status, history
            time.sleep(0.25)
        raise AssertionError(f"job {job_id} not final after {timeout}s; last: {status}\n{self.log('worker')[-3000:]}")

    def train(self, job: dict) -> tuple[dict, list[dict]]:
        response = self.post("/train/", json=job)
        assert response.status_code == 202, response.text
        return self.wait_job(response.json()["job_id"], path="/training/status/")


@pytest.fixture(scope="session")
def service(tmp_path_factory, base_params, bank_collection):
    started = Service(tmp_path_factory.mktemp("service"), base_params)
    yield started
    started.stop()


E2E_BANK = "e2e.bank"


@pytest.fixture(scope="session")
def bank_over_http(service, bank_csv):
    """bank-full.csv PUT through the API into e2e.bank."""
    with open(bank_csv, "rb") as body:
        response = service.request("PUT", "/datasets/e2e/bank", data=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 45211
    return E2E_BANK


@pytest.fixture(scope="session")
def bank_training(service, bank_over_http):
    """job.json trained once per session on the uploaded data: (final status, statuses seen)."""
    return service.train({**JOB, "inputCollection": bank_over_http})


@pytest.fixture(scope="session")
def bank_model(service, bank_training):
    final, _ = bank_training
    assert final["status"] == "COMPLETED", final
    return final["model_key"]
