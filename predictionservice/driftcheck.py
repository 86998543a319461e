"""Retraining on drift (docs/API.md, "Retraining on drift"): a schedule with ``"when": "drift"``
retrains its name at a tick only when the window of predictions since the last check drifted.

At each tick ``DriftCheck.tick`` runs the monitor (``monitor.Monitor``: the very report of
``GET /registry/<name>/monitor``) over the production version's predictions logged since the
schedule's last check (since the schedule was made, the first time) and up to
``drift_check_lag_seconds`` before the tick: the log is written in batches after the answers,
and a prediction whose document arrived after its window was read would never be checked. Drift is flagged when a
feature or the score drifted (p-value under ``drift_p_value`` and PSI at least ``drift_min_psi``:
monitor.py says why both). Then the name is retrained as any tick retrains it
(``Retrainer.retrain``, skip rule included) with the drift report as the job's trigger: the job
record keeps it, and so do the model and the version the job makes, which then meets the
promotion gate like any other.

Every check is kept as the schedule's ``last_check``: when, the window (``since`` to ``until``),
its count, what drifted and the outcome. The next window starts at ``until``. A check that could
not be made (no production alias, a version without a training profile, the log unreachable) or
whose retrain was refused (the queue full) leaves ``until`` where the window began, so those
predictions are checked again at the next tick rather than never.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError

from predictionservice.exceptions import RetrainSkipped, ServiceError
from predictionservice.jobqueue import Origin
from predictionservice.monitor import Monitor, iso, parse_since
from predictionservice.registry import Registry
from predictionservice.retraining import DRIFT, Retrainer

# a check's outcome (its record's "outcome")
NO_PREDICTIONS, NO_DRIFT, RETRAINED, SKIPPED, FAILED, ERROR = (
    "no predictions", "no drift", "retrained", "skipped", "failed", "error",
)  # fmt: skip
_STATS = ("statistic", "p_value", "psi", "drifted")


def score_drifted(report: Mapping[str, Any]) -> bool:
    """Whether a monitor report's score drifted (a model profiled without a score: no)."""
    return bool((report["drift"].get("score") or {}).get("drifted"))


def flagged(report: Mapping[str, Any]) -> bool:
    """Whether a monitor report flags drift: a feature's, or the score's."""
    return bool(report["drifted"]) or score_drifted(report)


def trigger_of(report: Mapping[str, Any], until: str) -> dict[str, Any]:
    """What a retrain on drift keeps of the report that triggered it: the window, the version
    compared, and each feature's and the score's test (not the histograms: the monitor shows
    those at any time)."""
    score = report["drift"].get("score")
    return {
        "kind": DRIFT,
        "version": report["version"],
        "model_key": report["model_key"],
        "since": report["since"],
        "until": until,
        "count": report["count"],
        "drifted": list(report["drifted"]),
        "score_drifted": score_drifted(report),
        "features": {k: {s: f.get(s) for s in _STATS} for k, f in report["drift"]["features"].items()},
        "score": {s: score.get(s) for s in _STATS} if score else None,
    }


class DriftCheck:
    """A name's scheduled ticks: a drift check first for a schedule that says so, then the
    retrain (``retrainer``) as for any schedule."""

    def __init__(self, registry: Registry, monitor: Monitor, retrainer: Retrainer, lag_seconds: float):
        self.registry = registry
        self.monitor = monitor
        self.retrainer = retrainer
        self.lag = timedelta(seconds=lag_seconds)  # the setting drift_check_lag_seconds

    def tick(self, name: str, schedule: Mapping[str, Any], origin: Origin) -> dict[str, Any]:
        """Check the window since the last check and retrain name when it drifted: the check as
        kept in the schedule's ``last_check`` (with ``job_id`` when a job was queued)."""
        now = datetime.now(UTC)
        since = (schedule.get("last_check") or {}).get("until") or schedule["created_at"]
        end = max(now - self.lag, parse_since(since, now, 0))  # what the log may still be writing waits
        until = iso(end)
        try:
            report = self.monitor.run(name, since, None, now=now, until=end)
        except (ServiceError, PyMongoError) as exc:
            words = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            check = {"at": iso(now), "since": since, "until": since, "outcome": ERROR, "message": words[:500]}
            return self._keep(name, schedule, check)
        check = {
            "at": iso(now), "since": report["since"], "until": until, "version": report["version"],
            "count": report["count"], "drifted": list(report["drifted"]),
            "score_drifted": score_drifted(report),
        }  # fmt: skip
        if not report["count"]:
            return self._keep(name, schedule, {**check, "outcome": NO_PREDICTIONS})
        if not flagged(report):
            return self._keep(name, schedule, {**check, "outcome": NO_DRIFT})
        return self._keep(name, schedule, {**check, **self._retrain(name, origin, trigger_of(report, until))})

    def _retrain(self, name: str, origin: Origin, trigger: dict[str, Any]) -> dict[str, Any]:
        """The retrain a drifted window asks for: the outcome's fields of the check."""
        drifted = Origin(origin.client, origin.request_id, trigger)
        try:
            job_id = self.retrainer.retrain(name, None, drifted, DRIFT)
        except RetrainSkipped as exc:
            return {"outcome": SKIPPED, "running_job": exc.details[0].get("job_id"), "message": exc.message}
        except ServiceError as exc:  # refused (the queue full, the input gone): the window is checked again
            return {"outcome": FAILED, "message": exc.message, "until": trigger["since"]}
        return {"outcome": RETRAINED, "job_id": job_id}

    def _keep(self, name: str, schedule: Mapping[str, Any], check: dict[str, Any]) -> dict[str, Any]:
        try:
            self.registry.record_check(name, check, schedule["created_at"])
        except ServiceError:  # the name was removed meanwhile: nothing to keep it in
            pass
        return check
