"""Job records in Redis: what a client polls.

Celery's result backend knows SUCCESS and FAILURE; clients must only ever see the service's own
states, so each job has a record of its own (a hash ``job:<id>``) written when the id is issued
and moved by the worker through :class:`messagehandler.MessageHandler`. A never-issued id has no
record (404, not an eternal PENDING); a final record (COMPLETED, FAILED) is never moved again, so
a late or duplicated update cannot undo an outcome.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

PENDING, STARTED, SUBMITTED, COMPLETED, FAILED = "PENDING", "STARTED", "SUBMITTED", "COMPLETED", "FAILED"
STATES = (PENDING, STARTED, SUBMITTED, COMPLETED, FAILED)
FINAL = frozenset({COMPLETED, FAILED})
KINDS = ("training", "predictall")

# Sets fields unless the record is missing (0) or final (-1), appends the step to the job's
# history (the last HISTORY steps), refreshes both TTLs.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[2] == '0' and (status == 'COMPLETED' or status == 'FAILED') then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""
HISTORY = 200
_ATTEMPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
"""

_JSON_FIELDS = ("metrics", "result", "parameters", "lineage")
_FLOAT_FIELDS = ("progress", "created_at", "updated_at")
_INT_FIELDS = ("attempts", "rows", "invalid_rows")
# What public_view reads; the first is in every record.
_SHOWN = (
    "job_id", "kind", "status", "message", "progress", "attempts", "created_at", "updated_at",
    "model_key", "metrics", "rows", "invalid_rows", "spark_ui", "lineage",
)  # fmt: skip
MAX_LIST = 500  # most jobs one GET /jobs/ shows


def job_key(job_id: str, prefix: str = "") -> str:
    return f"{prefix}job:{job_id}"


def history_key(job_id: str, prefix: str = "") -> str:
    return f"{prefix}job:{job_id}:history"


def index_key(prefix: str = "") -> str:
    """The sorted set of job ids by creation time, which GET /jobs/ reads newest first."""
    return f"{prefix}jobs"


def lineage(job: dict[str, Any]) -> dict[str, Any]:
    """What a list of jobs shows of a job document: what it runs on, and the user's words."""
    schema = job.get("schema") if isinstance(job.get("schema"), dict) else {}
    label = schema.get("label") if isinstance(schema.get("label"), dict) else {}
    shown = {
        "algorithm": job.get("name"),
        "input_collection": job.get("inputCollection"),
        "output_collection": job.get("outputCollection"),
        "model_key": job.get("modelkey"),
        "label": label.get("key"),
        "description": job.get("description"),
        "tags": job.get("tags"),
    }
    return {k: v for k, v in shown.items() if v is not None}


class JobStore:
    def __init__(self, client: redis.Redis, ttl: int, prefix: str = ""):
        self.client = client
        self.ttl = ttl
        self.prefix = prefix
        self._update = client.register_script(_UPDATE)
        self._attempt = client.register_script(_ATTEMPT)

    def create(self, job_id: str, kind: str, parameters: dict[str, Any]) -> dict[str, Any]:
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
            "lineage": lineage(parameters),
        }
        key = job_key(job_id, self.prefix)
        with self.client.pipeline() as pipe:
            pipe.hset(key, mapping=_encode(record))
            pipe.expire(key, self.ttl)
            pipe.zadd(index_key(self.prefix), {job_id: now})
            # ids older than the TTL have no record left: the index forgets them as it grows
            pipe.zremrangebyscore(index_key(self.prefix), "-inf", now - self.ttl)
            pipe.execute()
        return record

    def get(self, job_id: str) -> dict[str, Any] | None:
        raw = self.client.hgetall(job_key(job_id, self.prefix))
        return _decode(raw) if raw else None

    def view(self, job_id: str) -> dict[str, Any] | None:
        """The job as the API shows it (public_view), reading only the fields shown: clients poll
        this, and the stored job document beside them can be large."""
        values = self.client.hmget(job_key(job_id, self.prefix), _SHOWN)
        return _shown(values)

    def recent(self, limit: int, kind: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """The newest jobs first, at most limit, of a kind and a status when given. Filtered
        lists read the index in pages, so a rare status does not stop at the first page."""
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
            for values in rows:
                view = _shown(values)
                if view and kind in (None, view["kind"]) and status in (None, view["status"]):
                    found.append(view)
            start += page - len(gone)
        return found[:limit]

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
        if progress is not None:
            fields["progress"] = float(progress)
        elif status == COMPLETED:
            fields["progress"] = 1.0
        flat = [x for pair in _encode(fields).items() for x in pair]
        step = json.dumps({k: fields[k] for k in ("status", "message", "progress", "updated_at") if k in fields})
        keys = [job_key(job_id, self.prefix), history_key(job_id, self.prefix)]
        return self._update(keys=keys, args=[self.ttl, "1" if force else "0", step, HISTORY, *flat]) == 1

    def history(self, job_id: str) -> list[dict[str, Any]]:
        """Every step the job went through (the last HISTORY), oldest first; times in ISO 8601
        UTC like every other time the API shows (stored as epoch seconds)."""
        steps = [json.loads(raw) for raw in self.client.lrange(history_key(job_id, self.prefix), 0, -1)]
        for step in steps:
            if isinstance(step.get("updated_at"), (int, float)):
                step["updated_at"] = iso(step["updated_at"])
        return steps

    def begin_attempt(self, job_id: str) -> int:
        """Count one more start of the job (a re-run after a lost worker counts again); 0 when
        the job has no record (never a partial record without a TTL)."""
        return int(self._attempt(keys=[job_key(job_id, self.prefix)]))


def _shown(values: list[bytes | None]) -> dict[str, Any] | None:
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
    if record.get("lineage"):
        view["lineage"] = record["lineage"]
    if record.get("spark_ui") and record["status"] not in FINAL:
        view["spark_ui"] = record["spark_ui"]  # the UI lives as long as the job runs
    if record["status"] == COMPLETED:
        if record["kind"] == "training":
            view["model_key"] = record.get("model_key", record["job_id"])
            view["metrics"] = record.get("metrics", {})
        else:
            view["rows"] = record.get("rows", 0)
    if "invalid_rows" in record:
        view["invalid_rows"] = record["invalid_rows"]
    return view


def iso(timestamp: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, the one time format of the API."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}Z"
