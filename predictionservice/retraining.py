"""Retraining a named model (docs/API.md, "Named models", "Retraining"): its last job document
queued again, on its input collection as it is now.

``Retrainer.retrain`` is what ``POST /registry/<name>/retrain`` and a schedule's tick run (the
scheduler: scheduler.py, no web request at all): the same code, the same skip rule. Every
collaborator comes in as an argument: the registry (the name's ``last_job``: the document its
latest version was trained from, and its ``retrains`` record), the job store's Redis client
and key prefix (each name's latest training job, ``jobstore.NAMED``) and ``submit``, the
training submission of this process (``submission.submit_training`` with its collaborators).

The skip rule: a retrain claims its name in one Lua call that reads the name's latest job and
its record; while that job is PENDING, STARTED or SUBMITTED (or a claim younger than
CLAIM_SECONDS has no record yet: another retrain is submitting), the retrain is skipped, the skip
recorded, and RetrainSkipped (409) names the job. Any training job whose document names the model
(``POST /train/`` too) becomes the name's latest job when its record is created.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import redis

from predictionservice.exceptions import Conflict, InvalidRequest, RetrainSkipped, ServiceError, shown
from predictionservice.jobqueue import Origin
from predictionservice.jobstore import NAMED, job_key
from predictionservice.registry import Registry
from predictionservice.validation import JOB_VALIDATOR

# submit(document, origin, job_id): check and queue a training job; its id (or a ServiceError).
Submit = Callable[[Any, Origin, str], str]
# what started a retrain (its record's "trigger"): a client, a schedule's tick, a drift check's verdict
MANUAL, SCHEDULE, DRIFT = "manual", "schedule", "drift"
CLAIM_SECONDS = 60  # a claim whose job has no record yet blocks other retrains this long at most

# KEYS[1]: the name's latest job; ARGV: the claim, now, the claim's TTL, the job records' key
# prefix, CLAIM_SECONDS. The running job's id, or false once the claim is taken.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then
  local id, at = string.match(current, '^([0-9a-f]+):?([0-9.]*)$')
  if id then
    local status = redis.call('HGET', ARGV[4] .. id, 'status')
    if status == 'PENDING' or status == 'STARTED' or status == 'SUBMITTED' then return id end
    if (not status) and at ~= '' and tonumber(ARGV[2]) - tonumber(at) < tonumber(ARGV[5]) then return id end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return false
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def merged(document: Mapping[str, Any], overrides: Any, name: str) -> dict[str, Any]:
    """The last job document with a retrain's overrides, checked against the job document's JSON
    Schema (unknown fields, wrong types: 400 naming the field). The model's name stays."""
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise InvalidRequest(
            "a retrain's body, when there is one, must be a JSON object of job document fields that "
            'override the last job document\'s (e.g. {"numFolds": 2})',
            details=[{"field": "", "problem": "not an object"}],
        )
    if "model" in overrides and overrides["model"] != name:
        raise InvalidRequest(
            f"a retrain of {name!r} makes a version of {name!r}: 'model' may not be "
            f"{shown(str(overrides['model']))} (train it with POST /train/ instead)",
            details=[{"field": "model", "problem": "not the retrained name"}],
        )
    document = {**document, **overrides, "model": name}
    JOB_VALIDATOR.check(document, "job document")
    return document


class Retrainer:
    """Retrains of the named models of one registry, queued through submit."""

    def __init__(self, registry: Registry, jobs_client: redis.Redis, prefix: str, ttl: int, submit: Submit):
        self.registry = registry
        self.client = jobs_client
        self.prefix = prefix
        self.ttl = ttl
        self.submit = submit
        self._claim = jobs_client.register_script(_CLAIM)
        self._release = jobs_client.register_script(_RELEASE)

    def retrain(self, name: str, overrides: Any = None, origin: Origin | None = None, trigger: str = MANUAL) -> str:
        """Queue name's last job document again (with overrides): the new job's id. UnknownName
        (404) for a name not registered, 409 for a name with no job document to retrain from,
        400 for overrides that do not make a job document (nothing is recorded then),
        RetrainSkipped (409, recorded) while a job of the name is queued or running; a
        submission refused (the input gone, the queue full) is recorded as failed and raised."""
        document = self.registry.last_job(name)
        if document is None:
            raise Conflict(
                f"{name!r} has no job document to retrain from (its versions were stored without one): "
                f'train it once with POST /train/ and "model": {name!r}',
                details=[{"field": "name", "problem": "no job document"}],
            )
        document = merged(document, overrides, name)
        origin = origin or Origin(None, f"{trigger} retrain of {name}")
        seen = {k: origin.trigger[k] for k in ("drifted", "score_drifted") if k in (origin.trigger or {})}
        job_id = uuid.uuid4().hex
        claim = f"{job_id}:{time.time():.3f}"
        key = self.prefix + NAMED + name
        running = self._claim(keys=[key], args=[claim, time.time(), self.ttl, job_key("", self.prefix), CLAIM_SECONDS])
        if running:
            running = running.decode() if isinstance(running, bytes) else str(running)
            self._record(name, trigger, "skipped", running_job=running, overrides=overrides, **seen)
            raise RetrainSkipped(
                f"retrain of {name!r} skipped: job {running} of {name!r} is still queued or running "
                f"(GET /jobs/{running}; DELETE /jobs/{running} cancels it)",
                details=[{"field": "name", "problem": "a job of this name is queued or running", "job_id": running}],
            )
        try:
            queued = self.submit(document, origin, job_id)
        except ServiceError as exc:
            self._release(keys=[key], args=[claim])
            if trigger != MANUAL:  # a client's mistake is answered, not stored; a schedule's is kept
                self._record(name, trigger, "failed", message=exc.message, overrides=overrides, **seen)
            raise
        except BaseException:
            self._release(keys=[key], args=[claim])
            raise
        self._record(name, trigger, "queued", job_id=queued, overrides=overrides, **seen)
        return queued

    def _record(self, name: str, trigger: str, outcome: str, overrides: Any = None, **fields: Any) -> None:
        record = {"trigger": trigger, "outcome": outcome, **fields}
        if overrides:
            record["overrides"] = sorted(overrides)
        try:
            self.registry.record_retrain(name, record)
        except ServiceError:  # the name was removed meanwhile: nothing to record it in
            pass
