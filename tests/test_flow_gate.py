"""The promotion gate through the running service (docs/API.md, "Named models"): a weak version
(a lasso penalty so heavy that every coefficient is 0: it answers the prior; for the multi-class
name a forest of stumps), then a good one, then a weak one again, on a real worker with Spark.
Production ends on the good one; each later version's decision names both figures, measured on
its own held-out rows, for a binary, a multi-class and a regression model. Small data and one
grid point: the module is short."""

import uuid

import pytest

from helpers import known_rows

WEAK = {"regParam": [1e6], "elasticNetParam": [1.0]}  # every coefficient 0: the prior (or the mean)
GOOD = {"regParam": [0.001], "elasticNetParam": [0.0]}
ROWS = 400


def load(mongo_client, kind: str, classes: int = 2) -> tuple[str, dict]:
    rows, schema, _ = known_rows(kind, ROWS, seed=7, classes=classes)
    collection = f"gate_{kind}_{uuid.uuid4().hex[:8]}"
    mongo_client["gate"][collection].insert_many(rows)
    return f"gate.{collection}", schema


def three_versions(service, job: dict, first: dict | None = None) -> tuple[str, list[dict], dict]:
    """Weak (first: its own fields, another schema or algorithm say), good, weak: the name, the
    final statuses and the name's entry."""
    name = f"gate-{uuid.uuid4().hex[:8]}"
    finals = []
    for fields in (first or WEAK, GOOD, WEAK):
        final, _ = service.train({**job, **fields, "model": name})
        assert final["status"] == "COMPLETED", final
        finals.append(final)
    return name, finals, service.get(f"/registry/{name}").json()


def check_three(service, finals: list[dict], entry: dict, metric: str, lower_is_better: bool) -> None:
    """Production on version 2 (promoted over 1), version 3 kept, both figures in each decision."""
    assert entry["aliases"] == {"production": 2, "candidate": 3}
    moves = [(h["alias"], h["from"], h["to"], h["why"]) for h in reversed(entry["history"])]
    assert ("production", 1, 2, "promoted") in moves and moves[0] == ("production", None, 1, "first version")
    first, second, third = entry["versions"]
    assert first["decision"] is None and "decision" not in finals[0]
    better = (lambda a, b: a < b) if lower_is_better else (lambda a, b: a > b)
    for version, final, outcome, against in ((second, finals[1], "promoted", 1), (third, finals[2], "kept", 2)):
        decision = version["decision"]
        assert decision == final["decision"], final  # the job's status shows what the registry records
        assert decision["decision"] == outcome and decision["production_version"] == against
        assert decision["metric"] == metric and decision["lower_is_better"] is lower_is_better
        assert decision["error"] is None and decision["rows"] > 0 and decision["min_delta"] == 0
        assert decision["rows"] + decision["unscorable_rows"] == decision["heldout_rows"]
        stored = service.get(f"/models/{final['model_key']}").json()
        assert decision["heldout_rows"] == stored["training"]["holdout_rows"]  # the very rows training held out
        words = "promoted to production" if outcome == "promoted" else "kept as candidate"
        assert words in final["message"] and f"{metric} " in final["message"], final["message"]
    assert better(second["decision"]["new"], second["decision"]["production"])
    assert better(third["decision"]["production"], third["decision"]["new"])
    # production (version 2) scored from its stored form, on version 3's rows: what training measured
    assert third["decision"]["unscorable_rows"] == 0
    assert third["decision"]["new"] == pytest.approx(third["metrics"][metric], rel=1e-6, abs=1e-9)


def test_binary_production_ends_on_the_good_version_and_rows_production_cannot_score_are_counted(service, mongo_client):
    source, schema = load(mongo_client, "logistic")
    job = {"name": "LogisticRegressionWrapper", "inputCollection": source, "schema": schema, "numFolds": 2}
    # version 1 knows two of c's three categories: the held-out rows with the third are not its to score
    narrow = {**schema, "features": [*schema["features"][:2], {"key": "c", "values": {"a": 0, "b": 1}}]}
    name, finals, entry = three_versions(service, job, {**WEAK, "schema": narrow})
    check_three(service, finals, entry, "auc", lower_is_better=False)
    second = entry["versions"][1]["decision"]
    reason = "field 'c' has a value that is not one of the schema's categories"
    assert second["unscorable_rows"] > 0 and second["unscorable_reasons"] == {reason: second["unscorable_rows"]}
    assert "production cannot score" in second["reason"]
    assert second["production"] == pytest.approx(0.5)  # every coefficient 0: one score for every row
    answer = service.post("/predict/", json={"modelkey": name, "record": {"x1": 0.5, "x2": -0.5, "c": "c"}}).json()
    assert answer["model"] == {"name": name, "version": 2, "model_key": finals[1]["model_key"]}  # the name serves it


def test_regression_production_ends_on_the_good_version(service, mongo_client):
    source, schema = load(mongo_client, "linear")
    job = {"name": "LinearRegressionWrapper", "inputCollection": source, "schema": schema, "numFolds": 2}
    _, finals, entry = three_versions(service, job)
    check_three(service, finals, entry, "rmse", lower_is_better=True)


def test_multiclass_production_ends_on_the_good_version_whatever_its_algorithm(service, mongo_client):
    source, schema = load(mongo_client, "logistic", classes=3)
    job = {"name": "LogisticRegressionWrapper", "inputCollection": source, "schema": schema, "numFolds": 2}
    stumps = {"name": "RandomForestWrapper", "numTrees": [3], "maxDepth": [1]}  # version 1: a forest of stumps
    _, finals, entry = three_versions(service, job, stumps)
    check_three(service, finals, entry, "log_loss", lower_is_better=True)
