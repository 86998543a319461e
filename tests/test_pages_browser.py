"""The pages in a real headless Chromium against the real service (CherryPy, a Celery worker,
Spark): the predict form answers as /predict/ does, a bad value shows the API's message, the jobs
page moves a training job's progress to its end, training from /ui/train completes (and the list
compares its model with another), token mode asks for the token and refuses another site's form
post, a named model's page moves production with its button, and /docs (Swagger UI 5, from the
service itself) shows every route of the API. Every wait is bounded."""

from __future__ import annotations

import importlib.util
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from helpers import FINAL, ROOT, TOKEN, XOR_JOB, named_model, served_routes
from localservers.browser import chromium

WAIT = 60  # seconds for a page to show what it should
JOB_WAIT = 600  # seconds for a training job to end on a shared machine
ATTACKER = "attacker.test"  # another site: Chromium maps it to 127.0.0.1


@pytest.fixture(scope="module")
def browser():
    driver = chromium(f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1")
    yield driver
    driver.quit()


def shown(browser, css: str, timeout: float = WAIT):
    return WebDriverWait(browser, timeout).until(lambda b: b.find_element(By.CSS_SELECTOR, css))


def form_record(browser) -> dict[str, str]:
    form = browser.find_element(By.ID, "predict-form")
    fields = form.find_elements(By.CSS_SELECTOR, "input[name]:not([type=hidden]), select[name]")
    return {field.get_attribute("name"): field.get_attribute("value") for field in fields}


def test_the_predict_form_answers_what_predict_answers(browser, service, xor_model):
    browser.get(f"{service.url}/ui/models/{xor_model}")
    record = form_record(browser)
    assert set(record) == {"x1", "x2", "c"} and record["c"] in ("a", "b", "c")  # prefilled
    browser.find_element(By.CSS_SELECTOR, "#predict-form button[type=submit]").click()
    answer = shown(browser, "#prediction")
    api = service.post("/predict/", json={"modelkey": xor_model, "record": record}).json()
    assert answer.get_attribute("data-label") == api["label"]
    assert float(answer.get_attribute("data-probability")) == api["probability"]
    numbers = {k: float(v) if k != "c" else v for k, v in record.items()}
    assert service.post("/predict/", json={"modelkey": xor_model, "record": numbers}).json() == api
    assert form_record(browser) == record
    bars = browser.find_elements(By.CSS_SELECTOR, "#explanation svg rect.bar")  # one per feature, drawn
    assert len(bars) == 3 and all(bar.size["height"] > 0 for bar in bars)


def test_a_bad_value_shows_the_apis_message_next_to_its_field(browser, service, xor_model):
    browser.get(f"{service.url}/ui/models/{xor_model}")
    field = browser.find_element(By.CSS_SELECTOR, "#predict-form input[name=x1]")
    field.clear()
    field.send_keys("abc")  # a number input takes none of it: the form sends ''
    browser.find_element(By.CSS_SELECTOR, "#predict-form button[type=submit]").click()
    error = shown(browser, ".field-error[data-field=x1]")
    sent = {**form_record(browser), "x1": ""}
    api = service.post("/predict/", json={"modelkey": xor_model, "record": sent}).json()
    assert error.text == api["error"]["message"] == "field 'x1' is not a number"
    assert browser.find_elements(By.ID, "prediction") == []


def row_state(browser, job_id: str) -> tuple[str, float] | None:
    """The jobs page's row of a job: (status, progress), read as the page shows it now."""
    try:
        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-job='{job_id}']")
        return row.find_element(By.CSS_SELECTOR, ".status").get_attribute("data-status"), float(
            row.find_element(By.CSS_SELECTOR, "progress").get_attribute("data-progress")
        )
    except (NoSuchElementException, StaleElementReferenceException):
        return None  # reloading
    except WebDriverException as exc:  # Chromium's word for an element the reload just replaced
        if "does not belong to the document" in str(exc):
            return None
        raise


