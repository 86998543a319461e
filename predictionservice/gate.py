"""The promotion gate (docs/API.md, "Named models"): after a training job made version n > 1 of a
name, its worker compares the name's ``production`` version with the new one on the new version's
held-out rows, by the name's policy metric, and records the outcome in the version's ``decision``
(moving ``production`` to it when it wins and the policy lets the gate promote).

This module holds the rule and the bookkeeping; the figures come from a ``compare`` callable (the
worker's: predictionservice.sparkgate scores both stored models with Spark). It imports neither
Spark nor Flask, so the rule is tested without either.

The sensible cases, each recorded in the decision's ``reason`` (the version stays ``candidate``):

* no ``production`` alias (removed by hand): nothing to compare with, the gate does not promote
  (a person chose to have none; ``PUT /registry/<name>/aliases/production`` chooses one);
* held-out rows production cannot score (a category or a field its schema does not know): they
  are left out of both figures and counted (``unscorable_rows`` and ``unscorable_reasons``); when
  it can score none, nothing is compared;
* a figure that is not a number (AUC over held-out rows of one class): nothing is compared;
* any failure of the comparison: the version stays stored, the decision is ``kept`` with ``error``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from predictionservice.defaults import LOWER_IS_BETTER
from predictionservice.exceptions import GateError, ServiceError
from predictionservice.registry import PRODUCTION, Registry, now, policy_of

log = logging.getLogger("prediction_service.gate")

PROMOTED, KEPT = "promoted", "kept"
# compare(production's stored model, the metric) -> the figures (see sparkgate.compare)
Compare = Callable[[dict[str, Any], str], dict[str, Any]]


def improvement(metric: str, new: float, production: float) -> float:
    """How much better the new figure is than production's (negative: worse)."""
    return production - new if metric in LOWER_IS_BETTER else new - production


def rule(policy: dict[str, Any], new: float | None, production: float | None) -> tuple[bool, str]:
    """(promote, why): the new version takes production when its figure is better by at least
    min_delta (0: strictly better) and auto_promote is on."""
    metric, delta = policy["metric"], float(policy.get("min_delta") or 0.0)
    if new is None or production is None:
        return False, f"{metric} could not be measured for both versions: nothing compared"
    gain = improvement(metric, new, production)
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    figures = f"{metric} {new:.6g} against production's {production:.6g} ({direction} is better)"
    if gain <= 0 or gain < delta:
        needed = f"better by at least {delta:g}" if delta > 0 else "strictly better"
        return False, f"not {needed}: {figures}"
    if not policy.get("auto_promote", True):
        return False, f"better ({figures}), but the policy's auto_promote is false: promote it by hand"
    return True, f"better by {gain:.6g} (min_delta {delta:g}): {figures}"


def finite(value: Any) -> float | None:
    """A figure as JSON can hold it: None for NaN or infinity."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def judged(policy: dict[str, Any], production_version: int, figures: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """(promote, the decision) of a comparison's figures."""
    new, old = finite(figures.get("new")), finite(figures.get("production"))
    if figures.get("rows", 0) == 0:
        promote, why = False, figures.get("why_none") or "no held-out row to compare on"
    else:
        promote, why = rule(policy, new, old)
    unscorable = figures.get("unscorable_rows", 0)
    if unscorable:
        why += f"; {unscorable} held-out rows production cannot score were left out of both figures"
    return promote, {
        **record(policy, production_version, PROMOTED if promote else KEPT, why),
        "new": new,
        "production": old,
        **{k: figures.get(k, 0) for k in ("rows", "heldout_rows", "unscorable_rows")},
        "unscorable_reasons": figures.get("unscorable_reasons", {}),
    }


def record(policy: dict[str, Any], production_version: int | None, decision: str, reason: str) -> dict[str, Any]:
    """What every decision says, whatever happened."""
    return {
        "decision": decision,
        "reason": reason,
        "metric": policy.get("metric"),
        "lower_is_better": policy.get("metric") in LOWER_IS_BETTER,
        "min_delta": policy.get("min_delta"),
        "auto_promote": policy.get("auto_promote"),
        "production_version": production_version,
        "new": None,
        "production": None,
        "rows": 0,
        "error": None,
        "decided_at": now(),
    }


def run(registry: Registry, name: str, key: str, compare: Compare) -> dict[str, Any] | None:
    """The gate for the version model key is of name: its decision, recorded (None when there
    is nothing to decide: version 1, or a version decided already, a redelivered job's)."""
    entry = registry.entry(name)
    version = next((v for v in entry["versions"] if v["model_key"] == key), None)
    if version is None or version["version"] == 1 or version.get("decision") is not None:
        return None
    number, policy = version["version"], policy_of(entry)
    production = entry["aliases"].get(PRODUCTION)
    try:
        promote, decision = _decided(registry, entry, number, production, compare)
    except Exception as exc:  # the version stays; its decision says why nothing was compared
        if not isinstance(exc, ServiceError):
            log.exception("promotion gate of %s version %s failed", name, number)
        message = exc.message if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
        promote = False
        decision = {**record(policy, production, KEPT, f"the gate failed: {message}"), "error": message}
    entry = registry.decide(name, number, decision, promote, if_production=production)
    return next(v["decision"] for v in entry["versions"] if v["version"] == number)  # as recorded


def _decided(
    registry: Registry, entry: dict[str, Any], number: int, production: int | None, compare: Compare
) -> tuple[bool, dict[str, Any]]:
    policy = policy_of(entry)
    if production is None:
        why = "no production version to compare with (the alias was removed): not promoted"
        return False, record(policy, None, KEPT, why)
    if production == number:  # moved there by hand before the gate ran
        return False, record(policy, production, KEPT, "already production")
    if not policy.get("metric"):
        raise GateError(f"the policy of {entry['name']!r} names no metric (its task is unknown)")
    found = next((v for v in entry["versions"] if v["version"] == production), None)
    loaded = registry.store.load(found["model_key"]) if found else None
    if loaded is None:
        raise GateError(f"the model of production (version {production}) is not in the model store")
    return judged(policy, production, compare(loaded[0], policy["metric"]))


def words(decision: dict[str, Any] | None) -> str:
    """What a training job's final message adds about the gate."""
    if decision is None:
        return ""
    if decision["decision"] == PROMOTED:
        return f"; promoted to production: {decision['reason']}"
    return f"; kept as candidate: {decision['reason']}"
