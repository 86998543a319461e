"""Progress through cross-validation: evaluators that report each (fold, grid point) evaluation,
and the callback that turns those reports into a job's progress.

Only worker processes import this module (it imports pyspark at the top).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pyspark.ml.evaluation import BinaryClassificationEvaluator, MulticlassClassificationEvaluator, RegressionEvaluator


class _Progress:
    """Reports each (fold, grid point) evaluation: CrossValidator offers no other hook."""

    on_evaluate: Callable[[], None] | None = None

    def _evaluate(self, dataset: Any) -> float:
        value = super()._evaluate(dataset)  # type: ignore[misc]
        if self.on_evaluate is not None:
            self.on_evaluate()
        return value


class ProgressEvaluator(_Progress, BinaryClassificationEvaluator):
    """AUC over every distinct score (numBins 0): exact, and three Spark jobs per evaluation
    instead of the default binning's four (it counts the scores first to size its bins)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setNumBins(0)


class MulticlassProgressEvaluator(_Progress, MulticlassClassificationEvaluator):
    pass


class RegressionProgressEvaluator(_Progress, RegressionEvaluator):
    pass


def fold_progress(handler: Any, folds: int, grid: int) -> Callable[[], None]:
    """A callback for ProgressEvaluator that moves the job through its folds (thread-safe:
    CrossValidator evaluates from several threads when its parallelism is above one)."""
    total = folds * grid
    done = 0
    lock = threading.Lock()

    def step() -> None:
        nonlocal done
        with lock:
            done += 1
            fold = min(done // grid + 1, folds)
            message = (
                f"fitting fold {fold} of {folds} ({done} of {total} fits done)"
                if done < total
                else f"cross-validation done ({total} fits)"
            )
            handler.progress(message, 0.15 + 0.7 * done / total)

    return step