def test_the_jobs_page_moves_a_training_jobs_progress_to_its_end(browser, service, xor_model):
    job_id = service.post("/train/", json=XOR_JOB).json()["job_id"]
    browser.get(f"{service.url}/ui/jobs")
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + JOB_WAIT
    while time.monotonic() < deadline and not (seen and seen[-1][0] in FINAL):
        state = row_state(browser, job_id)
        if state and (not seen or state != seen[-1]):
            seen.append(state)
        time.sleep(0.2)
    assert seen and seen[-1] == ("COMPLETED", 1.0), seen
    WebDriverWait(browser, WAIT, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
        lambda b: b.find_element(By.CSS_SELECTOR, f"tr[data-job='{job_id}'] .status").text == "done"
    )  # a person's word for it; the API's status is the attribute
    running = [progress for status, progress in seen if status not in FINAL]
    assert len(set(running)) >= 2, seen  # it moved while it ran (the script polls; no reload)
    link = shown(browser, f"tr[data-job='{job_id}'] .result a")
    assert link.get_attribute("href").endswith(f"/ui/models/{job_id}")


def test_training_from_the_train_page_completes(browser, service, xor_model):
    """The form, not JSON: x1 predicted as a number (regression chosen), c left out by its box,
    the linear regression picked by its name, a description and tags."""
    browser.get(f"{service.url}/ui/train")
    Select(browser.find_element(By.ID, "dataset")).select_by_value("examples.xor")
    browser.find_element(By.CSS_SELECTOR, "#dataset-form button").click()
    labels = [o.get_attribute("value") for o in Select(shown(browser, "#label")).options]
    assert "_id" not in labels and {"x1", "c", "y"} <= set(labels)
    Select(browser.find_element(By.ID, "label")).select_by_value("x1")
    Select(browser.find_element(By.ID, "task")).select_by_value("regression")
    browser.find_element(By.CSS_SELECTOR, "#dataset-form button").click()
    shown(browser, "#inferred-schema")
    assert browser.find_elements(By.CSS_SELECTOR, "input[value=LogisticRegressionWrapper]") == []  # not for a number
    browser.find_element(By.CSS_SELECTOR, "tr[data-field='c'] input[name=include]").click()
    browser.find_element(By.ID, "update-schema").click()
    shown(browser, "tr[data-field='c'].muted")  # left out, still offered
    assert browser.find_element(By.CSS_SELECTOR, "tr[data-field='c'] .reason").text == "left out as asked"
    browser.find_element(By.CSS_SELECTOR, "input[name=algorithm][value=LinearRegressionWrapper]").click()
    field = browser.find_element(By.ID, "LinearRegressionWrapper.regParam")
    field.clear()
    field.send_keys("0.01")
    browser.find_element(By.ID, "description").send_keys("x1 from x2 and y")
    browser.find_element(By.ID, "tags").send_keys("browser, form")
    browser.find_element(By.ID, "train-submit").click()
    WebDriverWait(browser, WAIT).until(lambda b: "/ui/jobs/" in b.current_url)
    job_id = browser.current_url.rsplit("/", 1)[1]
    WebDriverWait(browser, JOB_WAIT, poll_frequency=1).until(
        lambda b: b.find_element(By.ID, "job-status").get_attribute("data-status") in FINAL
    )
    status = browser.find_element(By.ID, "job-status")
    shown_status = (status.get_attribute("data-status"), status.text)
    assert shown_status == ("COMPLETED", "done"), browser.find_element(By.ID, "job").text
    model = service.get(f"/models/{job_id}").json()
    assert model["name"] == "LinearRegressionWrapper" and model["task"] == "regression"
    assert [f["key"] for f in model["schema"]["features"]] == ["x2", "y"] and model["schema"]["label"] == {"key": "x1"}
    assert model["training"]["best_params"]["regParam"] == 0.01
    assert (model["description"], model["tags"]) == ("x1 from x2 and y", ["browser", "form"])
    shown(browser, "#model-link").click()
    WebDriverWait(browser, WAIT).until(lambda b: b.current_url.endswith(f"/ui/models/{job_id}"))
    assert browser.find_element(By.ID, "predict-form")

    # the list, narrowed to the dataset, compares the new forest with the session's xor model
    browser.get(f"{service.url}/ui/?dataset=examples.xor")
    for key in (xor_model, job_id):
        browser.find_element(By.ID, f"pick-{key}").click()
    browser.find_element(By.CSS_SELECTOR, "#compare-form button[type=submit]").click()
    shown(browser, "#compare")
    links = browser.find_elements(By.CSS_SELECTOR, "#compare thead a")
    compared = [a.get_attribute("href").rsplit("/", 1)[1] for a in links]
    assert sorted(compared) == sorted([xor_model, job_id])
    assert browser.find_elements(By.CSS_SELECTOR, "#compare tr.metric[data-metric=accuracy] td.number")
    assert browser.find_element(By.ID, "fairness").text


