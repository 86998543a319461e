"""python -m predictionclient: every command as a subprocess against the real service, the
progress bar on stderr, --json on stdout, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import EXAMPLES, ROOT, TOKEN, XOR_JOB, bar_percentages, monitored_name, named_model, register_name

RECORD = {"x1": 0.4, "x2": -0.3, "c": "b"}


def cli(*args: str, url: str | None = None, token: str | None = None) -> subprocess.CompletedProcess:
    """The CLI run as a user runs it, its service named by the environment."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    if url:
        env["PREDICTION_SERVICE_URL"] = url
    if token:
        env["PREDICTION_SERVICE_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "predictionclient", *args], capture_output=True, text=True, env=env, timeout=900
    )


def last_json(text: str):
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(service, tmp_path_factory):
    """load, schema and train --wait --json from the command line: (the train run, model key)."""
    loaded = cli("--json", "load", str(EXAMPLES / "xor.csv"), "cli.xor", url=service.url)
    assert loaded.returncode == 0, loaded.stderr
    assert last_json(loaded.stdout)["inserted"] == 600
    schema = cli("schema", "cli.xor", "--label", "y", "--json", url=service.url)
    assert schema.returncode == 0, schema.stderr
    job_file = tmp_path_factory.mktemp("cli") / "job.json"
    job_file.write_text(json.dumps({**XOR_JOB, "inputCollection": "cli.xor", "schema": last_json(schema.stdout)}))
    run = cli("train", str(job_file), "--wait", "--json", url=service.url)
    assert run.returncode == 0, run.stderr
    return run, last_json(run.stdout)["model_key"]


def test_train_wait_json_ends_with_the_final_status_and_shows_a_bar_on_stderr(trained, service):
    run, key = trained
    lines = run.stdout.strip().splitlines()
    submitted, final = json.loads(lines[0]), json.loads(lines[-1])
    assert submitted == {"job_id": key, "kind": "training"}
    assert final == service.get(f"/jobs/{key}").json()
    assert final["status"] == "COMPLETED"
    shown = bar_percentages(run.stderr)
    assert shown[-1] == 100 and len(set(shown)) >= 3, run.stderr  # the bar moved on the way, and ended full
    assert f"COMPLETED: {final['message']}"[:100] in run.stderr


def test_status_models_and_predict_one(trained, service):
    _, key = trained
    status = cli("status", key, "--json", url=service.url)
    assert status.returncode == 0 and last_json(status.stdout)["status"] == "COMPLETED"
    models = cli("models", url=service.url)
    assert models.returncode == 0, models.stderr
    header, *rows = models.stdout.splitlines()
    assert header.split() == ["MODEL_KEY", "NAME", "CREATED_AT", "METRICS"]
    row = next(line for line in rows if line.split()[0] == key)
    assert row.index(key) == header.index("MODEL_KEY") and row.index("RandomForestWrapper") == header.index("NAME")
    assert key in [m["model_key"] for m in last_json(cli("models", "--json", url=service.url).stdout)]
    one = cli("predict", key, "--record", json.dumps(RECORD), "--json", url=service.url)
    assert one.returncode == 0, one.stderr
    expected = service.post("/predict/", json={"modelkey": key, "record": RECORD}).json()
    assert last_json(one.stdout) == {k: v for k, v in expected.items() if k != "modelkey"}


