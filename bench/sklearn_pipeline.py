"""The scikit-learn pipeline the other servers serve in bench_predict.py (mlflow's and MLServer's,
each run with its own venv's Python): it takes raw records, as the service does, with one-hot
encoding of the categorical fields and scaling of the numeric ones (a ColumnTransformer), then
LogisticRegression. Imports only scikit-learn and pandas."""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def fitted(csv: str, rows: int) -> tuple[Pipeline, pd.DataFrame]:
    """The pipeline fitted on the first rows of the bank CSV (all when rows is 0), and the
    records it was fitted on (without the label)."""
    data = pd.read_csv(csv, sep=";", nrows=rows or None)
    label = data.pop("y").eq("yes").astype(int)
    categorical = [c for c in data.columns if data[c].dtype == object]
    numeric = [c for c in data.columns if c not in categorical]
    encode = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore"), categorical), ("numbers", StandardScaler(), numeric)]
    )
    pipeline = Pipeline([("encode", encode), ("logisticregression", LogisticRegression(max_iter=100, tol=1e-4))])
    pipeline.fit(data, label)
    return pipeline, data
