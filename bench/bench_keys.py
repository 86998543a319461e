"""What checking a key costs a request: GET /v2/health/live (the cheapest route that needs a key,
scope 'read') through the Flask app in process (its test client: no HTTP server, so the guard's
share is not diluted) on a private redis-server, answered (a) with no token configured (the
baseline: no check at all), (b) with the service's token, (c) with an API key while the keys'
change subscription is alive (one HMAC-SHA256 and a dict lookup), and (d) with an API key and the
subscription off (model_watch false: the key read from Redis on every request, two HGETs). Best of
--rounds runs of --requests requests each; the figures are µs per request and each one's ratio to
the baseline.

    .venv/bin/python bench/bench_keys.py [--requests N] [--rounds N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localservers import embedded
from modelservice import modelservice
from predictionservice.config import load_parameters

TOKEN = "bench-token"


def per_request(client, headers: dict[str, str], requests: int, rounds: int) -> float:
    """Best-of-rounds µs per request."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(requests):
            if client.get("/v2/health/live", headers=headers).status_code != 200:
                raise RuntimeError("the request was refused")
        best = min(best, (time.perf_counter() - start) / requests * 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = embedded.start_redis(embedded.free_port(), Path(tmp), persistent=False)
        try:
            base = load_parameters(environ={}, overrides={"redis_url": server.url, "metrics": False})
            plain = modelservice(base).test_client()
            secured = modelservice({**base, "auth_token": TOKEN})
            unwatched = modelservice({**base, "auth_token": TOKEN, "model_watch": False})
            key = secured.extensions["prediction_service"].access.keys.create("bench", ["read"])[1]
            watched_client, unwatched_client = secured.test_client(), unwatched.test_client()
            watched_client.get("/v2/health/live", headers={"Authorization": f"Bearer {key}"})
            time.sleep(1.0)  # the subscription confirmed: the cache is trusted from here on
            cases = {
                "no token (baseline)": (plain, {}),
                "the token": (watched_client, {"Authorization": f"Bearer {TOKEN}"}),
                "an API key, cached": (watched_client, {"Authorization": f"Bearer {key}"}),
                "an API key, from Redis": (unwatched_client, {"Authorization": f"Bearer {key}"}),
            }
            figures = {name: per_request(c, h, args.requests, args.rounds) for name, (c, h) in cases.items()}
        finally:
            server.stop()
    baseline = figures["no token (baseline)"]
    for name, micros in figures.items():
        print(f"{name:24s} {micros:8.1f} µs/request   ratio to baseline {micros / baseline:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
