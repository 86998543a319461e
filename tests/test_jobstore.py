"""jobstore.py: job records in a real Redis (db 9, flushed per test)."""

import json
import re
import time

import pytest

from predictionservice import jobstore
from predictionservice.jobstore import (
    COMPLETED,
    FAILED,
    PENDING,
    STARTED,
    SUBMITTED,
    JobStore,
    public_view,
    queue_position,
)

TTL = 1234
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


@pytest.fixture()
def jobs(redis_db):
    return JobStore(redis_db, TTL)


def assert_ttl(client, key):
    assert TTL - 2 <= client.ttl(key) <= TTL


def test_create_is_pending_with_the_classic_message_and_a_ttl(jobs, redis_db):
    before = time.time()
    record = jobs.create("job-1", "training", {"name": "LogisticRegressionWrapper", "regParam": [0.1]})
    assert record["status"] == PENDING
    assert record["message"] == "waiting for job job-1 to start"
    assert record["progress"] == 0.0 and record["attempts"] == 0
    stored = jobs.get("job-1")
    assert stored == record
    assert stored["parameters"] == {"name": "LogisticRegressionWrapper", "regParam": [0.1]}
    assert before <= stored["created_at"] == stored["updated_at"] <= time.time()
    assert_ttl(redis_db, "job:job-1")
    assert jobs.history("job-1") == []


def test_get_of_an_unknown_id_is_none(jobs):
    assert jobs.get("never-issued") is None


def test_update_moves_status_message_progress_and_appends_history(jobs, redis_db):
    jobs.create("j", "training", {})
    assert jobs.update("j", STARTED, "job j started", 0.0) is True
    assert jobs.update("j", SUBMITTED, "reading datasets.bank", 0.05) is True
    assert jobs.update("j", SUBMITTED, "fitting fold 1 of 3", 0.15) is True
    record = jobs.get("j")
    assert (record["status"], record["message"], record["progress"]) == (SUBMITTED, "fitting fold 1 of 3", 0.15)
    assert record["updated_at"] >= record["created_at"]
    history = jobs.history("j")
    assert [(h["status"], h["message"], h["progress"]) for h in history] == [
        (STARTED, "job j started", 0.0),
        (SUBMITTED, "reading datasets.bank", 0.05),
        (SUBMITTED, "fitting fold 1 of 3", 0.15),
    ]
    assert all(set(h) == {"status", "message", "progress", "updated_at"} for h in history)
    assert_ttl(redis_db, "job:j")
    assert_ttl(redis_db, "job:j:history")


def test_an_update_without_progress_keeps_the_progress(jobs):
    jobs.create("j", "training", {})
    jobs.update("j", SUBMITTED, "half", 0.5)
    jobs.update("j", SUBMITTED, "still half")
    record = jobs.get("j")
    assert record["message"] == "still half" and record["progress"] == 0.5
    assert "progress" not in jobs.history("j")[-1]


def test_completed_without_progress_means_progress_one_and_extra_fields_are_typed(jobs):
    jobs.create("j", "training", {})
    assert jobs.update(
        "j", COMPLETED, "model j trained", model_key="j", metrics={"auc": 0.91, "accuracy": 0.9}, invalid_rows=2
    )
    record = jobs.get("j")
    assert record["progress"] == 1.0
    assert record["model_key"] == "j"
    assert record["metrics"] == {"auc": 0.91, "accuracy": 0.9}
    assert record["invalid_rows"] == 2 and type(record["invalid_rows"]) is int


@pytest.mark.parametrize("final", [COMPLETED, FAILED])
def test_a_final_record_is_not_moved_again(jobs, final):
    jobs.create("j", "predictall", {})
    assert jobs.update("j", final, "the end", 1.0 if final == COMPLETED else 0.3) is True
    assert jobs.update("j", SUBMITTED, "late progress", 0.5) is False
    assert jobs.update("j", FAILED, "late failure") is False
    assert jobs.update("j", COMPLETED, "late success") is False
    record = jobs.get("j")
    assert (record["status"], record["message"]) == (final, "the end")
    assert [h["message"] for h in jobs.history("j")] == ["the end"]


