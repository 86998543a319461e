"""Job records in Redis: what a client polls.

Celery's result backend knows SUCCESS and FAILURE; clients must only ever see the service's own
states, so each job has a record of its own (a hash ``job:<id>``) written when the id is issued
and moved by the worker through :class:`messagehandler.MessageHandler`. A never-issued id has no
record (404, not an eternal PENDING); a final record (COMPLETED, FAILED) is never moved again, so
a late or duplicated update cannot undo an outcome.

For /metrics, the same scripts keep two summaries beside the records, so a scrape never scans
them: each record's key in a sorted set per kind and status (``jobs:status:<kind>:<status>``,
scored by the record's expiry, so an expired record drops out of the count), and the time from
submission to outcome of every job that ended (``jobs:durations:<kind>``, a histogram's buckets).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import redis

from predictionservice.job import lineage_of

PENDING, STARTED, SUBMITTED, COMPLETED, FAILED = "PENDING", "STARTED", "SUBMITTED", "COMPLETED", "FAILED"
STATES = (PENDING, STARTED, SUBMITTED, COMPLETED, FAILED)
FINAL = frozenset({COMPLETED, FAILED})
KINDS = ("training", "predictall", "comparison")
ALIVE = "jobs:alive"  # job id -> time of its worker's last heartbeat, while it runs
QUEUED_BY = "jobs:queued_by:"  # + client address, a sorted set of the ids of its jobs queued
# + model name: the id of the latest training job of that name (a retrain is skipped while it runs;
# predictionservice.retraining), or a retrain's claim "<id>:<time>" until its record exists
NAMED = "jobs:named:"

STATUS_INDEX = "jobs:status:"  # + kind:status, a sorted set of record keys scored by expiry
DURATIONS = "jobs:durations:"  # + kind, a hash: bucket:<i> counts, sum, count
# Upper bounds (seconds) of the job-duration histogram's buckets; the last bucket is +Inf.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)

# Sets fields unless the record is missing (0) or final (-1), appends the step to the job's
# history (the last HISTORY steps), refreshes both TTLs, moves the record's key to the status
# index of its new status and, when the job has just ended, counts its duration.
_UPDATE = """
local key, now, ttl = KEYS[1], tonumber(ARGV[5]), tonumber(ARGV[1])
if redis.call('EXISTS', key) == 0 then return 0 end
local old = redis.call('HGET', key, 'status')
local was_final = old == 'COMPLETED' or old == 'FAILED'
if ARGV[2] == '0' and was_final then return -1 end
redis.call('HSET', key, unpack(ARGV, 6))
redis.call('EXPIRE', key, ttl)
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('EXPIRE', KEYS[2], ttl)
local kind = redis.call('HGET', key, 'kind') or 'unknown'
local new = redis.call('HGET', key, 'status')
if old then redis.call('ZREM', '@INDEX@' .. kind .. ':' .. old, key) end
redis.call('ZADD', '@INDEX@' .. kind .. ':' .. new, now + ttl, key)
local created = tonumber(redis.call('HGET', key, 'created_at'))
if created and not was_final and (new == 'COMPLETED' or new == 'FAILED') then
  local seconds = math.max(0, now - created)
  local bounds, slot = {@BOUNDS@}, @INF@
  for i, bound in ipairs(bounds) do
    if seconds <= bound then slot = i - 1; break end
  end
  redis.call('HINCRBY', '@DURATIONS@' .. kind, 'bucket:' .. slot, 1)
  redis.call('HINCRBYFLOAT', '@DURATIONS@' .. kind, 'sum', seconds)
  redis.call('HINCRBY', '@DURATIONS@' .. kind, 'count', 1)
