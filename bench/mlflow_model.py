"""Run by ``bench_predict.py --mlflow`` with bench/.venv-mlflow's Python (not the project's):
fits a scikit-learn pipeline on the bank CSV and saves it as an MLflow model for
``mlflow models serve``.

The pipeline (bench/sklearn_pipeline.py) takes raw records, as the service does.

    bench/.venv-mlflow/bin/python bench/mlflow_model.py bank-full.csv ROWS MODEL_DIR
"""

from __future__ import annotations

import sys
import warnings

import mlflow.sklearn
from sklearn_pipeline import fitted


def main(csv: str, rows: int, model_dir: str) -> int:
    warnings.filterwarnings("ignore", category=UserWarning)  # the integer-columns hint of the signature
    pipeline, data = fitted(csv, rows)
    mlflow.sklearn.save_model(pipeline, model_dir, input_example=data.head(5))
    print(f"saved {model_dir}: fitted on {len(data)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
