"""Predictors: what a stored model compiles to for online scoring, in numpy (no Spark, no JVM).

A predictor is built from a stored model's numbers and the model's DataParser (taken by its shape:
``encode_one``, ``encode``, ``schema()``, ``class_names``), so this library module needs no import
of the chapter's dataparser. Every predictor answers one record (``predict_one``, the common online
case, with as little set-up as possible) and a batch (``predict``, vectorised), the same way:

* classification: ``prediction`` (class index), ``label``, ``probability`` (binary: the positive
  class's; multi-class: the predicted label's) and ``probabilities`` (every label, summing to 1);
* regression: ``prediction`` (a float).

Every predictor also explains (``explanations``): a base and one contribution per schema feature
adding up to the model's output (docs/API.md, "Explanations"); a linear model measures them from
the training means stored with it.

The arithmetic is Spark ML's own, step for step (the sigmoid, the max-shifted softmax, the
forest's normalised leaf votes), so online answers agree with Spark's ``transform`` to 1e-9.
The forest evaluation also runs on Spark executors, over Arrow batches, for batch scoring.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from predictionservice.defaults import PREDICT_CHUNK_VALUES
from predictionservice.exceptions import InvalidRequest, InvalidSchema, NotExplainable, RecordError


class Predictor:
    """The part every predictor shares: the schema, and turning records into a matrix.

    ``top`` is how many class probabilities an answer's ``probabilities`` holds: None, every
    class (the default answer); k, the k most probable, most probable first; 0, none (the key is
    left out). A batch is scored in slices of rows whose arrays hold at most PREDICT_CHUNK_VALUES
    numbers (its feature matrix, its class scores, a forest's leaf values), so a wide schema, a
    many-class model or a big forest never makes an array of records x classes x trees at once;
    each row's arithmetic is the same whatever the slice."""

    task: str
    names: Sequence[Any] = ()

    def __init__(self, parser: Any):
        self.parser = parser
        # The schema as JSON text: a body that repeats it verbatim agrees without being parsed.
        self.schema_json = json.dumps(parser.schema())

    def schema(self) -> dict[str, Any]:
        return self.parser.schema()

    def check_schema(self, schema: Any) -> None:
        """A request may carry the schema (the classic body, a scoring job): it must agree with
        the model's, as written or once read by the model's own parser class."""
        if json.dumps(schema) == self.schema_json:  # verbatim: agrees
            return
        if type(self.parser)(schema).schema() != self.schema():
            raise InvalidRequest(
                "'schema' does not agree with the schema stored with the model; send the record alone",
                details=[{"field": "schema", "problem": "differs from the model's schema"}],
            )

    def answered_probabilities(self, top: int | None = None) -> int:
        """How many probabilities one answer holds: a cost of the answer, checked before scoring."""
        classes = len(self.names)
        return classes if top is None else min(top, classes)

    def predict_one(self, record: Mapping[str, Any], top: int | None = None) -> dict[str, Any]:
        return self._answers(np.asarray([self.parser.encode_one(record)], dtype=np.float64), top)[0]

    def predict(self, records: Sequence[Mapping[str, Any]], top: int | None = None) -> list[dict[str, Any]]:
        if len(records) == 1:
            try:
                return [self.predict_one(records[0], top)]
            except RecordError as exc:
                raise exc.at(0) from None
        return self._by_slices(records, self._answers, top)

    def explanations(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Each record's explanation: ``{"base", "contributions": {feature key: number},
        "output"}``, one contribution per schema feature (a categorical's one-hot columns summed
        into it), ``base + sum(contributions)`` the model's ``output`` for the record (docs/API.md,
        "Explanations"). Scored in the same slices as ``predict``, so a big batch stays bounded."""
        return self._by_slices(records, self._explanations)

    def predict_columns(self, columns: Sequence[Sequence[Any]], top: int | None = None) -> list[dict[str, Any]]:
        """``predict`` for a batch sent as columns, one per feature in the schema's order (V2's
        inputs): the same answers and errors, no record made. One row is scored as ``predict``
        scores one record."""
        if columns and len(columns[0]) == 1:
            keys = [f.key for f in self.parser.features]
            return self.predict([{key: column[0] for key, column in zip(keys, columns, strict=True)}], top)
        rows = len(columns[0]) if columns else 0

        def encode(start: int, stop: int) -> np.ndarray:  # one slice: the columns as sent
            return self.parser.encode_columns(columns if stop - start == rows else [c[start:stop] for c in columns])

        return self._sliced(rows, encode, self._answers, top)

    def _by_slices(self, records: Sequence[Mapping[str, Any]], score: Any, *args: Any) -> list[dict[str, Any]]:
        """``score(matrix, *args)`` over the records' feature matrix, a slice of rows at a time;
        a bad record is named by its index in the whole batch."""

        def encode(start: int, stop: int) -> np.ndarray:  # one slice: the records as sent
            return self.parser.encode(records if stop - start == len(records) else records[start:stop])

        return self._sliced(len(records), encode, score, *args)

    def _sliced(self, rows: int, encode: Any, score: Any, *args: Any) -> list[dict[str, Any]]:
        """``score(encode(start, stop), *args)`` over a batch of rows, a slice at a time, so a big
        batch's matrix stays bounded; a bad row is named by its index in the whole batch."""
        step = max(1, PREDICT_CHUNK_VALUES // max(self.parser.num_features, self._values_per_row()))
        answers: list[dict[str, Any]] = []
        for start in range(0, rows, step):
            try:
                matrix = encode(start, min(rows, start + step))
            except RecordError as exc:
                raise exc.at((exc.index or 0) + start) from None
            answers.extend(score(matrix, *args))
        return answers

    def _values_per_row(self) -> int:
        """The numbers scoring one row holds besides its features (a class score each)."""
        return max(1, len(self.names))

    def _answers(self, matrix: np.ndarray, top: int | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def explainer(self) -> Any:
        """What computes this model's explanations from feature matrices, in numpy alone (no
        parser: it is pickled to Spark executors for /predictall/, so batch and online are one
        computation): ``explain(matrix)`` gives each row's base and (n, features) contributions,
        ``output`` what they add up to. A model stored before explanations existed has none."""
        raise not_explainable("what its explanations are computed from")

    def _explanations(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        """Each row's explanation as the answer shows it: keyed by the schema's features."""
        explainer = self.explainer()
        base, grouped = explainer.explain(matrix)
        keys = [f.key for f in self.parser.features]
        return [
            {"base": b, "contributions": dict(zip(keys, row, strict=True)), "output": explainer.output}
            for b, row in zip(base.tolist(), grouped.tolist(), strict=True)
        ]

    def feature_offsets(self) -> np.ndarray:
        """Where each schema feature's encoded columns start (a categorical's one-hot block)."""
        return np.asarray([f.offset for f in self.parser.features], dtype=np.int64)

    def _check_width(self, width: int, what: str) -> None:
        if width != self.parser.num_features:
            raise InvalidSchema(
                f"stored model has {what} for {width} features; its schema has {self.parser.num_features}"
            )


def class_answers(
    names: Sequence[Any], probabilities: np.ndarray, predicted: np.ndarray, top: int | None = None
) -> list[dict[str, Any]]:
    """Classification answers from each row's class probabilities and predicted class index; for
    two classes, ``probability`` is the positive class's (the classic answer). ``probabilities``
    holds every class, or the top most probable (most probable first, equal ones in class order),
    or is left out (top 0); only what is answered becomes Python objects."""
    binary = len(names) == 2
    if binary and (top is None or top >= 2):
        return binary_answers(names, probabilities, predicted)
    chosen = (probabilities[:, 1] if binary else probabilities[np.arange(len(predicted)), predicted]).tolist()
    answers = [
        {"prediction": index, "label": names[index], "probability": p}
        for index, p in zip(predicted.tolist(), chosen, strict=True)
    ]
    if top is None or top >= len(names):
        for answer, row in zip(answers, probabilities.tolist(), strict=True):
            answer["probabilities"] = dict(zip(names, row, strict=True))
    elif top > 0:
        part = np.argpartition(-probabilities, top - 1, axis=1)[:, :top]
        values = np.take_along_axis(probabilities, part, axis=1)
        order = np.lexsort((part, -values), axis=1)
        leaders = np.take_along_axis(part, order, axis=1).tolist()
        shares = np.take_along_axis(values, order, axis=1).tolist()
        for answer, classes, row in zip(answers, leaders, shares, strict=True):
            answer["probabilities"] = {names[c]: p for c, p in zip(classes, row, strict=True)}
    return answers


def binary_answers(names: Sequence[Any], probabilities: np.ndarray, predicted: np.ndarray) -> list[dict[str, Any]]:
    """class_answers of a two-class model with both probabilities: each answer built whole by one
    comprehension of literals, in 0.26 ms for 1,000 rows where building the answers and then
    their probabilities (the general path) took 0.61 ms (bench_predict's batch)."""
    no, yes = names
    q, p = probabilities.T.tolist()
    return [
        {"prediction": index, "label": names[index], "probability": pp, "probabilities": {no: qq, yes: pp}}
        for index, qq, pp in zip(predicted.tolist(), q, p, strict=True)
    ]


MEANS_MISSING = "'feature_means', the training means of its encoded columns"


def not_explainable(missing: str) -> NotExplainable:
    """The 409 of a model stored before explanations existed, naming what it lacks."""
    return NotExplainable(
        f"this model was stored before explanations existed (it has no {missing}): it must be retrained "
        "to be explained; its predictions without 'explain' are unchanged",
        details=[{"field": "explain", "problem": "the model must be retrained to be explained"}],
    )


def training_means(parser: Any, means: Any) -> np.ndarray | None:
    """A stored model's ``feature_means`` (one per encoded column), or None for a model stored
    before they were kept (it predicts, but cannot be explained)."""
    if means is None:
        return None
    vector = np.asarray(means, dtype=np.float64)
    if vector.shape != (parser.num_features,):
        raise InvalidSchema(
            f"stored model has {vector.size} feature means; its schema has {parser.num_features} features"
        )
    return vector


def grouped(columns: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(n, encoded columns) contributions summed into (n, features): a categorical's one-hot
    columns (contiguous, from its offset) into its feature."""
    if not columns.shape[0]:
        return np.zeros((0, offsets.size))
    return np.add.reduceat(columns, offsets, axis=1)


class LinearExplainer:
    """A linear model's explanations: ``weights`` (a row per class, one for a binary or regression
    model), ``intercepts``, the training ``means`` of the encoded columns. The base is the chosen
    row's output at the means, each column adds weight x (value - mean); the chosen row is the
    predicted class's for a multi-class model (``multiclass``), else the only one."""

    def __init__(self, weights: np.ndarray, intercepts: np.ndarray, means: np.ndarray, offsets: np.ndarray,
                 output: str, multiclass: bool):  # fmt: skip
        self.weights, self.intercepts, self.means, self.offsets = weights, intercepts, means, offsets
        self.output, self.multiclass = output, multiclass
        # Each row's base once: the same for every record, whatever the batch it is scored in.
        self.bases = intercepts + weights @ means

    def explain(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chosen = np.zeros(matrix.shape[0], dtype=np.int64)
        if self.multiclass:
            chosen = (matrix @ self.weights.T + self.intercepts).argmax(axis=1)
        return self.bases[chosen], grouped(self.weights[chosen] * (matrix - self.means), self.offsets)


def sigmoid(margin: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-margin))


def softmax(margins: np.ndarray) -> np.ndarray:
    """Row-wise softmax of an (n, k) matrix, shifted by the row's maximum as Spark does."""
    shifted = np.exp(margins - margins.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class LinearClassifier(Predictor):
    """Logistic regression: binary (one weight vector, the sigmoid of the margin, class 1 when the
    margin is positive) or multinomial (a weight row per class, softmax, the largest margin).
    ``means``, the training means of the encoded columns, is what explanations are relative to."""

    def __init__(self, parser: Any, weights: Any, intercepts: Any, means: Any = None):
        super().__init__(parser)
        self.means = training_means(parser, means)
        self.weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        self.intercepts = np.atleast_1d(np.asarray(intercepts, dtype=np.float64))
        self.names = parser.class_names
        self.task = "binary" if len(self.names) == 2 else "multiclass"
        self._check_width(self.weights.shape[1], f"{self.weights.shape[1]} coefficients")
        rows = 1 if self.task == "binary" else len(self.names)
        if self.weights.shape[0] != rows or self.intercepts.shape != (rows,):
            raise InvalidSchema(
                f"stored model has {self.weights.shape[0]} coefficient rows for {len(self.names)} classes"
            )
        self._vector, self._intercept = self.weights[0], float(self.intercepts[0])

    def predict_one(self, record: Mapping[str, Any], top: int | None = None) -> dict[str, Any]:
        if self.task != "binary" or top is not None:
            return super().predict_one(record, top)
        # The common online case: one vector, scalar arithmetic, no column-wise batch set-up.
        margin = float(np.asarray(self.parser.encode_one(record), dtype=np.float64) @ self._vector) + self._intercept
        p = float(sigmoid(np.float64(margin)))
        positive = int(margin > 0)
        no, yes = self.names
        return {
            "prediction": positive,
            "label": self.names[positive],
            "probability": p,
            "probabilities": {no: 1.0 - p, yes: p},
        }

    def margins(self, matrix: np.ndarray) -> np.ndarray:
        return matrix @ self.weights.T + self.intercepts

    def _answers(self, matrix: np.ndarray, top: int | None = None) -> list[dict[str, Any]]:
        margins = self.margins(matrix)
        if self.task == "binary":
            p = sigmoid(margins[:, 0])
            positive = (margins[:, 0] > 0).astype(np.int64)
            return class_answers(self.names, np.column_stack([1.0 - p, p]), positive, top)
        return class_answers(self.names, softmax(margins), margins.argmax(axis=1), top)

    def explainer(self) -> LinearExplainer:
        """Explains the margin (log-odds; multi-class: the predicted class's) from the training
        means."""
        if self.means is None:
            raise not_explainable(MEANS_MISSING)
        return LinearExplainer(
            self.weights, self.intercepts, self.means, self.feature_offsets(), "margin", self.task != "binary"
        )


class LinearRegressor(Predictor):
    """Linear regression: the prediction is the margin itself."""

    task = "regression"

    def __init__(self, parser: Any, weights: Any, intercept: float, means: Any = None):
        super().__init__(parser)
        self.means = training_means(parser, means)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.intercept = float(intercept)
        self._check_width(self.weights.size, f"{self.weights.size} coefficients")

    def predict_one(self, record: Mapping[str, Any], top: int | None = None) -> dict[str, Any]:
        vector = np.asarray(self.parser.encode_one(record), dtype=np.float64)
        return {"prediction": float(vector @ self.weights) + self.intercept}

    def values(self, matrix: np.ndarray) -> np.ndarray:
        return matrix @ self.weights + self.intercept

    def _answers(self, matrix: np.ndarray, top: int | None = None) -> list[dict[str, Any]]:
        return [{"prediction": value} for value in self.values(matrix).tolist()]

    def explainer(self) -> LinearExplainer:
        """The value at the training means as the base, plus weight x (value - training mean)."""
        if self.means is None:
            raise not_explainable(MEANS_MISSING)
        weights, intercepts = self.weights[None, :], np.array([self.intercept])
        return LinearExplainer(weights, intercepts, self.means, self.feature_offsets(), "value", False)


# ------------------------------------------------------------------------------------- forests


class Forest:
    """A tree ensemble as flat node arrays, every tree's nodes end to end.

    ``feature[i]`` is the feature a node splits on (-1 for a leaf), ``threshold[i]`` its split
    (a row goes left when its value is <= threshold, Spark's continuous split), ``left``/``right``
    the children's global indices, ``value[i]`` a leaf's class distribution (classification: the
    leaf's class counts normalised, one row per node) or its prediction (regression)."""

    def __init__(self, trees: Sequence[Mapping[str, Any]], classes: int | None):
        sizes = [len(tree["feature"]) for tree in trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.roots = offsets
        self.feature = np.concatenate([np.asarray(t["feature"], dtype=np.int64) for t in trees])
        self.threshold = np.concatenate([np.asarray(t["threshold"], dtype=np.float64) for t in trees])
        self.left = np.concatenate(
            [np.asarray(t["left"], dtype=np.int64) + o for t, o in zip(trees, offsets, strict=True)]
        )
        self.right = np.concatenate(
            [np.asarray(t["right"], dtype=np.int64) + o for t, o in zip(trees, offsets, strict=True)]
        )
        self.value = np.concatenate([np.asarray(t["value"], dtype=np.float64) for t in trees])
        self.classes = classes
        self.depth = max(int(t.get("depth", len(t["feature"]))) for t in trees)
        leaves = self.feature < 0
        self.left[leaves] = np.flatnonzero(leaves)  # a leaf is its own child: extra steps stay put
        self.right[leaves] = np.flatnonzero(leaves)
        self.feature[leaves] = 0
        self.threshold[leaves] = np.inf

    def leaves(self, matrix: np.ndarray) -> np.ndarray:
        """The leaf each row reaches in each tree: an (n, trees) index array, all trees at once."""
        rows = np.arange(matrix.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (matrix.shape[0], self.roots.size)).copy()
        for _ in range(self.depth):
            go_left = matrix[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return node

    def evaluate(self, matrix: np.ndarray) -> np.ndarray:
        """Classification: (n, k) class probabilities (Spark's normalised sum of the trees' leaf
        distributions); regression: (n,) the mean of the trees' leaf predictions."""
        values = self.value[self.leaves(matrix)]
        if self.classes is None:
            return values.mean(axis=1)
        votes = values.sum(axis=1)
        return votes / votes.sum(axis=1, keepdims=True)


class ForestPredictor(Predictor):
    """A random forest (classification or regression) from its stored trees.

    ``explanations`` are exact path-dependent TreeSHAP (predictionservice.treeshap) over the
    trees' training covers; its grouped leaves are built at the first explanation and kept, so a
    model never asked to explain costs nothing more. A forest stored before covers were kept
    still predicts, but cannot be explained."""

    def __init__(self, parser: Any, trees: Sequence[Mapping[str, Any]]):
        super().__init__(parser)
        covers = [tree.get("cover") for tree in trees]
        self._cover = None if None in covers else np.concatenate([np.asarray(c, dtype=np.float64) for c in covers])
        self._explainer: ForestExplainer | None = None
        self.names = parser.class_names
        self.task = "regression" if not self.names else ("binary" if len(self.names) == 2 else "multiclass")
        self.forest = Forest(trees, len(self.names) or None)
        widest = int(self.forest.feature.max(initial=0)) + 1
        if widest > parser.num_features:
            raise InvalidSchema(f"stored trees split on feature {widest - 1}; the schema has {parser.num_features}")

    def _values_per_row(self) -> int:
        """Every tree's leaf value for the row: a class distribution each, or a number."""
        return int(self.forest.roots.size) * max(1, len(self.names))

    def _answers(self, matrix: np.ndarray, top: int | None = None) -> list[dict[str, Any]]:
        result = self.forest.evaluate(matrix)
        if self.names:  # classification
            return class_answers(self.names, result, result.argmax(axis=1), top)
        return [{"prediction": value} for value in result.tolist()]

    def explainer(self) -> ForestExplainer:
        """Explains the predicted class's probability (the first of equal ones, as the prediction
        picks) or the regression value; built at the first explanation and kept."""
        if self._explainer is None:
            if self._cover is None:
                raise NotExplainable(
                    "this forest was stored before explanations existed (it has no node covers): it must be "
                    "retrained to be explained; its predictions without 'explain' are unchanged"
                )
            self._explainer = ForestExplainer(
                self.forest, self._cover, self.parser.num_features, self.feature_offsets()
            )
        return self._explainer


class ForestExplainer:
    """A forest's explanations: exact path-dependent TreeSHAP (predictionservice.treeshap) over
    the trees and their nodes' training covers, the encoded columns summed into features. Its
    grouped leaves are built at the first ``explain`` (on an executor, once per task: they are not
    pickled, the trees are)."""

    def __init__(self, forest: Forest, cover: np.ndarray, width: int, offsets: np.ndarray):
        self.forest, self.cover, self.width, self.offsets = forest, cover, width, offsets
        self.output = "value" if forest.classes is None else "probability"
        self._shap: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_shap": None}

    def explain(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._shap is None:
            from predictionservice.treeshap import ForestShap

            self._shap = ForestShap(self.forest, self.cover, self.width)
        chosen = self.forest.evaluate(matrix).argmax(axis=1) if self.forest.classes else None
        base, columns = self._shap.explain(matrix, chosen)
        return base, grouped(columns, self.offsets)
