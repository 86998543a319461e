"""The baseline of bench_predict: a bare endpoint served exactly as the service is served.

CherryPy with the service's settings (``modelserver.configure``: host, port, thread pool, queue)
and Paste's TransLogger on the service's access logger (``modelserver.access_logger``), around a
minimal Flask app whose ``POST /predict/`` parses the JSON body and answers a small JSON object.
What the service does beyond this (validation, the model lookup in Redis, encoding, scoring) is
what the ratio of the two measures.

    .venv/bin/python bench/bare_server.py parameters.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask, Response, request
from paste.translogger import TransLogger

from modelserver import access_logger, run
from predictionservice.config import load_parameters


def bare_app() -> Flask:
    app = Flask("bare_endpoint")

    @app.post("/predict/", strict_slashes=False)
    def predict() -> Response:
        body = json.loads(request.get_data(cache=False))
        records = len(body["records"]) if "records" in body else 1
        answer = {"modelkey": body.get("modelkey"), "records": records, "prediction": 0}
        return Response(json.dumps(answer, separators=(",", ":")), mimetype="application/json")

    @app.get("/health")
    def health() -> Response:
        return Response('{"status":"ok"}', mimetype="application/json")

    return app


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    params = load_parameters(argv[1], environ={})  # the file alone, as the service's web server reads it
    run(params, TransLogger(bare_app(), logger=access_logger(params["access_log"])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
