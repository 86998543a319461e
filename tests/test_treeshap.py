"""treeshap.py and ForestPredictor.explanations: path-dependent TreeSHAP over stored trees.

The forests are scikit-learn's (bootstrapped, like Spark's: each tree's covers are its own
sample's weights), read into the stored layout sparkforest.forest_trees writes, so the unit tier
has realistic trees (repeated features on a path, uneven covers) without a JVM. The independent
computation is the Shapley formula itself, over every subset of the encoded columns, of the
path-dependent value function evaluated by recursion down each tree (Lundberg et al.'s
Algorithm 1)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from dataparser import DataParser
from helpers import known_rows, shap_trees
from predictionservice.exceptions import NotExplainable
from predictionservice.predictors import Forest, ForestPredictor
from predictionservice.treeshap import ForestShap


def stored_trees(model, classes: int) -> list[dict]:
    """A fitted scikit-learn forest in the stored layout (leaf class distributions, covers)."""
    trees = []
    for estimator in model.estimators_:
        tree = estimator.tree_
        leaf = tree.children_left < 0
        if classes:
            counts = tree.value[:, 0, :]
            value = np.where(leaf[:, None], counts / counts.sum(axis=1, keepdims=True), 0.0).tolist()
        else:
            value = tree.value[:, 0, 0].tolist()
        trees.append({
            "feature": np.where(leaf, -1, tree.feature).tolist(), "threshold": tree.threshold.tolist(),
            "left": tree.children_left.tolist(), "right": tree.children_right.tolist(), "value": value,
            "cover": tree.weighted_n_node_samples.tolist(), "depth": int(tree.max_depth),
        })  # fmt: skip
    return trees


def fitted(kind: str, n: int, classes: int = 2, *, trees: int = 25, depth: int = 6, seed: int = 3):
    """Rows of a known model, its parser and a bootstrapped forest fitted on the encoded rows."""
    rows, schema, _ = known_rows(kind, n, seed=seed, classes=classes)
    parser = DataParser(schema)
    matrix = parser.encode(rows)
    label = [parser.class_names.index(r["y"]) if parser.class_names else r["y"] for r in rows]
    kinds = {"wave": RandomForestRegressor, "linear": RandomForestRegressor}
    model = kinds.get(kind, RandomForestClassifier)(n_estimators=trees, max_depth=depth, random_state=seed)
    model.fit(matrix, label)
    return rows, parser, stored_trees(model, len(parser.class_names))


def outputs(predictor: ForestPredictor, matrix: np.ndarray) -> np.ndarray:
    """What an explanation adds up to: the predicted class's probability, or the value."""
    result = predictor.forest.evaluate(matrix)
    return result if result.ndim == 1 else result[np.arange(len(matrix)), result.argmax(axis=1)]


@pytest.mark.parametrize(("kind", "classes"), [("xor", 2), ("logistic", 4), ("wave", 0), ("linear", 0)])
def test_base_and_contributions_add_up_to_the_output_on_a_whole_data_set(kind, classes):
    rows, parser, trees = fitted(kind, 800, max(classes, 2), depth=8)
    predictor = ForestPredictor(parser, trees)
    explained = predictor.explanations(rows)
    expected = outputs(predictor, parser.encode(rows))
    totals = np.array([e["base"] + sum(e["contributions"].values()) for e in explained])
    assert np.abs(totals - expected).max() <= 1e-9
    assert {tuple(e["contributions"]) for e in explained} == {("x1", "x2", "c")}
    assert {e["output"] for e in explained} == {"probability" if classes else "value"}
    answers = predictor.predict(rows)
    if classes:  # the explained probability is the predicted label's, as the answer gives it
        shown = [a["probabilities"][a["label"]] for a in answers]
    else:
        shown = [a["prediction"] for a in answers]
    assert np.abs(totals - np.array(shown)).max() <= 1e-9
    assert len({e["base"] for e in explained}) <= (classes or 1)  # one expected output per class


def tree_value(tree: dict, x: np.ndarray, known: set[int], node: int = 0) -> np.ndarray:
    """The path-dependent value function: the tree's output with only ``known`` columns known,
    an unknown split's children averaged by their covers (Lundberg et al. 2018, Algorithm 1)."""
    if tree["left"][node] < 0:
        return np.atleast_1d(np.asarray(tree["value"][node], dtype=np.float64))
    feature, left, right = tree["feature"][node], tree["left"][node], tree["right"][node]
    if feature in known:
        return tree_value(tree, x, known, left if x[feature] <= tree["threshold"][node] else right)
    share = tree["cover"][left] / tree["cover"][node]
    return share * tree_value(tree, x, known, left) + (1 - share) * tree_value(tree, x, known, right)


