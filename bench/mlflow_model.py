"""Run by ``bench_predict.py --mlflow`` with bench/.venv-mlflow's Python (not the project's):
fits a scikit-learn pipeline on the bank CSV and saves it as an MLflow model for
``mlflow models serve``.

The pipeline takes raw records, as the service does: one-hot encoding of the categorical fields
and scaling of the numeric ones (a ColumnTransformer), then LogisticRegression.

    bench/.venv-mlflow/bin/python bench/mlflow_model.py bank-full.csv ROWS MODEL_DIR
"""

from __future__ import annotations

import sys
import warnings

import mlflow.sklearn
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def main(csv: str, rows: int, model_dir: str) -> int:
    warnings.filterwarnings("ignore", category=UserWarning)  # the integer-columns hint of the signature
    data = pd.read_csv(csv, sep=";", nrows=rows or None)
    label = data.pop("y").eq("yes").astype(int)
    categorical = [c for c in data.columns if data[c].dtype == object]
    numeric = [c for c in data.columns if c not in categorical]
    pipeline = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
                        ("numbers", StandardScaler(), numeric),
                    ]
                ),
            ),
            ("logisticregression", LogisticRegression(max_iter=100, tol=1e-4)),
        ]
    )
    pipeline.fit(data, label)
    mlflow.sklearn.save_model(pipeline, model_dir, input_example=data.head(5))
    print(f"saved {model_dir}: fitted on {len(data)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
