"""Retraining schedules through the running service and real scheduler processes (celery beat with
redbeat: scheduler.py), on the session's redis-server: with two scheduler processes a schedule
fires once per tick, not twice; it survives the schedulers being killed and one started again;
it stops when deleted; a tick while the name's job is still queued is skipped and recorded. Those
run on a stack with no worker (a retrain's effect is its record and its queued job: the job stays
queued, so later ticks are skipped). Last, on the session's service (a worker with Spark), a
scheduled retrain trains a real new version (the xor forest: small)."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import pytest

from helpers import EXAMPLES, XOR_JOB, known_rows, private_stack, register_name

pytestmark = pytest.mark.system

PERIOD = 2  # seconds between a schedule's ticks here


@pytest.fixture(scope="module")
def stack(tmp_path_factory, base_params):
    """A web server of its own (Redis databases 14 and 15), no worker: queued jobs stay queued."""
    service = private_stack(tmp_path_factory, base_params, "schedules", 14, worker=False)
    with open(EXAMPLES / "xor.csv", "rb") as body:
        loaded = service.request("PUT", "/datasets/examples/xor", data=body, headers={"Content-Type": "text/csv"})
    assert loaded.status_code == 200, loaded.text
    yield service
    service.stop()


@pytest.fixture()
def named(stack):
    """A name with version 1 stored as training stores it, with its job document; every scheduler
    this test starts is killed after it, and the name removed."""
    name = register_name(stack.params, XOR_JOB, "tick")
    yield name
    for child in [c for c in stack.children if c.startswith("beat")]:
        stack.kill(child)
        del stack.children[child]
    stack.request("DELETE", f"/registry/{name}")


def retrains(service, name: str) -> list[dict]:
    return service.get(f"/registry/{name}").json()["retrains"]


def scheduled(service, name: str, every: int = PERIOD) -> None:
    reply = service.request("PUT", f"/registry/{name}/schedule", json={"every_seconds": every})
    assert reply.status_code == 200, reply.text


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def firing_beats(service) -> list[str]:
    return [c for c in service.children if c.startswith("beat") and "scheduled retrain" in service.log(c)]


def test_two_schedulers_fire_once_per_tick_and_a_tick_while_the_job_is_queued_is_skipped(stack, named):
    stack.start_beat("beat-a")
    stack.start_beat("beat-b")
    scheduled(stack, named)
    wait_for(lambda: retrains(stack, named), 20, "the first tick")
    time.sleep(5 * PERIOD)
    records = retrains(stack, named)
    assert stack.exited() == []
    # one record a tick: about one a PERIOD (two schedulers firing would make two)
    assert 4 <= len(records) <= 7, records
    times = sorted(stamp(r["time"]) for r in records)
    assert all(later - earlier >= PERIOD - 1 for earlier, later in itertools.pairwise(times)), times
    queued = [r for r in records if r["outcome"] == "queued"]
    assert len(queued) == 1 and all(r["trigger"] == "schedule" for r in records)
    skipped = [r for r in records if r["outcome"] == "skipped"]
    assert {r["running_job"] for r in skipped} == {queued[0]["job_id"]}  # the first job is still queued
    assert stack.get(f"/jobs/{queued[0]['job_id']}").json()["status"] == "PENDING"
    assert len(firing_beats(stack)) == 1  # the other waited for redbeat's lock
    health = stack.get("/health").json()["scheduler"]
    assert health["status"] == "running" and health["schedules"] >= 1
    stack.request("DELETE", f"/jobs/{queued[0]['job_id']}")


def test_a_schedule_survives_its_schedulers_killed_and_stops_when_deleted(stack, named):
    stack.start_beat("beat-a")
    scheduled(stack, named)
    wait_for(lambda: retrains(stack, named), 20, "the first tick")
    stack.kill("beat-a")  # SIGKILL: its lock is left to expire (5 ticks of 0.5 s)
    time.sleep(1)
    before = len(retrains(stack, named))
    time.sleep(2 * PERIOD)
    assert len(retrains(stack, named)) <= before + 1  # no scheduler: no more ticks (one may have been firing)
    stack.start_beat("beat-b")  # started again: the schedule is in Redis, the dead one's lock expires
    count = len(retrains(stack, named))
    wait_for(lambda: len(retrains(stack, named)) >= count + 2, 20, "ticks after the restart")
    assert stack.request("DELETE", f"/registry/{named}/schedule").status_code == 204
    time.sleep(1)
    stopped = len(retrains(stack, named))
    time.sleep(2 * PERIOD + 1)
    assert len(retrains(stack, named)) == stopped
    for record in retrains(stack, named):
        if record["outcome"] == "queued":
            stack.request("DELETE", f"/jobs/{record['job_id']}")


def test_a_scheduled_retrain_trains_a_real_new_version(service, xor_model):
    """On the session's service, whose worker trains with Spark: version 2 comes from a tick
    (version 1 is a copy of the session's xor forest: one training only)."""
    name = register_name(service.params, XOR_JOB, "xor", copy_of=xor_model)
    service.start_beat("beat")
    try:
        scheduled(service, name, 1)
        entry = wait_for(
            lambda: (e := service.get(f"/registry/{name}").json()) and len(e["versions"]) >= 2 and e, 480, "version 2"
        )
        assert service.request("DELETE", f"/registry/{name}/schedule").status_code == 204
    finally:
        service.kill("beat")
        del service.children["beat"]
    version = entry["versions"][1]
    from_tick = {r["job_id"] for r in entry["retrains"] if r["outcome"] == "queued" and r["trigger"] == "schedule"}
    assert version["version"] == 2 and version["model_key"] in from_tick
    # the version is stored before its job ends: the promotion gate runs between the two
    status = wait_for(
        lambda: (s := service.get(f"/jobs/{version['model_key']}").json())["status"] in ("COMPLETED", "FAILED") and s,
        120,
        "version 2's job to end",
    )
    assert status["status"] == "COMPLETED" and status["lineage"]["model"] == name
    for job_id in from_tick - {version["model_key"]}:  # a tick after version 2's job ended
        service.request("DELETE", f"/jobs/{job_id}")
    service.request("DELETE", f"/registry/{name}")


def xor_rows(n: int, seed: int, shift: float = 0.0) -> list[dict]:
    """n new rows drawn as examples/xor.csv's were (tests/helpers.known_rows), x1 moved by shift:
    new rows, not the training rows, whose scores the forest knows too well."""
    rows = known_rows("xor", n, seed=seed, classes=2)[0]
    return [{"x1": r["x1"] + shift, "x2": r["x2"], "c": r["c"]} for r in rows]


def log_predictions(service, mongo_client, name: str, rows: list[dict]) -> None:
    """The name's production answers to rows, written to the prediction log as the web process
    writes them (the session's service runs with the log off: the check reads only the log)."""
    from helpers import logged

    entry = service.get(f"/registry/{name}").json()
    version = entry["aliases"]["production"]
    key = entry["versions"][version - 1]["model_key"]
    reply = service.request("POST", "/predict/", json={"modelkey": name, "records": rows})
    assert reply.status_code == 200, reply.text
    docs = logged(name, key, version, rows, [None] * len(rows), datetime.now(UTC))
    for doc, answer in zip(docs, reply.json()["predictions"], strict=True):
        doc["answer"] = answer
    db, collection = service.params["prediction_log_collection"].split(".", 1)
    mongo_client[db][collection].insert_many(docs)


def test_a_drift_schedule_retrains_after_a_shifted_window_and_not_after_an_unshifted_one(
    service, xor_model, mongo_client
):
    """Two names, copies of the session's xor forest, scheduled every second on drift through a
    real scheduler: the one whose window is drawn from the training data is checked and left
    alone; the one whose x1 moved is retrained by the worker, and version 2 (keeping the drift
    report) meets the promotion gate like any version."""
    calm = register_name(service.params, XOR_JOB, "calm", copy_of=xor_model)
    moved = register_name(service.params, XOR_JOB, "moved", copy_of=xor_model)
    service.start_beat("beat")
    try:
        for name in (calm, moved):
            reply = service.request("PUT", f"/registry/{name}/schedule", json={"every_seconds": 1, "when": "drift"})
            assert reply.status_code == 200, reply.text
        log_predictions(service, mongo_client, calm, xor_rows(300, seed=41))
        log_predictions(service, mongo_client, moved, xor_rows(300, seed=42, shift=1.5))
        entry = wait_for(
            lambda: (e := service.get(f"/registry/{moved}").json()) and len(e["versions"]) >= 2 and e, 480, "version 2"
        )
        for name in (calm, moved):
            assert service.request("DELETE", f"/registry/{name}/schedule").status_code == 204
    finally:
        service.kill("beat")
        del service.children["beat"]
    checks = [line for line in service.log("beat").splitlines() if f"drift check of '{calm}'" in line]
    assert any('"count": 300' in line and '"outcome": "no drift"' in line for line in checks), checks
    assert not any('"outcome": "retrained"' in line for line in checks), checks
    calm_entry = service.get(f"/registry/{calm}").json()
    assert len(calm_entry["versions"]) == 1 and calm_entry["retrains"] == []
    version = entry["versions"][1]
    assert version["trigger"]["kind"] == "drift" and "x1" in version["trigger"]["drifted"]
    assert version["trigger"]["version"] == 1 and version["trigger"]["count"] == 300
    [record] = [r for r in entry["retrains"] if r["outcome"] == "queued"]
    assert record["trigger"] == "drift" and record["job_id"] == version["model_key"]
    status = wait_for(
        lambda: (s := service.get(f"/jobs/{version['model_key']}").json())["status"] in ("COMPLETED", "FAILED") and s,
        120,
        "version 2's job to end",
    )
    assert status["status"] == "COMPLETED" and status["trigger"] == version["trigger"]
    decided = service.get(f"/registry/{moved}").json()["versions"][1]["decision"]
    assert decided["decision"] in ("promoted", "kept") and decided["production_version"] == 1
    for name in (calm, moved):
        service.request("DELETE", f"/registry/{name}")
