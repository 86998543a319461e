"""predictionservice/monitor.py and GET /registry/<name>/monitor (docs/API.md, "Quality and
drift"): a window of the prediction log against a model's training profile. The profiles here are
made in numpy from a synthetic training population (the Spark-made ones are tests/
test_sparkprofile.py's); the log documents are inserted into the session's real MongoDB in the
prediction log's format, and the route is called through Flask's test client.

* windows drawn from the training data flag a feature no more often than the documented false
  positive rate (seeded, many windows);
* a shifted numeric and a shifted categorical feature are flagged, the others (and the score) not;
* quality from feedback equals the metrics sklearn computes on the same rows."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from helpers import DRIFT_CATEGORIES as CATEGORIES
from helpers import DRIFT_MODEL as MODEL
from helpers import DRIFT_PROFILE as PROFILE
from helpers import DRIFT_TRAINING as TRAINING
from helpers import docs_of, logged, population, probability
from predictionservice import monitor
from predictionservice.defaults import SETTINGS

ALPHA = SETTINGS["drift_p_value"].default
MIN_PSI = SETTINGS["drift_min_psi"].default
# ------------------------------------------------------------------------------ drift


def test_windows_drawn_from_the_training_data_are_flagged_no_more_often_than_the_false_positive_rate():
    """300 windows of 200 records resampled from the training rows: each feature (and the score)
    is flagged in at most ALPHA of them (with three standard errors of slack), and the chi-square
    test alone rejects at most that often too (its bins pooled: rare categories included)."""
    rng = np.random.default_rng(7)
    windows, size = 300, 200
    flagged = {key: 0 for key in [*PROFILE["features"], "score"]}
    rejected = dict(flagged)
    for _ in range(windows):
        picked = [TRAINING[i] for i in rng.integers(0, len(TRAINING), size)]
        found = monitor.drift(PROFILE, docs_of(picked), ALPHA, MIN_PSI)
        for key, result in [*found["features"].items(), ("score", found["score"])]:
            flagged[key] += result["drifted"]
            rejected[key] += result["p_value"] < ALPHA
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / windows)
    assert max(flagged.values()) / windows <= bound, flagged
    assert max(rejected.values()) / windows <= bound, rejected


def test_a_shifted_numeric_and_a_shifted_categorical_feature_are_flagged_and_the_others_not():
    rng = np.random.default_rng(3)
    live = population(1000, seed=2)
    shifted_c = rng.choice(list(CATEGORIES), 1000, p=[0.3, 0.5, 0.15, 0.04, 0.01])
    live = [{**r, "x1": r["x1"] + 0.5, "c": str(c)} for r, c in zip(live, shifted_c, strict=True)]
    report = monitor.report(MODEL, docs_of(live), p_value=ALPHA, min_psi=MIN_PSI)
    features = report["drift"]["features"]
    assert sorted(report["drifted"]) == ["c", "x1"]
    assert report["drifted"] == sorted(["c", "x1"], key=lambda k: -features[k]["psi"])  # largest PSI first
    assert features["x1"]["p_value"] < 1e-6 and features["x1"]["psi"] >= MIN_PSI
    assert features["c"]["p_value"] < 1e-6
    assert not features["x2"]["drifted"] and not report["drift"]["score"]["drifted"]
    assert sum(features["x1"]["live"]) == 1000 and features["x1"]["training"] == PROFILE["features"]["x1"]["counts"]
    assert features["c"]["bins"] == ["a", "b", "c", "d", "e", "(other)"]


def test_values_never_seen_count_as_other_and_bad_values_as_missing():
    live = population(300, seed=5)
    live = [{**r, "c": "brand-new"} if i % 2 else r for i, r in enumerate(live)]
    live[0] = {**live[0], "x1": "not a number"}
    del live[2]["x2"]
    found = monitor.drift(PROFILE, docs_of(live[3:]) + [{"record": r} for r in live[:3]], ALPHA, MIN_PSI)
    assert found["features"]["c"]["live"][-1] == sum(1 for i in range(300) if i % 2)
    assert found["features"]["c"]["drifted"]  # half the window is a category training never saw
    assert found["features"]["x1"]["missing"] == 1 and found["features"]["x2"]["missing"] == 1
    assert found["score"]["missing"] == 3  # three documents without an answer


def test_a_small_pool_and_a_one_bin_profile_do_not_break_the_test():
    flat = {"kind": "numeric", "edges": [], "counts": [100]}
    assert monitor.one_drift(flat, [1, 2, 3], ALPHA, MIN_PSI)["p_value"] == 1.0
    assert monitor.one_drift(flat, [], ALPHA, MIN_PSI)["drifted"] is False


# ------------------------------------------------------------------------------ quality


def test_binary_quality_from_feedback_equals_sklearns_on_the_same_rows():
    rng = np.random.default_rng(11)
    live = population(400, seed=12)
    truth = [int(rng.uniform() < probability(r)) for r in live]
    labels = [["no", "yes"][y] for y in truth]
    labels[:50] = [None] * 50  # no feedback for these
    quality = monitor.report(MODEL, docs_of(live, labels), p_value=ALPHA, min_psi=MIN_PSI)["quality"]
    y, p = np.array(truth[50:]), np.array([probability(r) for r in live[50:]])
    assert quality["labelled"] == 350
    assert quality["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert quality["accuracy"] == pytest.approx(skm.accuracy_score(y, p > 0.5), abs=1e-12)
    assert quality["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=1e-9)
    precision, recall, _ = skm.precision_recall_curve(y, p)
    assert quality["area_under_pr"] == pytest.approx(skm.auc(recall, precision), abs=0.02)


def test_multiclass_and_regression_quality_equal_sklearns():
    rng = np.random.default_rng(13)
    names = ["c0", "c1", "c2"]
    truth = rng.integers(0, 3, 300)
    probabilities = rng.dirichlet([1, 1, 1], 300)
    docs = [{"answer": {"prediction": int(np.argmax(q)), "probabilities": dict(zip(names, q.tolist(), strict=True))},
             "feedback": {"label": names[t]}} for t, q in zip(truth, probabilities, strict=True)]  # fmt: skip
    quality = monitor.quality("multiclass", names, docs)
    predicted = probabilities.argmax(1)
    assert quality["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted), abs=1e-12)
    assert quality["f1"] == pytest.approx(skm.f1_score(truth, predicted, average="weighted"), abs=1e-12)
    assert quality["log_loss"] == pytest.approx(skm.log_loss(truth, probabilities, labels=[0, 1, 2]), abs=1e-9)

    y = rng.normal(0, 2, 200)
    guess = y + rng.normal(0, 0.5, 200)
    docs = [{"answer": {"prediction": g}, "feedback": {"label": t}} for t, g in zip(y, guess, strict=True)]
    quality = monitor.quality("regression", [], [*docs, {"answer": {"prediction": 1.0}, "feedback": {"label": "x"}}])
    assert quality["labelled"] == 200  # a label that is no number is left out
    assert quality["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, guess)), abs=1e-12)
    assert quality["mae"] == pytest.approx(skm.mean_absolute_error(y, guess), abs=1e-12)
    assert quality["r2"] == pytest.approx(skm.r2_score(y, guess), abs=1e-12)


def test_an_auc_of_one_class_is_undefined_not_an_error():
    docs = [{"answer": {"prediction": 1, "probability": 0.9}, "feedback": {"label": "yes"}}] * 5
    quality = monitor.quality("binary", ["no", "yes"], docs)
    assert quality["auc"] is None and quality["area_under_pr"] == pytest.approx(1.0) and quality["accuracy"] == 1.0


def test_since_parses_iso_times_and_names_the_form_otherwise():
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert monitor.parse_since(None, now, 3600) == now - timedelta(hours=1)
    assert monitor.parse_since("2026-12-01T10:00:00Z", now, 0) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert monitor.parse_since("2026-12-01T12:00:00+02:00", now, 0) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert monitor.parse_since("2026-12-01", now, 0) == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(monitor.InvalidRequest, match="ISO 8601"):
        monitor.parse_since("yesterday", now, 0)


# ------------------------------------------------------------------------------ the route


@pytest.fixture()
def named(client, mongo_client):
    """A name with version 1 (production, profiled) and version 2 (candidate, stored before
    profiles existed), and the prediction log's collection; both cleaned up after."""
    services = client.app.extensions["prediction_service"]
    registry = services.registry
    name, keys = f"drift-{uuid.uuid4().hex[:8]}", [uuid.uuid4().hex, uuid.uuid4().hex]
    registry.add_version(name, keys[0], MODEL)
    registry.add_version(name, keys[1], {k: v for k, v in MODEL.items() if k != "profile"})
    db, collection = client.params["prediction_log_collection"].split(".", 1)
    log = mongo_client[db][collection]
    yield name, keys, log
    log.delete_many({"model.model_key": {"$in": keys}})
    registry.delete_name(name)
    for key in keys:
        registry.store.delete(key)