def brute_force(trees: list[dict], x: np.ndarray, chosen: int) -> np.ndarray:
    """Shapley values of every column by enumerating the subsets of the others."""
    width = len(x)

    def value(known: set[int]) -> float:
        return float(np.mean([tree_value(t, x, known)[chosen] for t in trees]))

    phi = np.zeros(width)
    for i in range(width):
        others = [j for j in range(width) if j != i]
        for size in range(width):
            weight = math.factorial(size) * math.factorial(width - size - 1) / math.factorial(width)
            for subset in itertools.combinations(others, size):
                phi[i] += weight * (value({*subset, i}) - value(set(subset)))
    return phi


@pytest.mark.parametrize("tabled", [6, 0])  # factors looked up per pattern, or computed per row
@pytest.mark.parametrize(("kind", "classes", "depth"), [("logistic", 3, 4), ("wave", 0, 5), ("xor", 2, 7)])
def test_contributions_equal_the_brute_force_shapley_values(monkeypatch, kind, classes, depth, tabled):
    monkeypatch.setattr("predictionservice.treeshap.TABLED_LENGTH", tabled)
    rows, parser, trees = fitted(kind, 300, max(classes, 2), trees=3, depth=depth, seed=11)
    trees.append({"feature": [-1], "threshold": [0.0], "left": [-1], "right": [-1], "cover": [5.0],
                  "value": [[1.0] + [0.0] * (classes - 1)] if classes else [2.5], "depth": 0})  # fmt: skip
    forest = Forest(trees, classes or None)
    shap = ForestShap(forest, np.concatenate([t["cover"] for t in trees]), parser.num_features)
    matrix = parser.encode(rows[:12])
    chosen = forest.evaluate(matrix)
    chosen = chosen.argmax(axis=1) if classes else np.zeros(len(matrix), dtype=np.int64)
    base, phi = shap.explain(matrix, chosen if classes else None)
    for r, x in enumerate(matrix):
        expected = brute_force(trees, x, int(chosen[r]))
        np.testing.assert_allclose(phi[r], expected, rtol=0, atol=1e-12)
        assert base[r] == pytest.approx(float(np.mean([tree_value(t, x, set())[chosen[r]] for t in trees])), abs=1e-12)


@pytest.mark.parametrize(("kind", "classes"), [("logistic", 3), ("xor", 2), ("wave", 0)])
def test_contributions_equal_shap_tree_explainer_s_on_the_same_trees(kind, classes):
    """The well-kept implementation as the independent computation, on depth-8 forests: the same
    base and contributions to 1e-9 (shap is a bench extra, not a dependency: skipped without it,
    while the brute-force test above checks the same arithmetic in every run)."""
    shap = pytest.importorskip(
        "shap", reason="shap is a bench extra (requirements-bench.txt; `make bench` installs it), not a dependency"
    )
    rows, parser, trees = fitted(kind, 600, max(classes, 2), depth=8)
    predictor = ForestPredictor(parser, trees)
    explained = predictor.explanations(rows)
    matrix = parser.encode(rows)
    explainer = shap.TreeExplainer(shap_trees(trees), feature_perturbation="tree_path_dependent")
    theirs = np.asarray(explainer.shap_values(matrix))
    expected = np.atleast_1d(explainer.expected_value)
    chosen = predictor.forest.evaluate(matrix).argmax(axis=1) if classes else np.zeros(len(rows), dtype=np.int64)
    if theirs.ndim == 3:  # (rows, columns, classes): the predicted class's
        theirs = theirs[np.arange(len(rows)), :, chosen]
    theirs = np.add.reduceat(theirs, [f.offset for f in parser.features], axis=1)
    ours = np.array([[e["contributions"][f.key] for f in parser.features] for e in explained])
    assert np.abs(ours - theirs).max() <= 1e-9
    assert np.abs(np.array([e["base"] for e in explained]) - expected[chosen]).max() <= 1e-9


