"""The baseline of bench_predict: a bare endpoint served exactly as the service is served.

CherryPy with the service's settings (``modelserver.configure``: host, port, thread pool, queue)
and Paste's TransLogger on the service's access logger (``modelserver.access_logger``), around a
minimal Flask app whose ``POST /predict/`` parses the JSON body with the service's codec (orjson)
and answers with it: a small object for one record; for a batch, one answer per record, each a
copy of ANSWER.json (one of the service's own answers to a record), which is what any server must
write for that body: the fair ceiling of a batch. What the service does beyond this (validation,
the model lookup, encoding, scoring) is what the ratio of the two measures.

    .venv/bin/python bench/bare_server.py parameters.json [ANSWER.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from flask import Flask, Response, request
from paste.translogger import TransLogger

from modelserver import access_logger, run
from predictionservice.config import load_parameters


def bare_app(answer: dict[str, Any]) -> Flask:
    app = Flask("bare_endpoint")

    @app.post("/predict/", strict_slashes=False)
    def predict() -> Response:
        body = orjson.loads(request.get_data(cache=False))
        if "records" in body:
            written = {"modelkey": body.get("modelkey"), "predictions": [dict(answer) for _ in body["records"]]}
        else:
            written = {"modelkey": body.get("modelkey"), "records": 1, "prediction": 0}
        return Response(orjson.dumps(written), mimetype="application/json")

    @app.get("/health")
    def health() -> Response:
        return Response('{"status":"ok"}', mimetype="application/json")

    return app


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__)
        return 2
    params = load_parameters(argv[1], environ={})  # the file alone, as the service's web server reads it
    answer = json.loads(Path(argv[2]).read_text()) if len(argv) == 3 else {"prediction": 0}
    run(params, TransLogger(bare_app(answer), logger=access_logger(params["access_log"])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