def test_force_moves_a_final_record(jobs):
    jobs.create("j", "training", {})
    jobs.update("j", COMPLETED, "done")
    assert jobs.update("j", FAILED, "re-judged", force=True) is True
    assert jobs.get("j")["status"] == FAILED and jobs.get("j")["message"] == "re-judged"
    assert [h["status"] for h in jobs.history("j")] == [COMPLETED, FAILED]


def test_update_of_a_never_created_id_returns_false_and_creates_nothing(jobs, redis_db):
    assert jobs.update("ghost", STARTED, "hello", 0.1) is False
    assert jobs.update("ghost", COMPLETED, "done", force=True) is False
    assert jobs.get("ghost") is None
    assert redis_db.exists("job:ghost", "job:ghost:history") == 0
    assert redis_db.dbsize() == 0


def test_unknown_status_is_a_value_error(jobs):
    jobs.create("j", "training", {})
    with pytest.raises(ValueError, match="unknown job status 'SUCCESS'"):
        jobs.update("j", "SUCCESS", "celery's word")
    assert jobs.get("j")["status"] == PENDING


def test_begin_attempt_counts(jobs):
    jobs.create("j", "training", {})
    assert [jobs.begin_attempt("j") for _ in range(3)] == [1, 2, 3]
    assert jobs.get("j")["attempts"] == 3


def test_history_keeps_the_last_steps(jobs, monkeypatch):
    monkeypatch.setattr(jobstore, "HISTORY", 3)
    jobs.create("j", "training", {})
    for i in range(5):
        jobs.update("j", SUBMITTED, f"step {i}", i / 10)
    assert [h["message"] for h in jobs.history("j")] == ["step 2", "step 3", "step 4"]


def record_of(jobs, job_id, kind):
    jobs.create(job_id, kind, {"x": 1})
    return jobs.get(job_id)


def test_public_view_of_a_pending_job(jobs):
    view = public_view(record_of(jobs, "p1", "training"))
    assert set(view) == {"job_id", "kind", "status", "message", "progress", "attempts", "created_at", "updated_at"}
    assert view["job_id"] == "p1" and view["kind"] == "training"
    assert (view["status"], view["message"], view["progress"], view["attempts"]) == (
        PENDING,
        "waiting for job p1 to start",
        0.0,
        0,
    )
    assert ISO.match(view["created_at"]) and ISO.match(view["updated_at"])


def test_public_view_of_a_completed_training_job_has_model_key_and_metrics(jobs):
    jobs.create("t1", "training", {})
    metrics = {"auc": 0.93, "area_under_pr": 0.6, "accuracy": 0.9}
    jobs.update("t1", COMPLETED, "trained", model_key="t1", metrics=metrics, invalid_rows=2)
    view = public_view(jobs.get("t1"))
    assert view["status"] == COMPLETED and view["progress"] == 1.0
    assert view["model_key"] == "t1" and view["metrics"] == metrics
    assert view["invalid_rows"] == 2
    assert "rows" not in view


def test_public_view_of_a_completed_training_job_without_model_key_uses_the_job_id(jobs):
    jobs.create("t2", "training", {})
    jobs.update("t2", COMPLETED, "trained")
    view = public_view(jobs.get("t2"))
    assert view["model_key"] == "t2" and view["metrics"] == {}


def test_public_view_of_a_completed_predictall_job_has_rows(jobs):
    jobs.create("s1", "predictall", {})
    jobs.update("s1", COMPLETED, "scored", rows=45209, invalid_rows=2, result={"rows": 45209})
    view = public_view(jobs.get("s1"))
    assert view["rows"] == 45209 and view["invalid_rows"] == 2
    assert "model_key" not in view and "metrics" not in view
    assert "result" not in view and "parameters" not in view


def test_public_view_of_a_running_or_failed_job_has_no_outcome_fields(jobs):
    jobs.create("f1", "training", {})
    jobs.update("f1", SUBMITTED, "fitting", 0.123456)
    view = public_view(jobs.get("f1"))
    assert view["progress"] == 0.1235
    jobs.update("f1", FAILED, "label field 'y' not found in datasets.bank")
    view = public_view(jobs.get("f1"))
    assert view["status"] == FAILED and view["message"] == "label field 'y' not found in datasets.bank"
    assert not {"model_key", "metrics", "rows", "invalid_rows"} & set(view)