def test_predict_a_jsonl_and_a_csv_file(trained, service, tmp_path):
    _, key = trained
    rows = (EXAMPLES / "xor.csv").read_text().splitlines()[:6]
    csv_file = tmp_path / "records.csv"
    csv_file.write_text("\n".join(rows) + "\n")
    jsonl = tmp_path / "records.jsonl"
    records = [dict(zip(rows[0].split(","), line.split(","), strict=True)) for line in rows[1:]]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    expected = service.post("/predict/", json={"modelkey": key, "records": records}).json()["predictions"]
    for path in (csv_file, jsonl):
        run = cli("--json", "predict", key, "--file", str(path), url=service.url)
        assert run.returncode == 0, run.stderr
        assert last_json(run.stdout) == expected
    human = cli("predict", key, "--file", str(csv_file), url=service.url)
    assert human.returncode == 0, human.stderr
    header, *rows = human.stdout.splitlines()
    assert header.split() == ["RECORD", "LABEL", "PROBABILITY"]
    assert [row.split() for row in rows] == [
        [str(i), a["label"], f"{a['probability']:.4f}"] for i, a in enumerate(expected)
    ]
    named = cli("predict", key, "--file", str(jsonl), "--request-id", "cli-file", url=service.url)
    header, *rows = named.stdout.splitlines()
    assert header.split() == ["RECORD", "REQUEST_ID", "LABEL", "PROBABILITY"]
    assert [row.split()[:3] for row in rows] == [[str(i), f"cli-file/{i}", a["label"]] for i, a in enumerate(expected)]


def test_export_to_a_file_or_stdout_is_the_apis_export(trained, service, tmp_path):
    """export DATASET writes what GET .../export answers, to stdout or --output (its format from
    --format, else the file's suffix); an error is the API's message and leaves no file."""
    for fmt in ("csv", "jsonl"):
        expected = service.get(f"/datasets/cli/xor/export?format={fmt}").content
        out = subprocess.run(
            [sys.executable, "-m", "predictionclient", "--url", service.url, "export", "cli.xor", "--format", fmt],
            capture_output=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0 and out.stdout == expected, out.stderr
        target = tmp_path / f"xor.{fmt}"
        run = cli("export", "cli.xor", "-o", str(target), "--json", url=service.url)
        assert run.returncode == 0, run.stderr
        assert target.read_bytes() == expected
        assert last_json(run.stdout) == {
            "dataset": "cli.xor",
            "format": fmt,
            "file": str(target),
            "bytes": len(expected),
        }
    human = cli("export", "cli.xor", "--output", str(tmp_path / "xor.txt"), url=service.url)
    assert human.stdout.strip().endswith(f"bytes of csv written to {tmp_path / 'xor.txt'}")
    missing = cli("export", "cli.nothing_here", "-o", str(tmp_path / "none.csv"), url=service.url)
    message = service.get("/datasets/cli/nothing_here/export").json()["error"]["message"]
    assert missing.returncode == 1 and missing.stderr.strip() == f"error: not_found (HTTP 404): {message}"
    assert not (tmp_path / "none.csv").exists()


def test_predictall_wait_then_delete(trained, service):
    _, key = trained
    run = cli("predictall", key, "cli.xor", "cli.xor_scored", "--wait", "--json", url=service.url)
    assert run.returncode == 0, run.stderr
    final = last_json(run.stdout)
    assert final["status"] == "COMPLETED" and final["rows"] == 600
    assert "100%" in run.stderr
    deleted = cli("delete", key, url=service.url)
    assert deleted.returncode == 0 and service.get(f"/models/{key}").status_code == 404
    again = cli("delete", key, url=service.url)
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        == f"error: not_found (HTTP 404): {service.get(f'/models/{key}').json()['error']['message']}"
    )


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("predict", "no-such-model", "--record", "{}"), 1, "not_found (HTTP 404)"),
        (("schema", "cli.never_loaded", "--label", "y"), 1, "not found"),
        (("status", "0123456789abcdef0123456789abcdef"), 1, "no job with id"),
        (("predict", "m", "--record", "[1, 2]"), 2, "--record must be a JSON object"),
        (("predict", "m", "--record", "{not json"), 2, "error:"),
        (("load", "/no/such/file.csv", "cli.x"), 2, "No such file"),
        (("train",), 2, "JOB.json"),
        (("nosuchcommand",), 2, "invalid choice"),
    ],
)
def test_errors_exit_non_zero_with_the_message(service, args, code, words):
    run = cli(*args, url=service.url)
    assert run.returncode == code, (run.stdout, run.stderr)
    assert words in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""


