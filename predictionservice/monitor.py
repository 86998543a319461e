"""Quality and drift of a model's logged predictions (docs/API.md, "Quality and drift"): a window
of the prediction log compared with the training profile kept with the model
(predictionservice.sparkprofile), in numpy and scipy; no web framework, no Spark.

**Drift**, per feature and for the score: the window's values counted in the training profile's
bins (a value that is missing or not a number is counted apart, as ``missing``), then

* a two-sample chi-square test of homogeneity (scipy.stats.chi2_contingency) of those counts
  and the training counts: were both drawn from one distribution? Two-sample, not a fit to the
  training proportions, because the training side is a sample too (the score's is the held-out
  rows: a few hundred in a small data set), and taking its proportions as exact flags windows
  drawn like it far more often than the p-value says. Bins expecting fewer than 5 are pooled
  first (the test's approximation holds), so a rare category seen once or twice is not drift;
* the population stability index, ``sum((a - e) * ln(a / e))`` over the bins' proportions (each
  floored at 1e-4).

``drifted`` is decided by both: p-value below the setting ``drift_p_value`` (default 0.01) AND
PSI at least ``drift_min_psi`` (default 0.1). The p-value bounds the false alarms (a window drawn
like the training data flags a feature at most that often), the PSI keeps a huge window from
calling a negligible shift drift.

**Quality**, on the window's predictions that have feedback: the held-out metrics' names of the
model's task (binary auc, area_under_pr, accuracy, log_loss; multi-class accuracy, f1, log_loss;
regression rmse, mae, r2), computed as training computes them (Spark's definitions), and
``labelled``, the rows they cover.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from scipy import stats

from predictionservice.categories import category_key
from predictionservice.exceptions import Conflict, InvalidRequest, NotFound
from predictionservice.mongotarget import CollectionRef
from predictionservice.registry import PRODUCTION, unknown_alias, unknown_version

MIN_EXPECTED = 5.0  # a chi-square bin expects at least this many (else it is pooled)
PSI_FLOOR = 1e-4  # a bin's proportion in the PSI is at least this (an empty bin is not infinite)
LOG_LOSS_EPS = 1e-15  # Spark's MulticlassClassificationEvaluator eps
MAX_NUMBER_CHARS = 100


# ------------------------------------------------------------------------------ the window


def parse_since(text: str | None, now: datetime, default_seconds: float) -> datetime:
    """The window's start: an ISO 8601 time (a time without a zone is UTC), or default_seconds
    before now; InvalidRequest naming the form when it does not parse."""
    if text is None or text == "":
        return now - timedelta(seconds=default_seconds)
    try:
        since = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise InvalidRequest(
            f"'since' must be an ISO 8601 time such as 2026-01-31T12:00:00Z, not {shown!r}",
            details=[{"field": "since", "problem": "not an ISO 8601 time"}],
        ) from None
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def window(
    collection: Any, model_key: str, since: datetime, limit: int, until: datetime | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """The logged predictions of a model since then (and before until), newest first, at most
    limit (and whether there were more): only what the monitor reads of each."""
    fields = {"_id": 0, "record": 1, "answer": 1, "feedback": 1, "time": 1}
    times = {"$gte": since, **({"$lt": until} if until is not None else {})}
    cursor = collection.find({"model.model_key": model_key, "time": times}, fields)
    docs = list(cursor.sort("time", -1).limit(limit + 1))
    return docs[:limit], len(docs) > limit


def no_profile(name: str, version: int, key: str) -> Conflict:
    return Conflict(
        f"version {version} of {name!r} (model {key}) was stored before training profiles existed: it has "
        f"nothing to compare its predictions with; retrain it (POST /registry/{name}/retrain) to monitor it",
        details=[{"field": "version", "problem": "no training profile: retrain the model"}],
    )


# ------------------------------------------------------------------------------ values


def number(value: Any) -> float | None:
    """A finite float from a number or a numeric string (as the encoding reads one), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str) and len(value) <= MAX_NUMBER_CHARS:
        try:
            result = float(value)
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def binned(profile: Mapping[str, Any], values: Iterable[Any]) -> tuple[np.ndarray, int]:
    """The values counted in a profile's bins, and how many could not be (missing, not a number)."""
    size = len(profile["counts"])
    counts = np.zeros(size, dtype=np.int64)
    missing = 0
    if profile["kind"] == "numeric":
        found = [number(v) for v in values]
        missing = sum(x is None for x in found)
        numbers = np.array([x for x in found if x is not None], dtype=float)
        index = np.searchsorted(np.asarray(profile["edges"], dtype=float), numbers, side="right")
        np.add.at(counts, index, 1)
        return counts, missing
    lookup = profile.get("values")
    for value in values:
        if lookup is None:  # a multi-class score: the predicted class index is the bin
            index = value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size else None
        else:
            name = category_key(value)
            index = None if name is None else lookup.get(name, size - 1)
        if index is None:
            missing += 1
        else:
            counts[index] += 1
    return counts, missing