def test_public_view_timestamps_are_iso_utc_with_milliseconds():
    record = {
        "job_id": "x",
        "kind": "training",
        "status": PENDING,
        "message": "m",
        "created_at": 0.25,
        "updated_at": 86400 + 3661.5,
    }
    view = public_view(record)
    assert view["created_at"] == "1970-01-01T00:00:00.250Z"
    assert view["updated_at"] == "1970-01-02T01:01:01.500Z"
    assert view["progress"] == 0.0 and view["attempts"] == 0


def test_records_are_stored_as_a_plain_hash(jobs, redis_db):
    jobs.create("h", "training", {"a": [1, 2]})
    raw = {k.decode(): v.decode() for k, v in redis_db.hgetall("job:h").items()}
    assert raw["status"] == "PENDING" and raw["kind"] == "training"
    assert json.loads(raw["parameters"]) == {"a": [1, 2]}


def test_begin_attempt_of_a_job_without_record_creates_nothing(jobs, redis_db):
    assert jobs.begin_attempt("never-issued") == 0
    assert redis_db.keys("*") == []


def test_view_reads_only_the_shown_fields_and_equals_the_public_view_of_the_record(jobs):
    big = {"schema": {"features": [{"key": f"f{i}"} for i in range(2000)]}}
    jobs.create("t", "training", big)
    jobs.update("t", STARTED, "started")
    assert jobs.view("t") == public_view(jobs.get("t"))
    jobs.update("t", COMPLETED, "done", model_key="t", metrics={"auc": 0.91}, invalid_rows=2)
    assert jobs.view("t") == public_view(jobs.get("t"))
    assert jobs.view("t")["metrics"] == {"auc": 0.91} and jobs.view("t")["invalid_rows"] == 2
    jobs.create("p", "predictall", big)
    jobs.update("p", COMPLETED, "scored", rows=7, invalid_rows=0, result={"rows": 7})
    assert jobs.view("p") == public_view(jobs.get("p"))
    assert jobs.view("p")["rows"] == 7
    assert jobs.view("never-issued") is None
    assert set(public_view(jobs.get("t"))) <= set(jobstore._SHOWN)


# ------------------------------------------------------------------ what /metrics reads here


def test_counts_follow_a_job_through_its_statuses(jobs):
    def training():
        return {status: n for (kind, status), n in jobs.counts().items() if kind == "training" and n}

    assert training() == {}
    jobs.create("j1", "training", {})
    jobs.create("j2", "predictall", {})
    assert training() == {PENDING: 1}
    assert jobs.counts()[("predictall", PENDING)] == 1
    for status in (STARTED, SUBMITTED, SUBMITTED, COMPLETED):
        jobs.update("j1", status, "moving")
        assert training() == {status: 1}
    assert not jobs.update("j1", FAILED, "late")  # refused: the counts do not move either
    assert training() == {COMPLETED: 1}
    assert jobs.counts()[("predictall", PENDING)] == 1


def test_an_expired_record_drops_out_of_the_counts(jobs, redis_db):
    jobs.create("j1", "training", {})
    redis_db.zadd(f"{jobstore.STATUS_INDEX}training:{PENDING}", {"job:j1": time.time() - 1})  # as if expired
    assert jobs.counts()[("training", PENDING)] == 0


def test_a_job_that_ends_counts_its_duration_once(jobs, redis_db):
    jobs.create("j1", "training", {})
    redis_db.hset("job:j1", "created_at", str(time.time() - 42.0))  # submitted 42 s ago
    jobs.update("j1", STARTED, "started")
    assert jobs.durations()["training"][2] == 0
    jobs.update("j1", COMPLETED, "done")
    jobs.update("j1", FAILED, "a late duplicate", force=True)  # moved again, but it had already ended
    buckets, total, count = jobs.durations()["training"]
    assert count == 1 and 42.0 <= total < 60.0
    slot = next(i for i, bound in enumerate(jobstore.DURATION_BUCKETS) if 42.0 <= bound)
    assert buckets == [1 if i == slot else 0 for i in range(len(jobstore.DURATION_BUCKETS) + 1)]
    assert jobs.durations()["predictall"] == ([0] * (len(jobstore.DURATION_BUCKETS) + 1), 0.0, 0)


def test_the_request_id_is_kept_and_shown(jobs):
    jobs.create("j1", "training", {}, request_id="trace-9")
    assert jobs.get("j1")["request_id"] == "trace-9"
    assert jobs.view("j1")["request_id"] == "trace-9"
    jobs.create("j2", "training", {})
    assert "request_id" not in jobs.view("j2")


