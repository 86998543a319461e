"""The MongoDB databases the service is given (no web framework here).

A service shares its MongoDB server with whatever else lives there: another application's users,
their password hashes. Only the databases named by the setting ``datasets_allowed_dbs`` (by default
``datasets``; ``*`` gives every database but the system ones) and those the service itself created
through its own API are visible: listed, read, exported, trained on, scored or written. The ones it
created are recorded in Redis (a set, shared by every replica) when it first writes one: a ``PUT
/datasets/<db>/...`` or a scoring job's output naming a database that does not exist yet still
works, and that database is the service's from then on. Any other database is ``403 forbidden``
naming the setting, and ``GET /datasets/`` does not show it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis

from predictionservice.exceptions import Forbidden, shown
from predictionservice.mongotarget import CollectionRef

WRITTEN = "__written_dbs__"
EVERY = "*"


class AllowedDatabases:
    def __init__(self, client: redis.Redis, prefix: str = "", named: Sequence[str] = ("datasets",)):
        self.client = client
        self.written = prefix + WRITTEN
        self.named = frozenset(named)

    def allows(self, db: str) -> bool:
        return EVERY in self.named or db in self.named or bool(self.client.sismember(self.written, db))

    def visible(self, dbs: Iterable[str]) -> list[str]:
        """The databases of a listing this service may show."""
        dbs = list(dbs)
        if EVERY in self.named:
            return dbs
        written = {raw.decode() for raw in self.client.smembers(self.written)}
        return [db for db in dbs if db in self.named or db in written]

    def check(self, db: str) -> None:
        """Forbidden unless the service is given this database."""
        if not self.allows(db):
            raise Forbidden(
                f"the database {shown(db)} is not one this service is given: name it in the setting "
                "datasets_allowed_dbs to use it",
                details=[{"setting": "datasets_allowed_dbs", "db": db[:100]}],
            )

    def check_write(self, db: str, exists: Callable[[str], bool]) -> None:
        """A write to db: allowed when the service is given it, or when db does not exist yet
        (the service creates it, and it is the service's from now on); else Forbidden."""
        if self.allows(db):
            return
        if exists(db):
            self.check(db)
        self.client.sadd(self.written, db)

    def guarding(self, resolve: Callable[..., CollectionRef], exists: Callable[[str], bool]) -> Callable[..., Any]:
        """A job's collection resolver that also checks the databases: its input must be given to
        the service, its output given or new (then the service's)."""

        def checked(spec: Any, field: str = "inputCollection") -> CollectionRef:
            ref = resolve(spec, field)
            if field == "outputCollection":
                self.check_write(ref.db, exists)
            else:
                self.check(ref.db)
            return ref

        return checked
