"""The audit trail: every change made through the API, kept in Redis (no web framework here).

A capped list (LPUSH then LTRIM to ``max_entries``, one transaction) in the jobs' Redis database:
newest first as GET /audit/ lists it, bounded without a sweeper, and shared by every replica. An
entry says who (the key's name and id, never its secret), the request id, the method, the route
(the rule, e.g. ``/models/<key>``), the target (the path asked for), the answer's status and the
time. Redis rather than MongoDB: the service's own state is in Redis, and MongoDB is the users'
data, which an audit trail should not depend on.
"""

from __future__ import annotations

import json
from typing import Any

import redis

TRAIL = "__audit__"


class AuditTrail:
    def __init__(self, client: redis.Redis, prefix: str = "", max_entries: int = 10_000):
        self.client = client
        self.name = prefix + TRAIL
        self.max_entries = max_entries

    def record(self, entry: dict[str, Any]) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.lpush(self.name, json.dumps(entry, separators=(",", ":")))
            pipe.ltrim(self.name, 0, self.max_entries - 1)
            pipe.execute()

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest changes, newest first."""
        return [json.loads(raw) for raw in self.client.lrange(self.name, 0, limit - 1)]
