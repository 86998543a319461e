"""web/registry.py, and named models' references on every route that takes a model key (/predict/,
/models/<ref>, V2), through Flask's test client on the session's real Redis: the routes, 404s that
name what exists, 400s naming the field, the 409 of a delete an alias holds, and the ``model``
each answer made from a reference carries. Models are stored directly, as training stores them."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from helpers import ONE_FEATURE_MODEL

pytestmark = pytest.mark.app

# Two versions that answer differently for x = 0.4: the first says no, the second yes.
NO_AT_04 = {**ONE_FEATURE_MODEL, "task": "binary", "metrics": {"auc": 0.7}}
YES_AT_04 = {**NO_AT_04, "intercept": 0.0, "metrics": {"auc": 0.9}}
RECORD = {"x": 0.4}


@pytest.fixture()
def named(client):
    """A name of this test's own with two versions: 1 (production, says no) and 2 (candidate, yes)."""
    registry = client.app.extensions["prediction_service"].registry
    name = f"bank-{uuid.uuid4().hex[:8]}"
    keys = [uuid.uuid4().hex, uuid.uuid4().hex]
    registry.add_version(name, keys[0], NO_AT_04)
    registry.add_version(name, keys[1], YES_AT_04)
    yield name, keys
    if name in registry.names():
        registry.delete_name(name)
    for key in keys:
        registry.store.delete(key)


def predict(client, modelkey, **body):
    return client.post("/predict/", json={"modelkey": modelkey, "record": RECORD, **body})


def error(reply, status):
    assert reply.status_code == status, reply.text
    return reply.json()["error"]


def test_the_list_and_one_name(client, named):
    name, keys = named
    listed = client.get("/registry/").json()["models"]
    mine = next(m for m in listed if m["name"] == name)
    assert mine["aliases"] == {"production": 1, "candidate": 2} and mine["versions"] == 2
    assert mine["latest"]["model_key"] == keys[1]
    assert client.get("/registry").status_code == 200
    entry = client.get(f"/registry/{name}").json()
    assert set(entry) == {"name", "aliases", "policy", "schedule", "traffic", "versions", "history", "retrains"}
    assert entry["versions"][0] == {"version": 1, "model_key": keys[0], "created_at": NO_AT_04["created_at"],
                                    "metrics": {"auc": 0.7}, "decision": None}  # fmt: skip
    assert entry["schedule"] is None and entry["policy"]["metric"] == "auc"
    assert client.request("HEAD", f"/registry/{name}").status_code == 200


def test_predict_by_name_alias_and_version_says_which_version_answered(client, named):
    name, keys = named
    cases = [(name, 1, "no"), (f"{name}@production", 1, "no"), (f"{name}@candidate", 2, "yes"),
             (f"{name}/2", 2, "yes"), (f"{name}/1", 1, "no")]  # fmt: skip
    for ref, version, label in cases:
        answer = predict(client, ref).json()
        assert answer["modelkey"] == ref and answer["label"] == label, ref
        assert answer["model"] == {"name": name, "version": version, "model_key": keys[version - 1]}
    batch = client.post("/predict/", json={"modelkey": name, "records": [RECORD, RECORD]}).json()
    assert batch["model"]["version"] == 1 and [p["label"] for p in batch["predictions"]] == ["no", "no"]
    by_key = predict(client, keys[1]).json()
    assert "model" not in by_key and by_key["modelkey"] == keys[1] and by_key["label"] == "yes"  # as before


def test_a_moved_alias_is_served_at_once_and_kept_in_the_history(client, named):
    name, _ = named
    assert predict(client, name).json()["label"] == "no"
    moved = client.request("PUT", f"/registry/{name}/aliases/production", json={"version": 2})
    assert moved.status_code == 200, moved.text
    assert moved.json()["aliases"]["production"] == 2
    assert moved.json()["history"][0] | {"time": 0} == {"time": 0, "alias": "production", "from": 1, "to": 2,
                                                        "why": "manual"}  # fmt: skip
    answer = predict(client, name).json()
    assert answer["label"] == "yes" and answer["model"]["version"] == 2
    assert client.request("DELETE", f"/registry/{name}/aliases/candidate").status_code == 204
    gone = error(predict(client, f"{name}@candidate"), 404)
    assert gone["code"] == "not_found" and "aliases: production -> 2" in gone["message"]


