"""gate.py: the promotion gate's rule (min_delta, lower-is-better metrics, auto_promote) without
Spark, and its bookkeeping on a real registry (Redis db 9) with the figures handed in: production
missing, a comparison that fails, a redelivered job, rows production cannot score."""

import math

import pytest

from predictionservice import gate
from predictionservice.exceptions import GateError
from predictionservice.modelstore import ModelStore
from predictionservice.registry import Registry

KEY1, KEY2, KEY3 = "a" * 32, "b" * 32, "c" * 32
AUC = {"metric": "auc", "min_delta": 0.0, "auto_promote": True}
RMSE = {"metric": "rmse", "min_delta": 0.0, "auto_promote": True}


@pytest.mark.parametrize(
    ("policy", "new", "production", "promote"),
    [
        (AUC, 0.81, 0.80, True),  # higher is better: strictly better is enough at min_delta 0
        (AUC, 0.80, 0.80, False),  # equal is not better
        (AUC, 0.79, 0.80, False),
        ({**AUC, "min_delta": 0.05}, 0.84, 0.80, False),  # better, by less than min_delta
        ({**AUC, "min_delta": 0.05}, 0.86, 0.80, True),
        ({**AUC, "min_delta": 0.25}, 0.75, 0.50, True),  # by exactly min_delta (exact in binary): at least
        (RMSE, 0.9, 1.0, True),  # lower is better
        (RMSE, 1.1, 1.0, False),
        ({**RMSE, "metric": "log_loss", "min_delta": 0.2}, 0.85, 1.0, False),
        ({**RMSE, "metric": "log_loss", "min_delta": 0.2}, 0.75, 1.0, True),
        ({**RMSE, "metric": "mae"}, 0.5, 0.6, True),
        ({**AUC, "auto_promote": False}, 0.99, 0.50, False),  # better, but the gate may not promote
        (AUC, None, 0.8, False),  # a figure that could not be measured
    ],
)
def test_the_rule(policy, new, production, promote):
    promoted, why = gate.rule(policy, new, production)
    assert promoted is promote, why
    if new is not None:
        assert f"{policy['metric']} {new:.6g} against production's {production:.6g}" in why
    if promote:
        assert why.startswith("better by")
    elif policy.get("auto_promote") is False:
        assert "auto_promote is false" in why


def test_improvement_is_signed_by_the_metric_s_direction():
    assert gate.improvement("auc", 0.9, 0.8) == pytest.approx(0.1)
    assert gate.improvement("rmse", 0.9, 0.8) == pytest.approx(-0.1)
    assert gate.improvement("log_loss", 0.5, 0.7) == pytest.approx(0.2)


def test_a_figure_that_is_not_a_number_is_recorded_as_null_and_compares_nothing():
    promote, decision = gate.judged(AUC, 1, {"new": math.nan, "production": 0.7, "rows": 10, "heldout_rows": 10})
    assert promote is False and decision["new"] is None and decision["production"] == 0.7
    assert "could not be measured" in decision["reason"]


# ------------------------------------------------------------------------ on a real registry


def stored(auc: float = 0.8) -> dict:
    return {"name": "LogisticRegressionWrapper", "task": "binary", "metrics": {"auc": auc}, "schema": {}}


@pytest.fixture()
def registry(redis_db):
    registry = Registry(ModelStore(redis_db, "svc:"))
    registry.add_version("bank", KEY1, stored(0.7))
    registry.add_version("bank", KEY2, stored(0.9))
    return registry


def figures(new: float, production: float, rows: int = 50, unscorable: int = 0):
    """A compare that answers these figures and records what it was asked."""
    asked = []

    def compare(production_model: dict, metric: str) -> dict:
        asked.append((production_model, metric))
        reasons = {"field 'c' is missing": unscorable} if unscorable else {}
        return {"new": new, "production": production, "rows": rows, "heldout_rows": rows + unscorable,
                "unscorable_rows": unscorable, "unscorable_reasons": reasons}  # fmt: skip

    return compare, asked


def test_a_better_version_is_promoted_and_its_decision_recorded(registry):
    compare, asked = figures(0.9, 0.7)
    decision = gate.run(registry, "bank", KEY2, compare)
    assert asked == [(stored(0.7), "auc")]  # production's stored model, the policy's metric
    assert decision["decision"] == "promoted" and (decision["new"], decision["production"]) == (0.9, 0.7)
    assert decision["production_version"] == 1 and decision["rows"] == 50 and decision["error"] is None
    entry = registry.show("bank")
    assert entry["aliases"] == {"production": 2, "candidate": 2}
    assert entry["versions"][1]["decision"] == decision and entry["versions"][0]["decision"] is None
    assert (entry["history"][0]["alias"], entry["history"][0]["why"]) == ("production", "promoted")
    assert gate.words(decision).startswith("; promoted to production: better by 0.2")


