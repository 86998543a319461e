"""The screenshots of the pages (the README's and the manual's): ``.venv/bin/python docs/screenshot.py``.

Starts a private service (its own Redis, MongoDB, worker and web server on free ports, data in
a temporary folder), trains two small forests on examples/xor.csv through the Python client,
then in headless Chromium saves docs/<page>.png for each page of SHOTS: the models list, a
model's page with the predict form's answer, the two models compared, the jobs, the training
form and the datasets. Everything it started is stopped at the end. A browser test runs
``shoot_pages`` against the test service, so the script cannot rot.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localservers import embedded  # noqa: E402
from localservers.browser import chromium  # noqa: E402
from localservers.serviceprocesses import ServiceProcesses  # noqa: E402
from predictionclient import PredictionClient  # noqa: E402
from predictionservice.config import load_parameters  # noqa: E402

OUT = ROOT / "docs"
JOB = {**json.loads((ROOT / "examples" / "random_forest_xor.json").read_text()), "numTrees": [20], "maxDepth": [5]}
# (file, page path: {a} and {b} are the two models' keys, what shows the page is ready)
SHOTS = (
    ("models.png", "/ui/", "#models"),
    ("model-page.png", "/ui/models/{a}", "#predict-form"),
    ("compare.png", "/ui/compare?model={a}&model={b}", "#compare"),
    ("jobs.png", "/ui/jobs", "#jobs"),
    ("train.png", "/ui/train?dataset=examples.xor&label=y", "#inferred-schema"),
    ("datasets.png", "/ui/datasets", "#datasets"),
)


def shoot_pages(browser: Any, url: str, keys: tuple[str, str], out: Path) -> list[Path]:
    """Each page of SHOTS saved as out/<file> (the model page after its predict form answers)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    saved = []
    for name, path, ready in SHOTS:
        browser.get(url + path.format(a=keys[0], b=keys[1]))
        WebDriverWait(browser, 60).until(lambda b, css=ready: b.find_elements(By.CSS_SELECTOR, css))
        if name == "model-page.png":
            browser.find_element(By.CSS_SELECTOR, "#predict-form button[type=submit]").click()
            WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.ID, "prediction"))
        browser.save_screenshot(str(out / name))
        saved.append(out / name)
    return saved


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
            keys = tuple(
                client.train({**JOB, "numTrees": [trees], "description": f"{trees} trees"}).wait(
                    progress=True, timeout=900
                )["model_key"]
                for trees in (20, 5)
            )
            browser = chromium(width=1100, height=900)
            try:
                saved = shoot_pages(browser, service.url, keys, OUT)
            finally:
                browser.quit()
        finally:
            service.stop()
            mongo.stop()
            redis.stop()
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in saved))
    return 0


if __name__ == "__main__":
    sys.exit(main())
