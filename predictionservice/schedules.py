"""Retraining schedules of named models (docs/API.md, "Named models", "Retraining").

``PUT /registry/<name>/schedule`` with ``{"every_seconds": n}`` or ``{"cron": "m h dom mon dow"}``
(and ``"when": "drift"``: a tick retrains only when the window since the last check drifted,
predictionservice.driftcheck), ``GET`` (with the next run and, for drift, the last check) and
``DELETE``. What is stored is twofold: the schedule as the client
gave it in the name's registry entry (its ``schedule`` field), and the scheduler's own entry,
which the scheduler (celery beat with redbeat: scheduler.py) fires from. The scheduler is handed
in as a backend (this library imports no queue framework), with these methods:

* ``parse(spec)``: the scheduler's schedule of ``{"every_seconds": n}`` or ``{"cron": text}``;
  ValueError saying what is wrong with a cron;
* ``save(name, schedule)``: create or replace the name's entry (its first run one period from now);
* ``delete(name)``: remove it (nothing when there is none);
* ``runs(name)``: ``(last_run, next_run)`` as epoch seconds (None when unknown or never).

A change is checked whole before anything is stored: a bad body, a cron that does not parse or
an interval under ``min_seconds`` is a 400 and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from predictionservice.exceptions import InvalidRequest, NotFound, shown
from predictionservice.jobstore import iso
from predictionservice.registry import Registry, now

FIELDS = ("every_seconds", "cron")  # a schedule's timing: exactly one
ALWAYS, DRIFT = "always", "drift"  # a schedule's "when": retrain at every tick, or only on drift
WHEN = (ALWAYS, DRIFT)
MAX_EVERY_SECONDS = 366 * 24 * 3600  # a year and a day: a longer period is a typo


class Backend(Protocol):
    def parse(self, spec: dict[str, Any]) -> Any: ...
    def save(self, name: str, schedule: Any) -> None: ...
    def delete(self, name: str) -> None: ...
    def runs(self, name: str) -> tuple[float | None, float | None]: ...


def checked(body: Any, min_seconds: int) -> dict[str, Any]:
    """The schedule a PUT body asks for: exactly one of every_seconds (a whole number of seconds,
    min_seconds at least) and cron (a string), and optionally when (WHEN: "drift" retrains only
    when the monitor flags drift); InvalidRequest naming the field otherwise."""
    unknown = sorted(set(body) - {*FIELDS, "when"}) if isinstance(body, Mapping) else []
    timings = [f for f in FIELDS if f in body] if isinstance(body, Mapping) else []
    if unknown or len(timings) != 1:
        words = f"unknown field(s) {', '.join(map(repr, unknown))}; " if unknown else ""
        raise InvalidRequest(
            f'schedule: {words}the body must be one of {{"every_seconds": n}} (n >= {min_seconds}) or '
            '{"cron": "m h dom mon dow"} (five fields, e.g. "0 3 * * *"), with "when": "drift" to retrain '
            "only when the monitor flags drift",
            details=[{"field": f, "problem": "unknown field"} for f in unknown]
            or [{"field": "", "problem": "needs exactly one of every_seconds, cron"}],
        )
    field = timings[0]
    timing = _every(body[field], min_seconds) if field == "every_seconds" else _cron(body[field])
    when = body.get("when", ALWAYS)
    if when not in WHEN:
        raise InvalidRequest(
            f"schedule: 'when' must be one of {', '.join(map(repr, WHEN))} ({ALWAYS!r}: retrain at every tick; "
            f"{DRIFT!r}: only when the window since the last check drifted), not {shown(str(when))}",
            details=[{"field": "when", "problem": f"not one of {', '.join(WHEN)}"}],
        )
    return {**timing, **({"when": when} if when != ALWAYS else {})}


def _every(value: Any, min_seconds: int) -> dict[str, Any]:
    if isinstance(value, bool) or not isinstance(value, int) or not min_seconds <= value <= MAX_EVERY_SECONDS:
        raise InvalidRequest(
            f"schedule: 'every_seconds' must be a whole number from {min_seconds} (this server's "
            f"schedule_min_seconds) to {MAX_EVERY_SECONDS}, not {shown(str(value))}",
            details=[{"field": "every_seconds", "problem": f"not a whole number >= {min_seconds}"}],
        )
    return {"every_seconds": value}


def _cron(value: Any) -> dict[str, Any]:
    if not isinstance(value, str) or len(value.split()) != 5:
        got = f"{len(value.split())} field(s)" if isinstance(value, str) else shown(str(value))
        raise InvalidRequest(
            "schedule: 'cron' must be five fields separated by spaces: minute hour day-of-month month "
            f'day-of-week (e.g. "0 3 * * *": 03:00 UTC every day), not {got}',
            details=[{"field": "cron", "problem": "not five fields"}],
        )
    return {"cron": " ".join(value.split())}


class Schedules:
    """The retraining schedules of one registry's names, kept by a scheduler backend."""

    def __init__(self, registry: Registry, backend: Backend, min_seconds: int):
        self.registry = registry
        self.backend = backend
        self.min_seconds = min_seconds

    def put(self, name: str, body: Any) -> dict[str, Any]:
        """Create or replace name's schedule: its view (with its next run)."""
        self.registry.entry(name)  # 404 naming the names there are, before the body is judged
        spec = checked(body, self.min_seconds)
        try:
            parsed = self.backend.parse(spec)
        except ValueError as exc:
            raise InvalidRequest(
                f"schedule: 'cron' {shown(spec['cron'])} does not parse: {exc}",
                details=[{"field": "cron", "problem": str(exc)[:200]}],
            ) from None
        stored = {**spec, "created_at": now()}
        self.registry.set_schedule(name, stored)
        self.backend.save(name, parsed)
        return self.view(name, stored) or {}

    def show(self, name: str) -> dict[str, Any]:
        stored = self.registry.entry(name).get("schedule")
        if not stored:
            raise NotFound(
                f'{name!r} has no schedule: PUT /registry/{name}/schedule with {{"every_seconds": n}} or '
                '{"cron": "0 3 * * *"} makes one',
                details=[{"field": "name", "problem": "no schedule"}],
            )
        return self.view(name, stored) or {}

    def view(self, name: str, stored: dict[str, Any] | None) -> dict[str, Any] | None:
        """The schedule as the API shows it: as given, when, and its last and next runs."""
        if not stored:
            return None
        last, upcoming = self.backend.runs(name)
        return {
            **stored,
            "last_run_at": iso(last) if last else None,
            "next_run_at": iso(upcoming) if upcoming else None,
        }

    def delete(self, name: str) -> None:
        """Stop name's schedule; NotFound (404) when it has none."""
        if not self.registry.entry(name).get("schedule"):
            self.backend.delete(name)  # an entry left by a change half done goes too
            raise NotFound(f"{name!r} has no schedule to delete", details=[{"field": "name", "problem": "no schedule"}])
        self.registry.set_schedule(name, None)
        self.backend.delete(name)

    def forget(self, name: str) -> None:
        """A removed name's schedule goes with it."""
        self.backend.delete(name)
