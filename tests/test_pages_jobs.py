"""The jobs' pages in process: what each job ran on, when it started and how long it took, its
status in a person's words (the API's beside it), filters by kind and status, and each step's
time on a job's page. Jobs are made directly in the session's job store, moved as a worker moves
them."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from predictionservice.jobstore import COMPLETED, FAILED, STARTED, SUBMITTED, JobStore
from predictionservice.redisclient import connect

DOCUMENT = {"name": "RandomForestWrapper", "inputCollection": "ui_jobs.houses", "description": "d"}


@pytest.fixture(scope="module")
def jobs(client):
    return JobStore(connect(client.params["redis_url"]), 600)


@pytest.fixture(scope="module")
def finished(jobs):
    """A training job that started, ran and completed, a second apart at least, and a scoring
    job that failed."""
    training, scoring = uuid.uuid4().hex, uuid.uuid4().hex
    jobs.create(training, "training", DOCUMENT)
    jobs.update(training, STARTED, "starting", 0.0)
    time.sleep(1.1)
    jobs.update(training, SUBMITTED, "fitting fold 1 of 3", 0.2)
    jobs.update(training, COMPLETED, f"model {training} trained: auc 0.91", model_key=training, metrics={"auc": 0.91})
    jobs.create(scoring, "predictall", {"modelkey": training, "outputCollection": "ui_jobs.out"})
    jobs.update(scoring, FAILED, "the input collection is empty")
    return training, scoring


def row(html: str, job_id: str) -> str:
    found = re.search(rf'<tr class="job" data-job="{job_id}"(.*?)</tr>', html, re.S)
    assert found, f"no row for {job_id}"
    return found.group(1)


def test_a_started_job_shows_when_it_started(jobs, finished):
    training, scoring = finished
    view = jobs.view(training)
    assert view["created_at"] <= view["started_at"] < view["updated_at"]
    assert "started_at" not in jobs.view(scoring)  # it never started


def test_the_list_shows_what_a_job_ran_on_when_and_for_how_long(client, finished):
    training, _ = finished
    shown = row(client.get("/ui/jobs").text, training)
    assert "ui_jobs.houses" in shown and "random forest" in shown
    assert '<td class="status" data-status="COMPLETED" title="COMPLETED">done</td>' in shown
    assert re.search(r'<td class="number">1\.\d s</td>', shown), shown  # started to completed
    assert "<time " in shown and "just now" in shown
    message = re.search(r'<td class="message">([^<]*)</td>', shown).group(1)
    assert message == "model trained: auc 0.91"  # its id is the row's


@pytest.mark.parametrize(
    ("query", "which"),
    [
        ({"kind": "training"}, {0}),
        ({"kind": "predictall"}, {1}),
        ({"status": "FAILED"}, {1}),
        ({"kind": "training", "status": "FAILED"}, set()),
    ],
)
def test_the_filters_choose_kind_and_status(client, finished, query, which):
    html = client.get("/ui/jobs", query_string=query).text
    assert {finished[i] for i in which} == {j for j in finished if f'data-job="{j}"' in html}
    for name, value in query.items():
        assert re.search(rf'<select id="filter-{name}" name="{name}">.*?<option value="{value}" selected>', html, re.S)


def test_a_filter_outside_the_apis_words_is_a_400_page_saying_which_are(client):
    page = client.get("/ui/jobs", query_string={"status": "RUNNING"})
    assert page.status_code == 400 and "status one of PENDING, STARTED, SUBMITTED, COMPLETED, FAILED" in page.text


def test_a_jobs_page_times_each_step(client, finished):
    training, _ = finished
    html = client.get(f"/ui/jobs/{training}").text
    assert re.search(r'<p id="job-times">Submitted <time [^>]*>just now</time>, started <time [^>]*>', html)
    assert re.search(r"took 1\.\d s\.</p>", html)
    steps = re.findall(
        r'<tr><td><time [^>]*>[\d:]{8}</time></td>\s*<td title="(\w+)">(\w+)</td>'
        r'.*?<td class="number">([^<]*)</td></tr>',
        html,
        re.S,
    )
    words = [(api, said) for api, said, _ in steps]
    assert words == [("STARTED", "starting"), ("SUBMITTED", "running"), ("COMPLETED", "done")]
    assert re.fullmatch(r"1\.\d s", steps[0][2]) and steps[-1][2] == ""  # starting took the sleep; the last none