# ------------------------------------------------------------------------------ drift


def psi(expected: np.ndarray, observed: np.ndarray) -> float:
    e = np.maximum(expected / max(expected.sum(), 1), PSI_FLOOR)
    a = np.maximum(observed / max(observed.sum(), 1), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def pooled(training: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples' counts with the bins whose smaller expected count (were both drawn from one
    distribution) is under MIN_EXPECTED pooled into one, with the next smallest while the pool
    still expects too few, so the chi-square approximation holds; empty bins dropped."""
    totals = training + live
    expected = totals * min(training.sum(), live.sum()) / totals.sum()
    order = [i for i in np.argsort(expected, kind="stable") if totals[i] > 0]
    small = [i for i in order if expected[i] < MIN_EXPECTED]
    rest = [i for i in order if expected[i] >= MIN_EXPECTED]
    while small and expected[small].sum() < MIN_EXPECTED and rest:
        small.append(rest.pop(0))
    groups = [[i] for i in rest] + ([small] if small else [])
    return np.array([training[g].sum() for g in groups]), np.array([live[g].sum() for g in groups])


def compare(training: Sequence[int], live: np.ndarray, p_value: float, min_psi: float) -> dict[str, Any]:
    """The two-sample chi-square test and PSI of live counts against the training counts, and
    the verdict."""
    train, observed = np.asarray(training, dtype=float), live.astype(float)
    if observed.sum() == 0 or train.sum() == 0:
        return {"statistic": None, "p_value": None, "psi": None, "drifted": False}
    t, o = pooled(train, observed)
    if len(t) < 2:
        statistic, p = 0.0, 1.0
    else:
        found = stats.chi2_contingency(np.vstack([t, o]))
        statistic, p = float(found.statistic), float(found.pvalue)
    value = psi(train, observed)
    return {"statistic": statistic, "p_value": p, "psi": value, "drifted": bool(p < p_value and value >= min_psi)}


def score_value(answer: Any, profile: Mapping[str, Any]) -> Any:
    """What of an answer its score's profile counts: the probability or the prediction."""
    return answer.get(profile.get("of", "prediction")) if isinstance(answer, Mapping) else None


def drift(profile: Mapping[str, Any], docs: Sequence[Mapping[str, Any]], p_value: float, min_psi: float) -> dict:
    """Each feature's and the score's drift over the window's documents."""
    records = [d.get("record") if isinstance(d.get("record"), Mapping) else {} for d in docs]
    features = {}
    for key, feature in profile["features"].items():
        features[key] = one_drift(feature, [r.get(key) for r in records], p_value, min_psi)
    score = profile.get("score")
    scored = None
    if score:
        scored = one_drift(score, [score_value(d.get("answer"), score) for d in docs], p_value, min_psi)
    return {"features": features, "score": scored}


def one_drift(profile: Mapping[str, Any], values: list[Any], p_value: float, min_psi: float) -> dict[str, Any]:
    live, missing = binned(profile, values)
    return {
        **compare(profile["counts"], live, p_value, min_psi),
        "missing": missing,
        "bins": bin_labels(profile),
        "training": list(profile["counts"]),
        "live": live.tolist(),
    }


def bin_labels(profile: Mapping[str, Any]) -> list[str]:
    """Each bin as a person reads it: '< 3', '3 to 7', '>= 40'; a category's name."""
    if profile["kind"] != "numeric":
        return list(profile["bins"])
    edges = [f"{e:.4g}" for e in profile["edges"]]
    if not edges:
        return ["all"]
    return [f"< {edges[0]}", *(f"{a} to {b}" for a, b in itertools.pairwise(edges)), f">= {edges[-1]}"]


# ------------------------------------------------------------------------------ quality


def true_label(label: Any, label_values: Mapping[str, int] | None) -> Any:
    """Feedback's label as training reads one: a class index by the schema's label values, or
    a number for a regressor; None when it is neither."""
    if label_values is None:
        return number(label)
    name = category_key(label)
    return label_values.get(name) if name is not None else None


def labelled(docs: Sequence[Mapping[str, Any]], label_values: Mapping[str, int] | None) -> list[tuple[Any, Mapping]]:
    """(true label, answer) of each document with feedback the model can have, and an answer."""
    pairs = []
    for doc in docs:
        feedback, answer = doc.get("feedback"), doc.get("answer")
        if isinstance(feedback, Mapping) and isinstance(answer, Mapping) and "label" in feedback:
            truth = true_label(feedback["label"], label_values)
            if truth is not None:
                pairs.append((truth, answer))
    return pairs


def quality(task: str, class_names: Sequence[str], docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The held-out metrics' names over the window's labelled predictions (None where a metric
    is undefined on them: an AUC needs both classes)."""
    values = {name: i for i, name in enumerate(class_names)} if task != "regression" else None
    pairs = labelled(docs, values)
    result: dict[str, Any] = {"labelled": len(pairs)}
    if not pairs:
        return result
    truth = np.array([t for t, _ in pairs], dtype=float)
    predicted = np.array([number(a.get("prediction")) for _, a in pairs], dtype=float)
    if task == "regression":
        result.update(regression_metrics(truth, predicted))
        return result
    result["accuracy"] = float(np.mean(predicted == truth))
    if task == "binary":
        p = np.array([number(a.get("probability")) for _, a in pairs], dtype=float)
        scored = ~np.isnan(p)  # an answer without a probability counts for the accuracy only
        result["auc"] = auc(truth[scored], p[scored])
        result["area_under_pr"] = area_under_pr(truth[scored], p[scored])
        p_true = np.where(truth == 1, p, 1 - p)
    else:
        result["f1"] = weighted_f1(truth, predicted)
        p_true = np.array([class_probability(a, class_names[int(t)]) for t, a in pairs], dtype=float)
    p_true = p_true[~np.isnan(p_true)]
    result["log_loss"] = float(-np.mean(np.log(np.clip(p_true, LOG_LOSS_EPS, 1.0)))) if len(p_true) else None
    return result


def class_probability(answer: Mapping[str, Any], name: str) -> float:
    """The answer's probability of a class (NaN when the answer did not list it)."""
    found = answer.get("probabilities")
    value = number(found.get(name)) if isinstance(found, Mapping) else None
    return math.nan if value is None else value


def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    error = predicted - truth
    spread = float(np.sum((truth - truth.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else None,
    }


def auc(truth: np.ndarray, score: np.ndarray) -> float | None:
    """The area under the ROC curve: the Mann-Whitney U of the positives' ranks (ties halved)."""
    positives = int(np.sum(truth == 1))
    negatives = len(truth) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = stats.rankdata(score)
    return float((ranks[truth == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def area_under_pr(truth: np.ndarray, score: np.ndarray) -> float | None:
    """The area under the precision-recall curve as Spark's BinaryClassificationMetrics draws it:
    a point per distinct score (highest first), from (0, the first point's precision), trapezoids."""
    positives = int(np.sum(truth == 1))
    if positives == 0:
        return None
    order = np.argsort(-score, kind="stable")
    s, t = score[order], truth[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last row of each distinct score
    tp = np.cumsum(t == 1)[last]
    fp = np.cumsum(t != 1)[last]
    precision = tp / (tp + fp)
    recall = np.r_[0.0, tp / positives]
    precision = np.r_[precision[0], precision]
    return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2))


def weighted_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Each true class's F1 weighted by its rows (Spark's weightedFMeasure)."""
    total = 0.0
    for k in np.unique(truth):
        tp = float(np.sum((predicted == k) & (truth == k)))
        precision_rows, recall_rows = float(np.sum(predicted == k)), float(np.sum(truth == k))
        f1 = 2 * tp / (precision_rows + recall_rows) if precision_rows + recall_rows else 0.0
        total += f1 * recall_rows
    return total / len(truth)


# ------------------------------------------------------------------------------ the report


def report(
    model: Mapping[str, Any], docs: Sequence[Mapping[str, Any]], *, p_value: float, min_psi: float
) -> dict[str, Any]:
    """``count``, ``quality`` and ``drift`` of a window's documents against a stored model (its
    profile, task and schema), and ``drifted``: the drifted features, largest PSI first."""
    profile = model["profile"]
    labels = model.get("schema", {}).get("label", {}).get("values")
    class_names = [n for n, _ in sorted(labels.items(), key=lambda kv: kv[1])] if labels else []
    if not docs:
        return {"count": 0, "quality": {"labelled": 0}, "drift": {"features": {}, "score": None}, "drifted": []}
    found = drift(profile, docs, p_value, min_psi)
    flagged = [(k, f["psi"]) for k, f in found["features"].items() if f["drifted"]]
    return {
        "count": len(docs),
        "quality": quality(model.get("task") or "binary", class_names, docs),
        "drift": found,
        "drifted": [k for k, _ in sorted(flagged, key=lambda kv: -kv[1])],
    }


# ------------------------------------------------------------------------------ the service's


@dataclass(frozen=True)
class MonitorSettings:
    """The settings the monitor takes (config.pick)."""

    mongodb_uri: str
    prediction_log_collection: str = "monitoring.predictions"
    monitor_window_seconds: int = 86400
    monitor_max_records: int = 100_000
    drift_p_value: float = 0.01
    drift_min_psi: float = 0.1


class Monitor:
    """GET /registry/<name>/monitor's work: the version resolved in the registry, its stored model
    and profile, the window read from the prediction log, the report; ``on_report(name, report)``
    (the web process's gauges) hears every report made."""

    def __init__(self, registry: Any, mongo: Any, chosen: MonitorSettings, on_report: Any = None):
        self.registry, self.mongo, self.settings, self.on_report = registry, mongo, chosen, on_report
        db, _, collection = chosen.prediction_log_collection.partition(".")
        self.log = CollectionRef(chosen.mongodb_uri, db, collection)

    def version_of(self, name: str, version: str | None) -> tuple[int, str]:
        """(version, model key) of a name's version: a number, an alias, or production when None;
        the registry's 404s (naming what exists) otherwise."""
        entry = self.registry.entry(name)
        if version is None or not version.isdigit():
            alias = version or PRODUCTION
            if alias not in entry["aliases"]:
                raise unknown_alias(entry, alias)
            number_ = entry["aliases"][alias]
        else:
            number_ = int(version)
        keys = {v["version"]: v["model_key"] for v in entry["versions"]}
        if number_ not in keys:
            raise unknown_version(entry, version)
        return number_, keys[number_]

    def run(
        self, name: str, since: str | None, version: str | None, now: datetime | None = None,
        until: datetime | None = None,
    ) -> dict:  # fmt: skip
        """The report of a version's predictions logged since then (and before until: a drift
        check's window; all of them by default)."""
        start = parse_since(since, now or datetime.now(UTC), self.settings.monitor_window_seconds)
        number_, key = self.version_of(name, version)
        loaded = self.registry.store.load(key)
        if loaded is None:
            raise NotFound(f"model {key} (version {number_} of {name!r}) is no longer stored")
        model = loaded[0]
        if not isinstance(model.get("profile"), Mapping) or "features" not in model["profile"]:
            raise no_profile(name, number_, key)
        with self.mongo.collection(self.log) as collection:
            docs, more = window(collection, key, start, self.settings.monitor_max_records, until)
        found = report(model, docs, p_value=self.settings.drift_p_value, min_psi=self.settings.drift_min_psi)
        head = {"name": name, "version": number_, "model_key": key, "since": iso(start)}
        result = {**head, **found}
        if not docs:
            result["message"] = (
                f"no prediction of version {number_} of {name!r} was logged since {iso(start)}: nothing to compare "
                f"yet (is the setting prediction_log on, and is the name called?)"
            )
        if more:
            result["message"] = f"the window holds more than {len(docs)} predictions: this report reads the newest"
        if self.on_report is not None:
            self.on_report(name, result)
        return result
