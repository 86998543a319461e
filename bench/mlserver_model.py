"""Run by ``bench_predict.py --mlserver`` with bench/.venv-mlserver's Python (not the project's):
fits the pipeline of bench/sklearn_pipeline.py on the bank CSV and writes an MLServer model
repository for ``mlserver start``: the pipeline as model.joblib, its model-settings.json (the
scikit-learn runtime) and the server's settings.json (loopback, the given ports, no parallel
worker pool: MLServer 1.7.1's pool crashes on this machine, ``parallel_workers: 0`` works).

    bench/.venv-mlserver/bin/python bench/mlserver_model.py bank-full.csv ROWS REPO HTTP_PORT GRPC_PORT METRICS_PORT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import joblib
from sklearn_pipeline import fitted

MODEL = "bank"


def main(csv: str, rows: int, repo: str, http_port: int, grpc_port: int, metrics_port: int) -> int:
    pipeline, data = fitted(csv, rows)
    folder = Path(repo)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / "model.joblib")
    runtime = "mlserver_sklearn.SKLearnModel"
    settings = {"name": MODEL, "implementation": runtime, "parameters": {"uri": "./model.joblib"}}
    (folder / "model-settings.json").write_text(json.dumps(settings))
    server = {"host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port,
              "parallel_workers": 0, "debug": False}  # fmt: skip
    (folder / "settings.json").write_text(json.dumps(server))
    print(f"wrote {folder}: fitted on {len(data)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], *map(int, sys.argv[4:7])))