def test_a_names_page_moves_production_with_its_button(browser, service):
    """Version 2's "Make production" button: the page comes back with production on 2, the
    history says so, and /predict/ by the name answers from version 2."""
    with named_model(service.params, prefix="browser") as (name, keys):
        browser.get(f"{service.url}/ui/registry/{name}")
        assert shown(browser, "#aliases tr[data-alias=production]").get_attribute("data-version") == "1"
        browser.find_element(By.CSS_SELECTOR, "#versions tr[data-version='2'] form.promote button").click()
        # the form posts and the page comes back: meanwhile Chromium may answer a script (what
        # get_attribute runs) with an error of its own ("unhandled inspector error"), not the page's
        WebDriverWait(browser, WAIT, ignored_exceptions=(WebDriverException,)).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "#aliases tr[data-alias=production]").get_attribute(
                "data-version") == "2"
        )  # fmt: skip
        assert browser.current_url == f"{service.url}/ui/registry/{name}"  # back on the page, not an error
        first = browser.find_element(By.CSS_SELECTOR, "#history tbody tr").text
        assert first.split()[1:] == ["production", "1", "2", "manual"], first
        answer = service.post("/predict/", json={"modelkey": name, "record": {"x": 0.4}}).json()
        assert answer["model"] == {"name": name, "version": 2, "model_key": keys[1]} and answer["label"] == "yes"


def test_the_docs_page_shows_every_route_of_the_api(browser, service):
    """Swagger UI renders /openapi.json (OpenAPI 3.1) with no error, an operation for each route
    the app serves and none other, from files of the service alone (no CDN)."""
    browser.get(f"{service.url}/docs")
    failed = "Unable to render this definition"  # what Swagger UI 4 says of an OpenAPI 3.1 document
    WebDriverWait(browser, WAIT).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#swagger-ui .opblock") or failed in b.page_source
    )
    assert failed not in browser.page_source
    operations = browser.find_elements(By.CSS_SELECTOR, "#swagger-ui .opblock")
    shown_routes: dict[str, set[str]] = {}
    for operation in operations:
        method = operation.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.lower()
        path = operation.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
        shown_routes.setdefault(path, set()).add(method)
    assert shown_routes == served_routes()
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(url.startswith(f"{service.url}/") for url in loaded), loaded


class AttackerPage(BaseHTTPRequestHandler):
    """Another site's page that posts a form to the service as soon as it loads."""

    target = ""

    def do_GET(self):
        body = (
            f'<form id="f" method="post" action="{self.target}"><input name="csrf_token" value="guess"></form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_token_mode_asks_for_the_token_and_refuses_a_cross_site_post(token_service, xor_model):
    browser = chromium(f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1")
    AttackerPage.target = f"{token_service.url}/ui/models/{xor_model}/delete"
    attacker = HTTPServer(("127.0.0.1", 0), AttackerPage)
    thread = threading.Thread(target=attacker.serve_forever, daemon=True)
    thread.start()
    try:
        browser.get(f"{token_service.url}/ui/models/{xor_model}")
        field = shown(browser, "#login-form input[name=token]")
        field.send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "#login-form button").click()
        shown(browser, "#predict-form")  # signed in, back where it asked
        browser.get(f"{token_service.url}/ui/jobs")
        assert browser.find_elements(By.ID, "login-form") == []  # asked once
        browser.get(f"http://{ATTACKER}:{attacker.server_port}/")
        message = shown(browser, "#error-message")
        assert "another site" in message.text and ATTACKER in message.text
        assert token_service.get(f"/models/{xor_model}").status_code == 200  # not deleted
    finally:
        browser.quit()
        attacker.shutdown()
        attacker.server_close()
        thread.join(5)


def test_a_csv_uploaded_from_the_page_and_a_scored_collection_downloaded(browser, service, xor_model, tmp_path):
    """The upload form takes a file with a bad line, skips it as chosen and names it; the xor
    model's scored output is linked to the model, not offered for training, and its download
    link (fetched by the page itself, with its cookie) is the API's export."""
    body = "x1,x2,y\n0.1,0.9,a\n0.2,0.8\n0.3,0.7,b\n"
    path = tmp_path / "upload.csv"
    path.write_text(body)
    browser.get(f"{service.url}/ui/datasets")
    shown(browser, "#upload-file").send_keys(str(path))
    browser.find_element(By.ID, "upload-db").send_keys("browser")
    browser.find_element(By.ID, "upload-collection").send_keys("uploaded")
    browser.find_element(By.CSS_SELECTOR, "input[name=on_error][value=skip]").click()
    browser.find_element(By.ID, "upload-submit").click()
    loaded = shown(browser, "#loaded").text
    assert "Loaded 2 documents into browser.uploaded" in loaded and "1 bad lines skipped" in loaded, loaded
    assert "line 3:" in browser.find_element(By.ID, "bad-lines").text

    job = service.post("/predictall/", json={"modelkey": xor_model, "inputCollection": "examples.xor",
                                             "outputCollection": "browser.xor_scored"})  # fmt: skip
    final, _ = service.wait_job(job.json()["job_id"])
    assert final["status"] == "COMPLETED", final
    browser.get(f"{service.url}/ui/datasets")
    row = shown(browser, "tr[data-dataset='browser.xor_scored']")
    assert row.find_element(By.CSS_SELECTOR, "a.scored-by").get_attribute("href").endswith(f"/ui/models/{xor_model}")
    assert row.find_elements(By.CSS_SELECTOR, "a.train") == []
    href = row.find_element(By.CSS_SELECTOR, "a.download").get_attribute("href")
    assert href.endswith("/ui/datasets/browser/xor_scored/download?format=csv")
    fetched = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done, e => done('failed: ' + e));",
        href,
    )
    assert fetched == service.get("/datasets/browser/xor_scored/export", params={"format": "csv"}).text