def test_recent_lists_newest_first_filtered_and_forgets_expired_records(jobs, redis_db):
    for i, kind in enumerate(("training", "predictall", "training")):
        jobs.create(f"r{i}", kind, {})
        redis_db.zadd(jobstore.index_key(), {f"r{i}": time.time() + i})  # distinct creation times
    jobs.update("r0", COMPLETED, "trained", model_key="r0")
    assert [v["job_id"] for v in jobs.recent(10)] == ["r2", "r1", "r0"]
    assert [v["job_id"] for v in jobs.recent(1)] == ["r2"]
    assert [v["job_id"] for v in jobs.recent(10, kind="training")] == ["r2", "r0"]
    assert [v["job_id"] for v in jobs.recent(10, status=COMPLETED)] == ["r0"]
    assert jobs.recent(10)[2] == jobs.view("r0")
    redis_db.delete("job:r1")  # expired
    assert [v["job_id"] for v in jobs.recent(10)] == ["r2", "r0"]
    assert redis_db.zscore(jobstore.index_key(), "r1") is None


def test_parameters_are_the_submitted_document(jobs):
    jobs.create("p1", "predictall", {"modelkey": "m", "outputCollection": "a.b"})
    assert jobs.parameters("p1") == {"modelkey": "m", "outputCollection": "a.b"}
    assert jobs.parameters("never-issued") == {}


def test_recent_lists_newest_first_filtered_and_bounded(jobs):
    for i in range(7):
        jobs.create(f"j{i}", "training" if i % 2 else "predictall", {"name": "LogisticRegressionWrapper"})
        time.sleep(0.002)  # distinct creation times: the index orders by them
    jobs.update("j5", FAILED, "no")
    assert [v["job_id"] for v in jobs.recent(3)] == ["j6", "j5", "j4"]
    assert [v["job_id"] for v in jobs.recent(50, kind="training")] == ["j5", "j3", "j1"]
    assert [v["job_id"] for v in jobs.recent(50, status=FAILED)] == ["j5"]
    assert [v["job_id"] for v in jobs.recent(1, kind="predictall", status=PENDING)] == ["j6"]
    assert jobs.recent(50, kind="training")[0]["lineage"] == {"algorithm": "LogisticRegressionWrapper"}


def test_recent_forgets_expired_records(jobs, redis_db):
    jobs.create("gone", "training", {})
    jobs.create("kept", "training", {})
    redis_db.delete("job:gone")  # what the TTL does
    assert [v["job_id"] for v in jobs.recent(10)] == ["kept"]
    assert redis_db.zrange("jobs", 0, -1) == [b"kept"]


def test_history_times_are_iso_utc(jobs):
    jobs.create("h", "training", {})
    jobs.update("h", STARTED, "started")
    (step,) = jobs.history("h")
    assert step["status"] == STARTED and ISO.match(step["updated_at"])


def test_the_spark_ui_address_is_shown_while_the_job_runs_only(jobs):
    jobs.create("s", "training", {})
    jobs.update("s", SUBMITTED, "fitting", 0.5, spark_ui="http://127.0.0.1:4040")
    assert jobs.view("s")["spark_ui"] == "http://127.0.0.1:4040"
    jobs.update("s", COMPLETED, "done", model_key="s", metrics={})
    assert "spark_ui" not in jobs.view("s")


def test_a_key_prefix_keeps_job_records_apart(redis_db):
    mine, theirs = JobStore(redis_db, 60, "a:"), JobStore(redis_db, 60, "b:")
    mine.create("x", "training", {})
    assert theirs.view("x") is None and theirs.recent(10) == []
    assert mine.view("x")["job_id"] == "x"
    assert sorted(k.decode() for k in redis_db.keys("*")) == ["a:job:x", "a:jobs", "a:jobs:status:training:PENDING"]


def test_queue_position_counts_from_the_end_a_worker_takes(redis_db):
    for job_id in ("first", "second", "third"):  # kombu LPUSHes each message
        redis_db.lpush("q", json.dumps({"headers": {"id": job_id}}))
    assert queue_position(redis_db, "q", "first") == (1, 3)
    assert queue_position(redis_db, "q", "third") == (3, 3)
    assert queue_position(redis_db, "q", "elsewhere") is None
