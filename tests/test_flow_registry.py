"""Named models through the running service: a training job whose document names a model becomes
that name's version 1 (production) when it completes, on a real worker with Spark, and the name
serves it. One small training (the xor forest), to keep the system tier short."""

import uuid

from helpers import EXAMPLES, XOR_JOB


def test_a_named_training_job_becomes_version_1_and_serves_under_its_name(service):
    with open(EXAMPLES / "xor.csv", "rb") as body:
        loaded = service.request("PUT", "/datasets/examples/xor", data=body, headers={"Content-Type": "text/csv"})
    assert loaded.status_code == 200, loaded.text
    name = f"xor-{uuid.uuid4().hex[:8]}"
    final, _ = service.train({**XOR_JOB, "model": name})
    assert final["status"] == "COMPLETED", final
    assert final["message"].endswith(f"; version 1 of {name!r}"), final["message"]
    assert final["lineage"]["model"] == name

    entry = service.get(f"/registry/{name}").json()
    assert entry["aliases"] == {"production": 1}
    [version] = entry["versions"]
    assert version["version"] == 1 and version["model_key"] == final["job_id"] == final["model_key"]
    assert version["metrics"] == final["metrics"] and version["decision"] is None
    assert [(h["alias"], h["to"], h["why"]) for h in entry["history"]] == [("production", 1, "first version")]

    record = {"x1": 0.5, "x2": -0.5, "c": "a"}
    answer = service.post("/predict/", json={"modelkey": name, "record": record}).json()
    assert answer["model"] == {"name": name, "version": 1, "model_key": final["job_id"]}
    assert answer["label"] == service.post("/predict/", json={"modelkey": final["job_id"], "record": record}).json()[
        "label"
    ]  # fmt: skip
    assert name in [m["name"] for m in service.get("/registry/").json()["models"]]
