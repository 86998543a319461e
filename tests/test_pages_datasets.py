"""The datasets' pages in process: a CSV uploaded through the list's form (bad lines refused or
skipped, every one named), downloads as CSV and JSON lines equal to the API's export, deletion
only once the name is typed, a scored collection linked to its model and not offered for
training, and sample values written for people."""

from __future__ import annotations

import io
import re
import uuid
from html import unescape

import pytest

from predictionservice.jobstore import COMPLETED, JobStore
from predictionservice.redisclient import connect
from test_pages import form_token

GOOD = "x,c,y\n0.123456789,a,yes\n2,b,no\n3,a,yes\n"
BAD_LINES = (3, 5, 6, 8, 9)  # a field too many or too few, each


def csv_with_bad_lines() -> str:
    lines = ["x,c,y"]
    for n in range(2, 12):  # file lines 2 to 11
        lines.append(f"{n},a,yes,extra" if n in BAD_LINES[::2] else f"{n},a" if n in BAD_LINES else f"{n},b,no")
    return "\n".join(lines) + "\n"


def upload(client, db: str, collection: str, body: str, **fields: str):
    token = form_token(client.get("/ui/datasets").text)
    data = {"db": db, "collection": collection, "csrf_token": token, **fields,
            "file": (io.BytesIO(body.encode()), "data.csv")}  # fmt: skip
    return client.post("/ui/datasets/upload", data=data, content_type="multipart/form-data")


@pytest.fixture()
def db():
    return f"ui_ds_{uuid.uuid4().hex[:8]}"


def test_a_csv_uploaded_from_the_page_is_loaded_and_listed(client, mongo_client, db):
    page = upload(client, db, "good", GOOD)
    assert page.status_code == 200, page.text
    assert re.search(r"Loaded 3 documents into <a href=\"/ui/datasets/" + db + r'/good">', page.text)
    assert mongo_client[db]["good"].count_documents({}) == 3
    listed = re.search(rf'<tr data-dataset="{db}.good">(.*?)</tr>', client.get("/ui/datasets").text, re.S).group(1)
    assert '<td class="number">3</td>' in listed and "train on it" in listed and "scored-by" not in listed
    sample = client.get(f"/ui/datasets/{db}/good").text
    assert "<td>0.1235</td>" in sample and "0.123456789" not in sample  # written for people
    mongo_client.drop_database(db)


def test_bad_lines_are_all_named_whether_the_file_is_refused_or_they_are_skipped(client, mongo_client, db):
    refused = upload(client, db, "bad", csv_with_bad_lines())
    assert refused.status_code == 400
    message = unescape(re.search(r'<p class="error" id="upload-error">(.*?)</p>', refused.text, re.S).group(1))
    assert "5 bad lines" in message and all(f"line {n}:" in message for n in BAD_LINES), message
    assert "bad" not in mongo_client[db].list_collection_names()  # nothing loaded
    assert 'value="bad"' in refused.text  # the form keeps what was typed

    skipped = upload(client, db, "bad", csv_with_bad_lines(), on_error="skip")
    assert skipped.status_code == 200, skipped.text
    assert "Loaded 5 documents" in skipped.text and "5 bad lines skipped" in skipped.text
    named = re.findall(r"<li>line (\d+): ", re.search(r'<ul id="bad-lines">(.*?)</ul>', skipped.text, re.S).group(1))
    assert [int(n) for n in named] == list(BAD_LINES)
    mongo_client.drop_database(db)


def test_an_upload_without_a_file_or_a_name_says_what_is_missing(client, db):
    token = form_token(client.get("/ui/datasets").text)
    empty = client.post("/ui/datasets/upload", data={"db": db, "collection": "x", "csrf_token": token},
                        content_type="multipart/form-data")  # fmt: skip
    assert empty.status_code == 400 and "choose a CSV file to upload" in empty.text
    unnamed = upload(client, db, "", GOOD)
    assert unnamed.status_code == 400 and "name the database and the collection" in unnamed.text


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_download_is_the_apis_export(client, mongo_client, db, fmt):
    upload(client, db, "down", GOOD)
    page = client.get(f"/ui/datasets/{db}/down").text
    assert f'href="/ui/datasets/{db}/down/download?format={fmt}"' in page
    downloaded = client.get(f"/ui/datasets/{db}/down/download", query_string={"format": fmt})
    exported = client.get(f"/datasets/{db}/down/export", query_string={"format": fmt})
    assert downloaded.status_code == 200 and downloaded.content == exported.content
    assert f'filename="{db}.down.{fmt}"' in downloaded.headers["Content-Disposition"]
    mongo_client.drop_database(db)


def test_a_dataset_is_deleted_only_once_its_name_is_typed(client, mongo_client, db):
    upload(client, db, "gone", GOOD)
    page = client.get(f"/ui/datasets/{db}/gone").text
    assert '<form id="delete-form"' in page and '<label for="delete-confirm">' in page
    token = form_token(page)
    wrong = client.post(f"/ui/datasets/{db}/gone/delete", data={"confirm": "gone", "csrf_token": token})
    assert wrong.status_code == 400 and f"type the dataset&#39;s name, {db}.gone, to confirm" in wrong.text
    assert mongo_client[db]["gone"].count_documents({}) == 3
    right = client.post(f"/ui/datasets/{db}/gone/delete", data={"confirm": f"{db}.gone", "csrf_token": token})
    assert right.status_code == 303 and right.headers["Location"] == "/ui/datasets"
    assert "gone" not in mongo_client[db].list_collection_names()


def test_a_scored_collection_links_to_its_model_and_is_not_offered_for_training(client, mongo_client, db):
    scored = [{"score": 1, "probability": 0.8765, "value": {"x": 1.23456, "y": "yes"}},
              {"score": 0, "probability": 0.1, "value": {"x": 2.0, "y": "no"}}]  # fmt: skip
    mongo_client[db]["scored"].insert_many(scored)
    jobs = JobStore(connect(client.params["redis_url"]), 600)
    job_id = uuid.uuid4().hex
    jobs.create(job_id, "predictall", {"modelkey": "some-model", "outputCollection": f"{db}.scored"})
    jobs.update(job_id, COMPLETED, "scored", rows=2)
    listed = re.search(rf'<tr data-dataset="{db}.scored">(.*?)</tr>', client.get("/ui/datasets").text, re.S).group(1)
    assert '<a class="scored-by" href="/ui/models/some-model">some-model</a>' in listed
    assert "train on it" not in listed
    page = client.get(f"/ui/datasets/{db}/scored").text
    assert '<a id="scored-by" href="/ui/models/some-model">' in page and "train on it" not in page
    assert "<dt>x</dt><dd>1.235</dd>" in page and "0.8765" in page
    mongo_client.drop_database(db)