def test_an_invalid_job_document_is_the_apis_400(service, tmp_path):
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({**XOR_JOB, "name": "NoSuchAlgorithm", "inputCollection": "cli.xor"}))
    run = cli("train", str(job_file), "--wait", url=service.url)
    assert run.returncode == 1 and "unknown_algorithm (HTTP 400)" in run.stderr and "NoSuchAlgorithm" in run.stderr


def test_the_token_comes_from_the_option_or_the_environment(token_service):
    refused = cli("models", url=token_service.url)
    assert refused.returncode == 1 and "unauthorized (HTTP 401)" in refused.stderr
    assert cli("models", "--json", url=token_service.url, token=TOKEN).returncode == 0
    assert cli("--token", TOKEN, "models", url=token_service.url).returncode == 0
    assert cli("--url", token_service.url, "--token", "wrong", "models").returncode == 1


def test_an_unreachable_service_exits_1_naming_it():
    run = cli("--url", "http://127.0.0.1:9", "models")
    assert run.returncode == 1 and "unreachable" in run.stderr and "127.0.0.1:9" in run.stderr


def test_an_api_key_with_its_scopes(token_service):
    """--key (or --token, or the environment) takes an API key: a read key lists the models, and a
    delete it lacks the scope for fails naming the scope."""
    import requests

    made = requests.post(
        f"{token_service.url}/keys/",
        json={"name": "cli-reader", "scopes": ["read"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    ).json()
    assert cli("--key", made["key"], "models", url=token_service.url).returncode == 0
    refused = cli("--key", made["key"], "delete", "no-such-model", url=token_service.url)
    assert refused.returncode == 1 and "'admin'" in refused.stderr
    requests.delete(f"{token_service.url}/keys/{made['id']}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert cli("--key", made["key"], "models", url=token_service.url).returncode == 1


def test_registry_and_promote(service):
    """registry (the names, or one name) and promote NAME VERSION [--alias A]: the API's answers
    with --json, a line a name (or a version) without; an unknown version exits 1 naming those there are."""
    with named_model(service.params, prefix="cli") as (name, keys):
        names = cli("registry", url=service.url)
        assert names.returncode == 0, names.stderr
        assert f"{name}\tcandidate=2, production=1\t2 versions" in names.stdout.splitlines()
        shown = cli("registry", name, "--json", url=service.url)
        assert last_json(shown.stdout) == service.get(f"/registry/{name}").json()
        human = cli("registry", name, url=service.url).stdout.splitlines()
        assert human[0] == f"{name}\taliases: candidate=2, production=1"
        assert human[1].startswith(f"  2\t{keys[1]}\t") and human[1].endswith("\tauc=0.9\t\tcandidate")
        assert human[2].startswith(f"  1\t{keys[0]}\t") and human[2].endswith("\tproduction")
        promoted = cli("promote", name, "2", "--json", url=service.url)
        assert promoted.returncode == 0, promoted.stderr
        assert last_json(promoted.stdout)["aliases"] == {"production": 2, "candidate": 2}
        answer = service.post("/predict/", json={"modelkey": name, "record": {"x": 0.4}})
        assert answer.status_code == 200 and answer.json()["model"]["version"] == 2
        staged = cli("promote", name, "1", "--alias", "staging", url=service.url)
        assert staged.returncode == 0 and "staging: None -> 1 (manual)" in staged.stdout
        unknown = cli("promote", name, "7", url=service.url)
        assert (
            unknown.returncode == 1 and "not_found (HTTP 404)" in unknown.stderr and "versions: 1, 2" in unknown.stderr
        )
        assert cli("promote", name, "two", url=service.url).returncode == 2  # a usage error


def test_retrain_and_schedule_from_the_command_line(trained, service):
    name = register_name(service.params, {**XOR_JOB, "inputCollection": "cli.xor"}, "cli")
    run = cli("--json", "retrain", name, "--set", "numFolds=2", "--set", "description=nightly", url=service.url)
    assert run.returncode == 0, run.stderr
    job_id = last_json(run.stdout)["job_id"]
    try:
        record = service.get(f"/jobs/{job_id}").json()
        assert record["lineage"]["model"] == name and record["lineage"]["description"] == "nightly"
        again = cli("retrain", name, url=service.url)
        assert again.returncode == 1 and job_id in again.stderr and "skipped" in again.stderr
    finally:
        service.request("DELETE", f"/jobs/{job_id}")
    made = cli("--json", "schedule", name, "--every", "3600", url=service.url)
    assert made.returncode == 0, made.stderr
    assert last_json(made.stdout)["every_seconds"] == 3600 and "when" not in last_json(made.stdout)
    drift = cli("--json", "schedule", name, "--every", "3600", "--on-drift", url=service.url)
    assert drift.returncode == 0, drift.stderr
    assert last_json(drift.stdout)["when"] == "drift"
    shown = cli("--json", "schedule", name, url=service.url)
    assert last_json(shown.stdout) == service.get(f"/registry/{name}/schedule").json()
    bad = cli("schedule", name, "--cron", "0 3 * *", url=service.url)
    assert bad.returncode == 1 and "five fields" in bad.stderr
    assert cli("schedule", name, "--delete", url=service.url).returncode == 0
    gone = cli("schedule", name, url=service.url)
    assert gone.returncode == 1 and "no schedule" in gone.stderr
    service.request("DELETE", f"/registry/{name}")


def test_monitor_shows_the_window_quality_and_drifted_features_first(service, mongo_client):
    name, key, cleanup = monitored_name(service.params, mongo_client)
    try:
        shown = cli("monitor", name, url=service.url)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[0].startswith(f"{name} version 1 ({key}): 40 predictions since ")
        assert lines[1].startswith("quality on 20 labelled: ") and "accuracy=0.75" in lines[1]
        assert lines[2].startswith("x\tDRIFTED\tpsi=") and lines[3].startswith("(score)\t")
        as_json = cli("--json", "monitor", name, "--version", "production", url=service.url)
        assert last_json(as_json.stdout)["drifted"] == ["x"]
        missing = cli("monitor", name, "--since", "yesterday", url=service.url)
        assert missing.returncode == 1 and "ISO 8601" in missing.stderr
    finally:
        cleanup()


def test_traffic_from_the_command_line(service):
    """traffic NAME --shadow ALIAS | --split ALIAS --percent P | --end, and traffic NAME shows it:
    the API's answers; the API's refusals exit 1 with its message, a usage error 2."""
    with named_model(service.params, prefix="cli") as (name, _):
        shadow = cli("--json", "traffic", name, "--shadow", "candidate", url=service.url)
        assert shadow.returncode == 0, shadow.stderr
        assert last_json(shadow.stdout) == service.get(f"/registry/{name}/traffic").json()
        assert last_json(shadow.stdout)["mode"] == "shadow"
        split = cli("traffic", name, "--split", "candidate", "--percent", "30", url=service.url)
        assert split.returncode == 0, split.stderr
        shown = json.loads(cli("traffic", name, url=service.url).stdout)
        assert shown == json.loads(split.stdout) == service.get(f"/registry/{name}/traffic").json()
        assert (shown["alias"], shown["mode"], shown["percent"]) == ("candidate", "split", 30)
        bad = cli("traffic", name, "--split", "staging", "--percent", "30", url=service.url)
        assert bad.returncode == 1 and "invalid_request (HTTP 400)" in bad.stderr and "staging" in bad.stderr
        for usage in (("--split", "candidate"), ("--shadow", "candidate", "--percent", "5"),
                      ("--shadow", "candidate", "--split", "candidate"), ("--end", "--percent", "5")):  # fmt: skip
            assert cli("traffic", name, *usage, url=service.url).returncode == 2, usage
        assert service.get(f"/registry/{name}/traffic").json() == shown  # nothing sent changed it
        ended = cli("traffic", name, "--end", url=service.url)
        assert ended.returncode == 0 and service.get(f"/registry/{name}").json()["traffic"] is None
        gone = cli("traffic", name, url=service.url)
        assert gone.returncode == 1 and "no traffic setting" in gone.stderr