end
return 1
"""
_UPDATE = _UPDATE.replace("@BOUNDS@", ", ".join(repr(b) for b in DURATION_BUCKETS)).replace(
    "@INF@", str(len(DURATION_BUCKETS))
)
HISTORY = 200
_ATTEMPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
"""
# A running job given back to the queue: its attempt uncounted and its owner forgotten (a worker on
# this machine must not take the stopped one, still exiting, for a live owner). 0 when the job has
# no record or already ended.
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'COMPLETED' or status == 'FAILED' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'attempts', -1)
end
redis.call('HDEL', KEYS[1], 'owner', 'heartbeat_at')
return 1
"""

_JSON_FIELDS = ("metrics", "result", "parameters", "lineage", "decision", "trigger", "comparison")
_FLOAT_FIELDS = ("progress", "created_at", "started_at", "updated_at", "heartbeat_at", "cancelled_at")
_INT_FIELDS = ("attempts", "rows", "invalid_rows")
# What public_view reads; the first is in every record.
_SHOWN = (
    "job_id", "kind", "status", "message", "progress", "attempts", "created_at", "started_at", "updated_at",
    "model_key", "metrics", "rows", "invalid_rows", "request_id", "spark_ui", "lineage", "cancelled_at",
    "cancelled_by", "decision", "trigger", "comparison",
)  # fmt: skip
MAX_LIST = 500  # most jobs one listing shows


def index_key(prefix: str = "") -> str:
    """The sorted set of job ids by creation time: listings read it newest first."""
    return f"{prefix}jobs"


_ISSUED_ID = re.compile(r"[0-9a-f]{32}\Z")


def issued_id(text: str) -> bool:
    """Whether text has the form of an id the service issues (uuid4().hex). A client's id is
    checked before it becomes a key: 'x:history' would otherwise name a job's history list."""
    return bool(_ISSUED_ID.match(text))


def job_key(job_id: str, prefix: str = "") -> str:
    return f"{prefix}job:{job_id}"


def history_key(job_id: str, prefix: str = "") -> str:
    return f"{prefix}job:{job_id}:history"


