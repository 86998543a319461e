"""Session fixtures start real servers once; function fixtures isolate each test.

* ``redis_url``: a private redis-server on a free port (no persistence), per session;
  ``redis_db`` hands each test a flushed database of it.
* ``mongo_uri``: ``$MONGODB_URI`` (a real mongod) when set, else a SecantusDB server process
  on a free port; ``mongo_db`` hands each test a database of its own, dropped afterwards.
* ``spark``: one ``local[2]`` session (UI off, 2 shuffle partitions), what a worker builds.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pymongo
import pytest
import redis

import datasetloader
import embedded
from config import load_parameters

ROOT = Path(__file__).resolve().parent.parent
BANK_CSV = Path(os.environ.get("BANK_CSV") or ROOT.parent / "shared" / "data" / "bank-full.csv")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def bank_csv() -> Path:
    if not BANK_CSV.exists():
        pytest.fail(f"bank-full.csv not found at {BANK_CSV} (set BANK_CSV)")
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