def test_unknown_names_aliases_and_versions_are_404_naming_what_exists(client, named):
    name, _ = named
    unknown = error(client.get(f"/registry/x{name}"), 404)
    assert f"no model named 'x{name}'" in unknown["message"] and name in unknown["details"][0]["names"]
    assert name in error(predict(client, f"x{name}@production"), 404)["message"]
    assert "versions: 1, 2" in error(predict(client, f"{name}/7"), 404)["message"]
    move = client.request("PUT", f"/registry/{name}/aliases/production", json={"version": 7})
    assert "versions: 1, 2" in error(move, 404)["message"]
    assert (
        "aliases: candidate -> 2, production -> 1"
        in error(client.request("DELETE", f"/registry/{name}/aliases/staging"), 404)["message"]
    )
    assert error(client.request("DELETE", f"/registry/x{name}"), 404)["code"] == "not_found"
    assert "not found" in error(predict(client, "no-such-name-or-key"), 404)["message"]  # a key, as before


@pytest.mark.parametrize(
    ("body", "field"),
    [({"version": "2"}, "version"), ({}, "version"), ({"version": 2, "why": "x"}, "version"), ([2], "version"),
     ({"version": True}, "version")],
)  # fmt: skip
def test_a_bad_alias_move_is_400_naming_the_field_and_changes_nothing(client, named, body, field):
    name, _ = named
    before = client.get(f"/registry/{name}").json()
    refused = error(client.request("PUT", f"/registry/{name}/aliases/production", json=body), 400)
    assert refused["details"][0]["field"] == field
    assert client.get(f"/registry/{name}").json() == before


def test_bad_names_and_aliases_are_400(client, named):
    name, _ = named
    assert error(client.request("PUT", f"/registry/{name}/aliases/Prod", json={"version": 1}), 400)["details"][0][
        "field"
    ] == "alias"  # fmt: skip
    assert error(client.get("/registry/-bank"), 400)["details"][0]["field"] == "name"
    assert error(client.get("/registry/" + "f" * 32), 400)["code"] == "invalid_request"
    assert error(client.post("/predict/", json={"modelkey": "bank@Prod", "record": RECORD}), 400)["details"][0][
        "field"
    ] == "modelkey"  # fmt: skip


def test_the_policy_route(client, named):
    name, _ = named
    changed = client.request("PUT", f"/registry/{name}/policy", json={"metric": "log_loss", "auto_promote": False})
    assert changed.status_code == 200, changed.text
    assert changed.json()["policy"] == {"metric": "log_loss", "min_delta": 0.0, "auto_promote": False}
    for body, field in [({"metric": "rmse"}, "metric"), ({"min_delta": -0.1}, "min_delta"),
                        ({"auto_promote": 1}, "auto_promote"), ({"every": 3}, "every")]:  # fmt: skip
        refused = error(client.request("PUT", f"/registry/{name}/policy", json=body), 400)
        assert refused["details"][0]["field"] == field and field in refused["message"]
    assert client.get(f"/registry/{name}").json()["policy"]["metric"] == "log_loss"


def test_deleting_a_model_an_alias_points_to_is_409_naming_the_alias(client, named):
    name, keys = named
    refused = error(client.request("DELETE", f"/models/{keys[0]}"), 409)
    assert refused["code"] == "conflict" and f"{name}@production" in refused["message"]
    assert client.get(f"/models/{keys[0]}").status_code == 200
    assert client.request("DELETE", f"/registry/{name}/aliases/candidate").status_code == 204
    assert client.request("DELETE", f"/models/{keys[1]}").status_code == 204
    assert [v["version"] for v in client.get(f"/registry/{name}").json()["versions"]] == [1]


def test_deleting_a_name_keeps_its_models(client, named):
    name, keys = named
    assert client.request("DELETE", f"/registry/{name}").status_code == 204
    assert client.get(f"/registry/{name}").status_code == 404
    assert client.get(f"/models/{keys[0]}").status_code == 200
    assert predict(client, keys[0]).json()["label"] == "no"
    assert client.request("DELETE", f"/models/{keys[0]}").status_code == 204  # no alias holds it now


def test_a_model_is_shown_by_reference(client, named):
    name, keys = named
    for ref, version in [(name, 1), (f"{name}@candidate", 2), (f"{name}/2", 2)]:
        shown = client.get(f"/models/{ref}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["model_key"] == keys[version - 1]
        assert shown.json()["model"] == {"name": name, "version": version, "model_key": keys[version - 1]}
    assert "model" not in client.get(f"/models/{keys[0]}").json()
    assert client.get(f"/models/{name}/9").status_code == 404


def infer_body():
    return {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [0.4]}]}