def test_long_paths_computed_per_row_agree_with_tabled_short_ones_and_add_up(monkeypatch):
    """Twelve numeric features, trees of depth 14: paths of up to 12 distinct features, past the
    tabled length; with nothing tabled every path is computed per row, and both agree."""
    rng = np.random.default_rng(4)
    matrix = rng.uniform(-1, 1, (1500, 12))
    target = np.sin(matrix @ rng.normal(size=12)) + rng.normal(0, 0.1, 1500)
    model = RandomForestRegressor(n_estimators=8, max_depth=14, max_features=0.5, random_state=2).fit(matrix, target)
    forest, cover = Forest(stored_trees(model, 0), None), np.concatenate([t["cover"] for t in stored_trees(model, 0)])
    base, phi = ForestShap(forest, cover, 12).explain(matrix)
    assert max(block["columns"].shape[1] for block in ForestShap(forest, cover, 12).blocks) > 8
    assert np.abs(base + phi.sum(axis=1) - forest.evaluate(matrix)).max() <= 1e-9
    monkeypatch.setattr("predictionservice.treeshap.TABLED_LENGTH", 0)
    untabled = ForestShap(forest, cover, 12)
    assert not any("table" in block for block in untabled.blocks)
    np.testing.assert_allclose(untabled.explain(matrix)[1], phi, rtol=0, atol=1e-12)


def test_a_stump_explained_by_hand():
    """One split on x at 0.5, 4 of 10 training rows left (value 1.0), 6 right (value 6.0):
    the base is 0.4 * 1 + 0.6 * 6 = 4; a row going left is explained as 1 - 4 on x."""
    stump = {"feature": [0, -1, -1], "threshold": [0.5, 0.0, 0.0], "left": [1, -1, -1], "right": [2, -1, -1],
             "value": [0.0, 1.0, 6.0], "cover": [10.0, 4.0, 6.0], "depth": 1}  # fmt: skip
    parser = DataParser({"label": {"key": "y"}, "features": [{"key": "x"}, {"key": "z"}]})
    left, right = ForestPredictor(parser, [stump]).explanations([{"x": 0.0, "z": 9.0}, {"x": 0.5001, "z": 0.0}])
    assert left["base"] == pytest.approx(4.0) and left["output"] == "value"
    assert left["contributions"] == {"x": pytest.approx(-3.0), "z": 0.0}
    assert right["contributions"]["x"] == pytest.approx(2.0)


def test_a_feature_no_tree_splits_on_gets_exactly_zero():
    rows, parser, _ = fitted("xor", 400)
    schema = parser.schema()
    schema["features"].append({"key": "unused"})
    wide = DataParser(schema)
    matrix = wide.encode([{**r, "unused": 0.0} for r in rows])
    label = [parser.class_names.index(r["y"]) for r in rows]
    model = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=1).fit(matrix, label)  # a constant
    trees = stored_trees(model, 2)
    assert not any(f == wide.num_features - 1 for t in trees for f in t["feature"])
    explained = ForestPredictor(wide, trees).explanations([{**r, "unused": float(i)} for i, r in enumerate(rows)])
    assert {e["contributions"]["unused"] for e in explained} == {0.0}
    assert any(abs(e["contributions"]["x1"]) > 0.01 for e in explained)


def test_a_forest_stored_without_covers_predicts_but_is_not_explainable():
    rows, parser, trees = fitted("xor", 200, trees=3)
    old = [{k: v for k, v in tree.items() if k != "cover"} for tree in trees]
    predictor = ForestPredictor(parser, old)
    assert predictor.predict(rows[:3]) == ForestPredictor(parser, trees).predict(rows[:3])
    with pytest.raises(NotExplainable, match="retrain") as raised:
        predictor.explanations(rows[:3])
    assert raised.value.status == 409 and raised.value.code == "conflict"


def test_a_batch_bigger_than_a_slice_is_explained_the_same_row_by_row(monkeypatch):
    rows, parser, trees = fitted("logistic", 60, 3, trees=5)
    whole = ForestPredictor(parser, trees).explanations(rows)
    monkeypatch.setattr("predictionservice.predictors.PREDICT_CHUNK_VALUES", 7)
    monkeypatch.setattr("predictionservice.treeshap.SLICE_VALUES", 7)
    sliced = ForestPredictor(parser, trees).explanations(rows)
    for a, b in zip(whole, sliced, strict=True):
        assert a["base"] == b["base"] and a["output"] == b["output"]
        assert a["contributions"] == pytest.approx(b["contributions"], abs=1e-15)
