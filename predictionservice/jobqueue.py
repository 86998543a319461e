"""The job queue's policy and its one way in: a typed job is refused when the queue is full or
its client holds its share of it, else recorded and sent to the workers.

Sending is a callable handed in (the web process's Celery app; the library imports no queue
framework), so a scheduler or a test queues exactly as a request does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from predictionservice.defaults import QUEUE_FULL_RETRY_AFTER
from predictionservice.exceptions import ServiceUnavailable, TooManyRequests
from predictionservice.jobstore import FAILED, JobStore

# send(task, args, task_id): put a message for task on the queue (Celery's send_task).
Send = Callable[[str, list[Any], str], Any]


@dataclass(frozen=True)
class Origin:
    """Who submits a job: the client (its API key, else its address: its share of the queue
    is counted by it), the request's id (X-Request-ID, or a scheduler's own words) and, for a
    job no client asked for, its trigger (a retrain on drift: the drift report); the job record
    keeps the last two."""

    client: str | None = None
    request_id: str | None = None
    trigger: dict[str, Any] | None = None


class JobQueue:
    """The queue the workers take jobs from: ``queue_key`` is its Redis list (the Celery broker
    is the same database), ``max_queued`` the most messages it holds (max_queued_jobs), and
    ``per_client`` the most of them one client may hold (max_queued_jobs_per_client)."""

    def __init__(
        self, redis_client: redis.Redis, jobs: JobStore, queue_key: str, send: Send, max_queued: int, per_client: int
    ):
        self.redis = redis_client
        self.jobs = jobs
        self.queue_key = queue_key
        self.send = send
        self.max_queued = max_queued
        self.per_client = per_client

    def submit(self, job: Any, origin: Origin, job_id: str | None = None) -> str:
        """Record a typed job and queue it; its id. The record exists before a worker can see the
        job, and names the request that submitted it. A full queue refuses the job
        (429): each waiting message holds its job document in Redis, and Redis full (noeviction)
        would fail every write of the service. A broker that cannot be reached leaves the record
        FAILED saying so, and is a 503. job_id: the id to issue (a retrain claims its name with it
        first); a new one by default."""
        waiting = self.redis.llen(self.queue_key)
        if waiting >= self.max_queued:
            raise TooManyRequests(
                f"{waiting} jobs are waiting for a worker, the most this server queues (max_queued_jobs); "
                f"retry in {QUEUE_FULL_RETRY_AFTER} s",
                retry_after=QUEUE_FULL_RETRY_AFTER,
            )
        client = origin.client or "unknown"
        self._check_share(client)
        job_id = job_id or uuid.uuid4().hex
        # the record is shown: no credentials
        self.jobs.create(job_id, job.kind, job.redacted(), origin.request_id, origin.trigger)
        self.jobs.add_queued_by(client, job_id)
        try:
            self.send(job.task, [job.to_message()], job_id)
        except Exception as exc:
            self.jobs.update(job_id, FAILED, "the job could not be queued: the broker is unreachable")
            raise ServiceUnavailable(f"the job queue (Redis) is unreachable: {type(exc).__name__}") from exc
        return job_id

    def _check_share(self, client: str) -> None:
        """One client (an API key, else an address) may hold per_client of the queue: beyond,
        429, so that one client cannot fill the queue for everyone."""
        mine = self.jobs.queued_by(client)
        if mine >= self.per_client:  # before refusing: only the jobs whose message is still in the queue count
            mine = self.jobs.queued_by(client, self.queue_key)
        if mine >= self.per_client:
            raise TooManyRequests(
                f"{mine} jobs of this client ({client}) are waiting for a worker, the most one client may "
                f"queue (max_queued_jobs_per_client: {self.per_client}); retry in {QUEUE_FULL_RETRY_AFTER} s, "
                "once one of them has started",
                retry_after=QUEUE_FULL_RETRY_AFTER,
            )