def test_the_monitor_route_reports_a_window_of_the_log(client, named):
    name, keys, log = named
    now = datetime.now(UTC)
    live = population(300, seed=21)
    live = [{**r, "x1": r["x1"] + 1.0} for r in live]
    labels = [["no", "yes"][int(probability(r) > 0.3)] for r in live]
    log.insert_many(logged(name, keys[0], 1, live, labels, now - timedelta(minutes=5)))
    log.insert_many(logged(name, keys[0], 1, TRAINING[:50], [None] * 50, now - timedelta(days=3)))  # too old
    reply = client.get(f"/registry/{name}/monitor")
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert {k: report[k] for k in ("name", "version", "model_key", "count")} == {
        "name": name, "version": 1, "model_key": keys[0], "count": 300}  # fmt: skip
    assert report["drifted"] == ["x1"] and report["quality"]["labelled"] == 300
    y = np.array([label == "yes" for label in labels], dtype=int)
    p = np.array([probability(r) for r in live])
    assert report["quality"]["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert set(report["quality"]) == {"labelled", "auc", "area_under_pr", "accuracy", "log_loss"}
    since = (now - timedelta(days=4)).isoformat()
    older = client.get(f"/registry/{name}/monitor", params={"since": since, "version": "production"}).json()
    assert older["count"] == 350 and older["since"].startswith((now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M"))

    scraped = client.get("/metrics").text
    assert f'prediction_service_drift_features_drifted{{name="{name}"}} 1.0' in scraped
    assert f'prediction_service_live_quality{{metric="auc",name="{name}"}}' in scraped
    assert f'prediction_service_drift_max_psi{{name="{name}"}}' in scraped


def test_an_empty_window_is_a_report_of_nothing_not_an_error(client, named):
    name, _, _ = named
    reply = client.get(f"/registry/{name}/monitor", params={"version": "1", "since": "2999-01-01T00:00:00Z"})
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert report["count"] == 0 and report["drifted"] == [] and report["quality"] == {"labelled": 0}
    assert "no prediction of version 1" in report["message"]


def test_monitor_errors_name_the_problem(client, named):
    name, _, _ = named
    bad = client.get(f"/registry/{name}/monitor", params={"since": "last tuesday"})
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["error"]["message"]
    unknown = client.get(f"/registry/{name}/monitor", params={"version": "7"})
    assert unknown.status_code == 404 and "versions: 1, 2" in unknown.json()["error"]["message"]
    alias = client.get(f"/registry/{name}/monitor", params={"version": "staging"})
    assert alias.status_code == 404 and "no alias 'staging'" in alias.json()["error"]["message"]
    nobody = client.get(f"/registry/nobody-{uuid.uuid4().hex[:6]}/monitor")
    assert nobody.status_code == 404 and "no model named" in nobody.json()["error"]["message"]
    old = client.get(f"/registry/{name}/monitor", params={"version": "candidate"})
    assert old.status_code == 409 and "retrain" in old.json()["error"]["message"]
    assert old.json()["error"]["code"] == "conflict"


def test_the_chi_square_is_scipys_two_sample_test_on_the_pooled_bins():
    """A reference figure: the statistic is scipy's chi2_contingency of the training and live
    counts, when no bin needs pooling; with a rare bin, of the counts with it pooled."""
    profile = {"kind": "numeric", "edges": [0.0, 5.0], "counts": [500, 490, 10]}
    found = monitor.one_drift(profile, [-1] * 60 + [1] * 40, ALPHA, MIN_PSI)
    expected = stats.chi2_contingency([[500, 500], [60, 40]])  # the third bin expects 0.9 live: pooled
    assert found["statistic"] == pytest.approx(expected.statistic)
    assert found["p_value"] == pytest.approx(expected.pvalue)
    wide = monitor.one_drift({**profile, "counts": [400, 400, 200]}, [-1] * 50 + [1] * 30 + [9] * 20, ALPHA, MIN_PSI)
    three = stats.chi2_contingency([[400, 400, 200], [50, 30, 20]])
    assert wide["statistic"] == pytest.approx(three.statistic) and wide["p_value"] == pytest.approx(three.pvalue)


def test_a_small_training_sample_is_not_taken_for_exact_proportions():
    """A score profiled on 150 held-out rows: windows drawn from the same distribution are flagged
    no more often than ALPHA (a fit to the 150 rows' proportions would flag many more)."""
    rng = np.random.default_rng(11)
    edges = np.linspace(0.1, 0.9, 9).tolist()
    windows, rejected = 300, 0
    for _ in range(windows):
        profile = {"kind": "numeric", "edges": edges, "counts": [0] * 10}
        profile["counts"] = monitor.binned(profile, rng.beta(2, 2, 150).tolist())[0].tolist()
        rejected += monitor.one_drift(profile, rng.beta(2, 2, 300).tolist(), ALPHA, 0.0)["p_value"] < ALPHA
    assert rejected / windows <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / windows), rejected


def test_an_answer_without_a_probability_counts_for_the_accuracy_only():
    docs = [
        {"answer": {"prediction": 1, "probability": 0.8}, "feedback": {"label": "yes"}},
        {"answer": {"prediction": 0, "probability": 0.3}, "feedback": {"label": "no"}},
        {"answer": {"prediction": 0}, "feedback": {"label": "yes"}},
    ]
    quality = monitor.quality("binary", ["no", "yes"], docs)
    assert quality["accuracy"] == pytest.approx(2 / 3) and quality["auc"] == 1.0
    assert quality["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
