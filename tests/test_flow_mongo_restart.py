"""MongoDB SIGKILLed and restarted on its data while /predictall/ writes (issue 25, section 4): the
previous output collection stays whole (or the new one is whole, if the publish could finish), the
job ends FAILED with a message naming what broke or COMPLETED, no hidden collection is left, and
the next /predictall/ runs. A worker and a web server of their own on a SecantusDB process of their
own (Redis databases 9 and 10 of the session's server)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import pymongo.errors
import pytest

from helpers import ONE_FEATURE_MODEL, KillableMongo, private_stack
from predictionservice.modelstore import ModelStore
from predictionservice.redisclient import connect
from predictionservice.tempcollections import WRITING_PREFIX, aside_name, marker_name, temp_name

ROWS, EARLIER = 3000, 3000
PAD = "p" * 2000  # documents of about 2 KB: a rename of a few thousand takes a moment
MODEL_KEY = f"restart-{uuid.uuid4().hex[:8]}"
MODEL = ONE_FEATURE_MODEL
pytestmark = pytest.mark.system  # a worker and a web server of their own
JOB = {"modelkey": MODEL_KEY, "inputCollection": "s.input", "outputCollection": "s.scored"}


STRANDED = temp_name(WRITING_PREFIX, "kept")


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    server = KillableMongo(tmp_path_factory.mktemp("restart-mongo"))
    # A publish whose worker died between renaming the old collection aside and the new one into place.
    with server.client() as client:
        client.p[aside_name(STRANDED, "kept")].insert_many([{"_id": i, "v": "old"} for i in range(100)])
        client.p[STRANDED].insert_many([{"_id": 1000 + i, "v": "new"} for i in range(50)])
        dead = {"host": socket.gethostname(), "pid": 2**22 + 1, "started": "a process gone"}
        marker = {"_id": "publish", "temp": STRANDED, "target": "kept", "aside": aside_name(STRANDED, "kept"),
                  "rows": 50, "old_rows": 100, "replace": True, "owner": dead, "at": time.time()}  # fmt: skip
        client.p[marker_name(STRANDED)].insert_one(marker)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, base_params, mongo):
    service = private_stack(
        tmp_path_factory, base_params, "mongo-restart", 9, mongodb_uri=mongo.url, mongodb_timeout_ms=2000
    )
    yield service
    service.stop()


def wait_scoring(stack, job_id: str, timeout: float = 180.0) -> None:
    """Until the job writes its output (its data read and scored)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = stack.get(f"/jobs/{job_id}").json()
        assert status["status"] not in ("COMPLETED", "FAILED"), status
        if status["message"].startswith("scoring"):
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never started writing")


def kill_in_publish(stack, mongo, job_id: str, busy: float = 0.15) -> str:
    """SIGKILL MongoDB once the job's temporary collection holds every row and the server then
    stays busy with one request for busy seconds: the publish's rename (which holds the server
    while it moves the documents), or its counts. What was seen, for the messages."""
    outstanding: list[float] = []  # when the probe's request now waiting was sent

    def probe(client, stop: threading.Event) -> None:
        while not stop.is_set():
            outstanding[:] = [time.monotonic()]
            try:
                client.s.list_collection_names()
            except pymongo.errors.PyMongoError:
                return  # killed
            outstanding.clear()
            time.sleep(0.005)

    with mongo.client(5000) as client, mongo.client(60_000) as prober:
        while stack.get(f"/jobs/{job_id}").json()["status"] not in ("COMPLETED", "FAILED"):
            temps = [n for n in client.s.list_collection_names() if n.startswith("__writing_")]
            if temps and client.s[temps[0]].count_documents({}) >= ROWS:
                break
        else:
            mongo.kill()
            return "killed after the job ended"
        stop = threading.Event()
        thread = threading.Thread(target=probe, args=(prober, stop), daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (outstanding and time.monotonic() - outstanding[0] > busy):
            time.sleep(0.002)
        mongo.kill()
        stop.set()
        thread.join(10)
        return f"killed with the server busy for {busy} s after {temps[0]} was written"


def settled_names(mongo, timeout: float = 30.0) -> list[str]:
    """The collections of database s once nothing hidden is left in it (or after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        with mongo.client(5000) as client:
            names = sorted(client.s.list_collection_names())
        if not any(name.startswith("__") for name in names) or time.monotonic() > deadline:
            return names
        time.sleep(0.5)


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="needs a MongoDB server of its own to kill")
def test_a_publish_stranded_by_a_dead_worker_is_finished_at_the_next_start(stack, mongo):
    deadline = time.monotonic() + 30
    with mongo.client(5000) as client:
        while client.p.list_collection_names() != ["kept"]:
            assert time.monotonic() < deadline, (client.p.list_collection_names(), stack.log("worker")[-2000:])
            time.sleep(0.2)
        assert sorted(doc["v"] for doc in client.p.kept.find()) == ["new"] * 50
    assert "recovered an interrupted publish: p.kept: finished" in stack.log("worker")


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="needs a MongoDB server of its own to kill")
def test_mongodb_killed_during_predictall_leaves_the_output_whole_and_nothing_half_written(stack, mongo):
    with mongo.client() as client:
        client.s.input.insert_many([{"x": i / ROWS, "y": "yes" if i % 3 else "no", "pad": PAD} for i in range(ROWS)])
        client.s.scored.insert_many([{"_id": i, "earlier": i, "pad": PAD} for i in range(EARLIER)])
    ModelStore(connect(stack.params["redis_url"], stack.params["models_db"])).save(MODEL_KEY, MODEL)

    response = stack.post("/predictall/", json=JOB)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    wait_scoring(stack, job_id)
    seen = kill_in_publish(stack, mongo, job_id)
    time.sleep(1.0)
    mongo.restart()
    final, _ = stack.wait_job(job_id, timeout=180)

    assert settled_names(mongo) == ["input", "scored"], (seen, stack.log("worker")[-3000:])
    with mongo.client(5000) as client:
        output = list(client.s.scored.find())
    if final["status"] == "FAILED":
        assert sorted(doc.get("earlier") for doc in output) == list(range(EARLIER)), (seen, final, len(output))
        assert "mongodb" in final["message"].lower() and len(final["message"]) < 600, (seen, final)
        assert "Traceback" not in final["message"]
    else:  # the publish was under way: it waited for MongoDB and finished
        assert final["status"] == "COMPLETED", (seen, final)
        assert len(output) == ROWS and all("earlier" not in doc for doc in output), (seen, len(output))

    # The service goes on: the next run scores into the same collection.
    response = stack.post("/predictall/", json=JOB)
    assert response.status_code == 202, response.text
    final, _ = stack.wait_job(response.json()["job_id"], timeout=180)
    assert final["status"] == "COMPLETED" and final["rows"] == ROWS, final
    assert settled_names(mongo) == ["input", "scored"]
    with mongo.client(5000) as client:
        assert client.s.scored.count_documents({}) == ROWS
        assert client.s.scored.count_documents({"earlier": {"$exists": True}}) == 0