class JobStore:
    def __init__(self, client: redis.Redis, ttl: int, prefix: str = ""):
        """prefix (the redis_key_prefix setting) begins every key this store writes, so two
        services can share one Redis database knowingly."""
        self.client = client
        self.ttl = ttl
        self.prefix = prefix
        script = _UPDATE.replace("@INDEX@", prefix + STATUS_INDEX).replace("@DURATIONS@", prefix + DURATIONS)
        self._update = client.register_script(script)
        self._attempt = client.register_script(_ATTEMPT)
        self._give_back = client.register_script(_GIVE_BACK)

    def create(
        self, job_id: str, kind: str, parameters: dict[str, Any], request_id: str | None = None,
        trigger: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """A PENDING record; request_id is the X-Request-ID of the request that submitted it, trigger
        what started it when not a client (a retrain on drift: its drift report). It
        keeps the job's parameters but not its schema: the queued message already carries the whole
        document (up to max_body_bytes), the trained model keeps the schema, and a second copy would
        sit in Redis for job_ttl."""
        shown = lineage_of(parameters)  # with its label, read from the schema before it is left out
        parameters = {k: v for k, v in parameters.items() if k != "schema"}
        now = time.time()
        record = {
            "job_id": job_id,
            "kind": kind,
            "status": PENDING,
            "message": f"waiting for job {job_id} to start",
            "progress": 0.0,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "parameters": parameters,
            **({"request_id": request_id} if request_id else {}),
            **({"trigger": trigger} if trigger else {}),
            "lineage": shown,
        }
        key = job_key(job_id, self.prefix)
        with self.client.pipeline() as pipe:
            pipe.hset(key, mapping=_encode(record))
            pipe.expire(key, self.ttl)
            pipe.zadd(f"{self.prefix}{STATUS_INDEX}{kind}:{PENDING}", {key: now + self.ttl})
            pipe.zadd(index_key(self.prefix), {job_id: now})
            if kind == "training" and isinstance(shown.get("model"), str):  # the name's latest job
                pipe.set(f"{self.prefix}{NAMED}{shown['model']}", job_id, ex=self.ttl)
            # ids older than the TTL have no record left: the index forgets them as it grows
            pipe.zremrangebyscore(index_key(self.prefix), "-inf", now - self.ttl)
            pipe.execute()
        return record

    def queued_by(self, client: str, queue_key: str | None = None) -> int:
        """How many of one client's jobs still wait for a worker (PENDING): its share of the
        queue. Ids of its jobs that started, ended or expired are forgotten on the way; with
        queue_key, so are those whose message is no longer in that queue (taken by a worker
        about to start it, or lost with a broker that lost its data), at the cost of reading the
        queue: what a client about to be refused is owed."""
        key = f"{self.prefix}{QUEUED_BY}{client}"
        ids = [job_id.decode() for job_id in self.client.zrange(key, 0, -1)]
        if not ids:
            return 0
        with self.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(job_key(job_id, self.prefix), "status")
            statuses = pipe.execute()
        gone = [job_id for job_id, status in zip(ids, statuses, strict=True) if status != PENDING.encode()]
        if queue_key is not None:
            messages = self.client.lrange(queue_key, 0, -1)
            gone += [i for i in ids if i not in gone and not any(i.encode() in raw for raw in messages)]
        if gone:
            self.client.zrem(key, *gone)
        return len(ids) - len(gone)

    def add_queued_by(self, client: str, job_id: str) -> None:
        """Count a job just queued in its client's share (queued_by)."""
        key = f"{self.prefix}{QUEUED_BY}{client}"
        with self.client.pipeline() as pipe:
            pipe.zadd(key, {job_id: time.time()})
            pipe.expire(key, self.ttl)
            pipe.execute()

    def get(self, job_id: str) -> dict[str, Any] | None:
        raw = self.client.hgetall(job_key(job_id, self.prefix))
        return _decode(raw) if raw else None

    def trigger(self, job_id: str) -> dict[str, Any] | None:
        """What queued the job when no client did (a retrain on drift: its drift report), or None."""
        raw = self.client.hget(job_key(job_id, self.prefix), "trigger")
        return json.loads(raw) if raw else None

    def view(self, job_id: str) -> dict[str, Any] | None:
        """The job as the API shows it (public_view), reading only the fields shown: clients poll
        this, and the stored job document beside them can be large."""
        return _public_record(self.client.hmget(job_key(job_id, self.prefix), _SHOWN))

    def recent(self, limit: int, kind: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """The newest jobs first, at most limit, of a kind and a status when given: what a person
        who lost a job id looks at. The index is read in pages, so a rare status is still found."""
        found: list[dict[str, Any]] = []
        start, page = 0, max(limit, 50)
        while len(found) < limit:
            ids = self.client.zrevrange(index_key(self.prefix), start, start + page - 1)
            if not ids:
                break
            with self.client.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hmget(job_key(job_id.decode(), self.prefix), _SHOWN)
                rows = pipe.execute()
            gone = [job_id for job_id, values in zip(ids, rows, strict=True) if values[0] is None]
            if gone:  # expired records
                self.client.zrem(index_key(self.prefix), *gone)
            views = (_public_record(values) for values in rows)
            found += [v for v in views if v and kind in (None, v["kind"]) and status in (None, v["status"])]
            start += page - len(gone)
        return found[:limit]

    def parameters(self, job_id: str) -> dict[str, Any]:
        """The job document a job was submitted with (credentials redacted); {} when unknown."""
        raw = self.client.hget(job_key(job_id, self.prefix), "parameters")
        return json.loads(raw) if raw else {}

    def update(
        self,
        job_id: str,
        status: str,
        message: str,
        progress: float | None = None,
        *,
        force: bool = False,
        **extra: Any,
    ) -> bool:
        """Move a job; False when it has no record or is already final (unless force)."""
        if status not in STATES:
            raise ValueError(f"unknown job status {status!r}")
        fields: dict[str, Any] = {"status": status, "message": message, "updated_at": time.time(), **extra}
        if status == STARTED:
            fields["started_at"] = fields["updated_at"]  # this attempt's start (a rerun starts again)
        if progress is not None:
            fields["progress"] = float(progress)
        elif status == COMPLETED:
            fields["progress"] = 1.0
        flat = [x for pair in _encode(fields).items() for x in pair]
        step = json.dumps({k: fields[k] for k in ("status", "message", "progress", "updated_at") if k in fields})
        keys = [job_key(job_id, self.prefix), history_key(job_id, self.prefix)]
        args = [self.ttl, "1" if force else "0", step, HISTORY, repr(fields["updated_at"]), *flat]
        moved = self._update(keys=keys, args=args) == 1
        if moved and status in FINAL:
            self.forget_beat(job_id)  # an ended job is no reaper's business
        return moved

    def cancel(self, job_id: str, by: str) -> bool:
        """End a job that has not ended FAILED as cancelled, by whom and when; False when it has
        no record or already ended. Its worker, if one runs it, sees the mark (cancelled) and
        stops its Spark work; a queued one is never run (a final job is not run again)."""
        now = time.time()
        message = f"cancelled at {iso(now)} by {by}"
        return self.update(job_id, FAILED, message, cancelled_at=now, cancelled_by=by)

    def cancelled(self, job_id: str) -> bool:
        """The job was cancelled (DELETE /jobs/<id>): what its worker looks for while it runs."""
        return bool(self.client.hexists(job_key(job_id, self.prefix), "cancelled_at"))

    def counts(self) -> dict[tuple[str, str], int]:
        """How many job records there are of each kind in each status (expired ones dropped)."""
        pairs = [(kind, status) for kind in KINDS for status in STATES]
        now = time.time()
        with self.client.pipeline(transaction=False) as pipe:
            for kind, status in pairs:
                pipe.zremrangebyscore(f"{self.prefix}{STATUS_INDEX}{kind}:{status}", "-inf", now)
                pipe.zcard(f"{self.prefix}{STATUS_INDEX}{kind}:{status}")
            replies = pipe.execute()
        return dict(zip(pairs, replies[1::2], strict=True))

    def durations(self) -> dict[str, tuple[list[int], float, int]]:
        """Each kind's job durations (submission to outcome) so far: the count in each bucket of
        DURATION_BUCKETS and +Inf (not cumulative), their sum in seconds and their count."""
        with self.client.pipeline(transaction=False) as pipe:
            for kind in KINDS:
                pipe.hgetall(self.prefix + DURATIONS + kind)
            replies = pipe.execute()
        out = {}
        for kind, raw in zip(KINDS, replies, strict=True):
            fields = {k.decode(): v.decode() for k, v in raw.items()}
            buckets = [int(fields.get(f"bucket:{i}", 0)) for i in range(len(DURATION_BUCKETS) + 1)]
            out[kind] = (buckets, float(fields.get("sum", 0.0)), int(fields.get("count", 0)))
        return out

    def history(self, job_id: str) -> list[dict[str, Any]]:
        """Every step the job went through (the last HISTORY), oldest first; times in ISO 8601
        UTC like every other time the API shows (stored as epoch seconds)."""
        steps = [json.loads(raw) for raw in self.client.lrange(history_key(job_id, self.prefix), 0, -1)]
        for step in steps:
            if isinstance(step.get("updated_at"), (int, float)):
                step["updated_at"] = iso(step["updated_at"])
        return steps

    # ------------------------------------------------------------------ liveness (heartbeats)

    def heartbeat(self, job_id: str, owner: str) -> None:
        """The worker process running the job (owner: host:pid) says it is alive, now."""
        now = time.time()
        with self.client.pipeline() as pipe:
            pipe.hset(job_key(job_id, self.prefix), mapping={"heartbeat_at": str(now), "owner": owner})
            pipe.zadd(self.prefix + ALIVE, {job_id: now})
            pipe.execute()

    def beat_of(self, record: dict[str, Any]) -> tuple[str, float] | None:
        """(owner, seconds since its last heartbeat) of a record that has one."""
        if "owner" not in record or "heartbeat_at" not in record:
            return None
        return record["owner"], time.time() - float(record["heartbeat_at"])

    def stopped_beating(self, timeout: float) -> list[str]:
        """Jobs whose worker has not said it is alive for timeout seconds."""
        return [i.decode() for i in self.client.zrangebyscore(self.prefix + ALIVE, "-inf", time.time() - timeout)]

    def redis_uptime(self) -> float:
        """Seconds since this Redis server started: heartbeats it lost in a restart, or missed
        while it was away, say nothing about the workers."""
        return float(self.client.info("server")["uptime_in_seconds"])

    def claim_reaping(self, job_id: str, seconds: float) -> bool:
        """One reaper at a time per job, whichever worker it runs in."""
        return bool(self.client.set(f"{job_key(job_id, self.prefix)}:reaping", "1", nx=True, ex=max(1, int(seconds))))

    def forget_beat(self, job_id: str) -> None:
        self.client.zrem(self.prefix + ALIVE, job_id)

    def begin_attempt(self, job_id: str) -> int:
        """Count one more start of the job (a re-run after a lost worker counts again); 0 when
        the job has no record (never a partial record without a TTL)."""
        return int(self._attempt(keys=[job_key(job_id, self.prefix)]))

    def give_back(self, job_id: str, message: str) -> bool:
        """A running job goes back to PENDING as if this attempt had never begun (a clean stop of
        its worker is no failure of the job); False when it has no record or already ended."""
        if self._give_back(keys=[job_key(job_id, self.prefix)]) != 1:
            return False
        self.forget_beat(job_id)
        return self.update(job_id, PENDING, message, 0.0)


def _public_record(values: list[bytes | None]) -> dict[str, Any] | None:
    """A job as status answers show it, from the HMGET of its _SHOWN fields; None without a record."""
    if values[0] is None:  # every record holds its job_id from create() on
        return None
    return public_view(_decode({f.encode(): v for f, v in zip(_SHOWN, values, strict=True) if v is not None}))


def queue_position(client: redis.Redis, queue_key: str, job_id: str) -> tuple[int, int] | None:
    """(position, length) of a job's message in the broker's queue, 1 = the next a worker takes
    (kombu pushes on the left and pops on the right); None when it is not there (taken by a
    worker that has not started it yet). Read only for a PENDING job's status."""
    needle = job_id.encode()
    messages = client.lrange(queue_key, 0, -1)
    for index, raw in enumerate(messages):
        if needle in raw:
            return len(messages) - index, len(messages)
    return None


def withdraw(client: redis.Redis, queue_key: str, job_id: str) -> bool:
    """Take a job's message off the broker's queue (a cancelled job's), if it is still waiting
    there; False when a worker took it already."""
    needle = job_id.encode()
    for raw in client.lrange(queue_key, 0, -1):
        if needle in raw and json.loads(raw).get("headers", {}).get("id") == job_id:  # not a mention in a body
            return bool(client.lrem(queue_key, 1, raw))
    return False


def _encode(record: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in record.items():
        if key in _JSON_FIELDS:
            out[key] = json.dumps(value)
        else:
            out[key] = str(value)
    return out


def _decode(raw: dict[bytes, bytes]) -> dict[str, Any]:
    record: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
    for key in _JSON_FIELDS:
        if key in record:
            record[key] = json.loads(record[key])
    for key in _FLOAT_FIELDS:
        if key in record:
            record[key] = float(record[key])
    for key in _INT_FIELDS:
        if key in record:
            record[key] = int(record[key])
    return record


def public_view(record: dict[str, Any]) -> dict[str, Any]:
    """A job record as the API shows it (API.md: job_id, status, message, progress, ...)."""
    view = {
        "job_id": record["job_id"],
        "kind": record["kind"],
        "status": record["status"],
        "message": record["message"],
        "progress": round(record.get("progress", 0.0), 4),
        "attempts": record.get("attempts", 0),
        "created_at": iso(record["created_at"]),
        "updated_at": iso(record["updated_at"]),
    }
    if "started_at" in record:
        view["started_at"] = iso(record["started_at"])
    if record["status"] == COMPLETED:
        if record["kind"] == "training":
            view["model_key"] = record.get("model_key", record["job_id"])
            view["metrics"] = record.get("metrics", {})
            if record.get("decision"):  # a named model's later version: the promotion gate's
                view["decision"] = record["decision"]
        elif record["kind"] == "comparison":
            view["comparison"] = record.get("comparison", {})
        else:
            view["rows"] = record.get("rows", 0)
    if "invalid_rows" in record:
        view["invalid_rows"] = record["invalid_rows"]
    if "request_id" in record:
        view["request_id"] = record["request_id"]
    if record.get("lineage"):
        view["lineage"] = record["lineage"]
    if record.get("trigger"):
        view["trigger"] = record["trigger"]
    if "cancelled_at" in record:
        view["cancelled"] = {"at": iso(record["cancelled_at"]), "by": record.get("cancelled_by", "")}
    if record.get("spark_ui") and record["status"] not in FINAL:
        view["spark_ui"] = record["spark_ui"]  # the UI lives as long as the job runs
    return view


def iso(timestamp: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, the one time format of the API."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}Z"