def test_every_page_fits_a_phone_390_pixels_wide(browser, service, xor_model):
    """At 390 CSS pixels (a phone, emulated) no page scrolls sideways: wide tables scroll inside
    themselves, charts and fields shrink."""
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    job_id = service.get("/jobs/", params={"limit": 1}).json()["jobs"][0]["job_id"]
    try:
        with named_model(service.params, prefix="phone") as (name, keys):
            paths = ["/ui/", f"/ui/models/{xor_model}", f"/ui/compare?model={keys[0]}&model={keys[1]}", "/ui/jobs",
                     f"/ui/jobs/{job_id}", "/ui/train?dataset=examples.xor&label=y", "/ui/datasets",
                     "/ui/datasets/examples/xor", "/ui/registry", f"/ui/registry/{name}"]  # fmt: skip
            for path in paths:
                fits_a_phone(browser, f"{service.url}{path}")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def fits_a_phone(browser, url: str) -> None:
    """The page at url scrolls no wider than the 390-pixel screen (the elements past its right
    edge named when it does)."""
    browser.get(url)
    shown(browser, "main")
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    wide = browser.execute_script(
        "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert widths[1] == 390 and widths[0] <= widths[1], (url, widths, wide)


def test_the_screenshot_script_shoots_every_page(browser, service, xor_model, tmp_path):
    """docs/screenshot.py's pages, shot here against the test service (two models of a name):
    each file a PNG of the browser's width, so the manual's screenshots can be made again."""
    spec = importlib.util.spec_from_file_location("screenshot", ROOT / "docs" / "screenshot.py")
    screenshot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshot)
    with named_model(service.params, prefix="shots") as (_, keys):
        saved = screenshot.shoot_pages(browser, service.url, (keys[0], keys[1]), tmp_path)
    assert [p.name for p in saved] == [name for name, _, _ in screenshot.SHOTS]
    width = browser.execute_script("return window.innerWidth")
    for path in saved:
        head = path.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", path
        assert int.from_bytes(head[16:20], "big") == width and path.stat().st_size > 10_000, path


def test_the_compare_pages_button_scores_both_models_on_the_same_rows(browser, service, xor_model):
    final, _ = service.train({**XOR_JOB, "numTrees": [3], "maxDepth": [2]})
    assert final["status"] == "COMPLETED", final
    browser.get(f"{service.url}/ui/compare?model={xor_model}&model={final['model_key']}")
    shown(browser, "#score-submit").click()
    WebDriverWait(browser, JOB_WAIT, poll_frequency=1).until(lambda b: b.find_elements(By.ID, "scored-rows"))
    said = browser.find_element(By.ID, "scored-rows").text
    assert said.startswith("Each figure is over the same") and "the newest" in said, said
    cells = browser.find_elements(By.CSS_SELECTOR, "#scored tr.metric[data-metric=auc] td.number")
    assert len(cells) == 2 and all(cell.text for cell in cells)