def test_a_worse_version_is_kept_and_the_policy_decides(registry):
    registry.set_policy("bank", {"min_delta": 0.1})
    decision = gate.run(registry, "bank", KEY2, figures(0.75, 0.7)[0])
    assert decision["decision"] == "kept" and decision["min_delta"] == 0.1
    assert registry.show("bank")["aliases"]["production"] == 1
    assert gate.words(decision).startswith("; kept as candidate: not better by at least 0.1")


def test_auto_promote_false_records_the_win_and_moves_nothing(registry):
    registry.set_policy("bank", {"auto_promote": False})
    decision = gate.run(registry, "bank", KEY2, figures(0.95, 0.7)[0])
    assert decision["decision"] == "kept" and "auto_promote is false" in decision["reason"]
    assert registry.show("bank")["aliases"]["production"] == 1


def test_rows_production_cannot_score_are_counted_and_said(registry):
    decision = gate.run(registry, "bank", KEY2, figures(0.9, 0.7, rows=40, unscorable=10)[0])
    assert decision["unscorable_rows"] == 10 and decision["heldout_rows"] == 50 and decision["rows"] == 40
    assert decision["unscorable_reasons"] == {"field 'c' is missing": 10}
    assert "10 held-out rows production cannot score" in decision["reason"]


def test_production_scoring_no_row_compares_nothing(registry):
    decision = gate.run(registry, "bank", KEY2, figures(0.9, 0.7, rows=0, unscorable=30)[0])
    assert decision["decision"] == "kept" and "no held-out row" in decision["reason"]


def test_without_production_nothing_is_compared_or_promoted(registry):
    registry.remove_alias("bank", "production")
    compare, asked = figures(0.9, 0.7)
    decision = gate.run(registry, "bank", KEY2, compare)
    assert asked == [] and decision["decision"] == "kept" and decision["production_version"] is None
    assert "no production version" in decision["reason"]
    assert "production" not in registry.show("bank")["aliases"]


@pytest.mark.parametrize("error", [GateError("production is a regression model"), RuntimeError("Spark is gone")])
def test_a_failed_comparison_keeps_the_version_and_records_the_error(registry, error):
    def compare(production_model: dict, metric: str) -> dict:
        raise error

    decision = gate.run(registry, "bank", KEY2, compare)
    assert decision["decision"] == "kept" and str(error) in decision["error"]
    assert decision["reason"].startswith("the gate failed: ")
    entry = registry.show("bank")
    assert [v["model_key"] for v in entry["versions"]] == [KEY1, KEY2]  # the version stays
    assert entry["versions"][1]["decision"] == decision and entry["aliases"]["production"] == 1


def test_a_production_model_missing_from_the_store_is_an_error_recorded(registry):
    registry.store.client.delete("svc:" + KEY1)  # lost behind the registry's back
    decision = gate.run(registry, "bank", KEY2, figures(0.9, 0.7)[0])
    assert "not in the model store" in decision["error"]


def test_version_1_and_a_decided_version_are_not_judged_again(registry):
    compare, asked = figures(0.9, 0.7)
    assert gate.run(registry, "bank", KEY1, compare) is None  # the first version: production already
    first = gate.run(registry, "bank", KEY2, compare)
    again = gate.run(registry, "bank", KEY2, figures(0.1, 0.7)[0])  # a redelivered job: decided already
    assert again is None and len(asked) == 1
    assert registry.show("bank")["versions"][1]["decision"] == first


def test_a_production_moved_while_the_gate_compared_is_not_taken_over(registry):
    registry.add_version("bank", KEY3, stored(0.95))

    def compare(production_model: dict, metric: str) -> dict:
        registry.move("bank", "production", 3)  # by hand, or another version's gate, meanwhile
        return figures(0.9, 0.7)[0](production_model, metric)

    decision = gate.run(registry, "bank", KEY2, compare)
    assert decision["decision"] == "kept" and decision["production_version"] == 1
    assert decision["reason"].endswith("production moved to version 3 meanwhile: not promoted")
    entry = registry.show("bank")
    assert entry["aliases"]["production"] == 3 and entry["versions"][1]["decision"] == decision
