"""The README's screenshot of a model page: ``.venv/bin/python docs/screenshot.py``.

Starts a private service (its own Redis, MongoDB, worker and web server on free ports, data in
a temporary folder), trains a small forest on examples/xor.csv through the Python client, opens
the model's page in headless Chromium, submits the predict form and saves docs/model-page.png.
Everything it started is stopped at the end.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localservers import embedded  # noqa: E402
from localservers.browser import chromium  # noqa: E402
from localservers.serviceprocesses import ServiceProcesses  # noqa: E402
from predictionclient import PredictionClient  # noqa: E402
from predictionservice.config import load_parameters  # noqa: E402

OUT = ROOT / "docs" / "model-page.png"
JOB = {**json.loads((ROOT / "examples" / "random_forest_xor.json").read_text()), "numTrees": [20], "maxDepth": [5]}


def shoot(url: str, key: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium(width=1100, height=900)
    try:
        browser.get(f"{url}/ui/models/{key}")
        browser.find_element(By.CSS_SELECTOR, "#predict-form button[type=submit]").click()
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.ID, "prediction"))
        browser.save_screenshot(str(OUT))
    finally:
        browser.quit()


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        redis = embedded.start_redis(embedded.free_port(), work / "redis", persistent=False)
        mongo = embedded.start_mongo(embedded.free_port(), work / "mongo", use_mongod=False)
        params = load_parameters(
            environ={},
            overrides={
                "redis_url": redis.url,
                "mongodb_uri": mongo.url,
                "port": embedded.free_port(),
                "spark_master": "local[2]",
                "access_log": False,
            },
        )
        params_file = work / "parameters.json"
        params_file.write_text(json.dumps(params))
        service = ServiceProcesses(params, params_file, work / "logs")
        try:
            service.start()
            service.wait_healthy(timeout=120)
            client = PredictionClient(service.url)
            client.load_csv(ROOT / "examples" / "xor.csv", "examples.xor")
            key = client.train(JOB).wait(progress=True, timeout=900)["model_key"]
            shoot(service.url, key)
        finally:
            service.stop()
            mongo.stop()
            redis.stop()
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