def test_v2_by_name_and_by_version(client, named):
    name, keys = named
    metadata = client.get(f"/v2/models/{name}").json()
    assert metadata["name"] == name and metadata["versions"] == ["1", "2"]
    assert metadata["model"]["version"] == 1
    version = client.get(f"/v2/models/{name}/versions/2").json()
    assert version["model"] == {"name": name, "version": 2, "model_key": keys[1]}
    assert client.get(f"/v2/models/{name}/versions/2/ready").json()["ready"] is True
    assert client.get(f"/v2/models/{name}/ready").json()["ready"] is True
    answer = client.post(f"/v2/models/{name}/infer", json=infer_body()).json()
    assert answer["model_name"] == name and answer["model_version"] == "1"
    labels = {o["name"]: o["data"] for o in answer["outputs"]}["label"]
    assert labels == ["no"]
    answer = client.post(f"/v2/models/{name}/versions/2/infer", json=infer_body()).json()
    assert answer["model_version"] == "2" and {o["name"]: o["data"] for o in answer["outputs"]}["label"] == ["yes"]
    assert answer["model"]["model_key"] == keys[1]
    missing = client.get(f"/v2/models/{name}/versions/9")
    assert missing.status_code == 404 and "versions: 1, 2" in missing.json()["error"]
    assert client.post(f"/v2/models/{name}/versions/x/infer", json=infer_body()).status_code == 404
    assert client.get(f"/v2/models/{name}/versions/{'9' * 5000}").status_code == 404  # no int() of 5,000 digits
    assert client.get("/models/" + "k" * 10_000).status_code == 404


def test_the_stores_own_entries_are_no_models(client, named):
    name, keys = named
    for reserved in ["__versions__", "__registry_names__", f"__registry__:{name}", "__registry_keys__"]:
        assert client.get(f"/models/{reserved}").status_code == 404
        assert client.request("DELETE", f"/models/{reserved}").status_code == 404
    assert client.get(f"/registry/{name}").json()["aliases"] == {"production": 1, "candidate": 2}
    assert predict(client, keys[0]).status_code == 200
    by_key = client.post(f"/v2/models/{keys[0]}/infer", json=infer_body()).json()
    assert by_key["model_name"] == keys[0] and by_key["model_version"] == "1" and "model" not in by_key


def test_a_training_job_with_a_bad_model_name_is_400_naming_the_field(client):
    for bad in ["-x", "f" * 32, "a" * 65, 3]:
        refused = error(client.post("/train/", json={"name": "LogisticRegressionWrapper", "model": bad}), 400)
        assert refused["details"][0]["field"] == "model", bad


def test_the_openapi_document_has_the_registry(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/registry/{name}/aliases/{alias}"]) == {"parameters", "put", "delete"}
    assert "409" in paths["/models/{key}"]["delete"]["responses"]
    assert "/v2/models/{key}/versions/{version}/infer" in paths


def test_an_alias_moved_under_load_fails_no_request_and_each_answer_says_its_version(client, named):
    """docs/API.md: "while it moves under load no request fails, and each answer comes whole from
    the old or the new version (its model says which)". Version 1 says no, version 2 yes."""
    name, keys = named
    registry = client.app.extensions["prediction_service"].registry
    answers: list = []
    stop = threading.Event()

    def ask() -> None:
        own = client.app.test_client()
        while not stop.is_set():
            reply = own.post("/predict/", json={"modelkey": name, "record": RECORD})
            answers.append((reply.status_code, reply.get_json()))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for move in range(20):
        registry.move(name, "production", 2 - move % 2)
        seen = len(answers)
        while len(answers) < seen + 4 and all(t.is_alive() for t in threads):  # answers between the moves
            time.sleep(0.001)
    stop.set()
    for thread in threads:
        thread.join()
    assert answers and all(status == 200 for status, _ in answers)
    for _, answer in answers:
        version = answer["model"]["version"]
        assert answer["label"] == ("no" if version == 1 else "yes")
        assert answer["model"]["model_key"] == keys[version - 1]
    assert {answer["model"]["version"] for _, answer in answers} == {1, 2}
