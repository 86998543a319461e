"""Comparing models on the same rows, end to end: two forests trained on examples/xor.csv, then
POST /models/compare; a worker scores both from their stored forms on the newer one's held-out
rows (Spark, the batch path). The newer one's figures are its own training metrics again (the
same rows, the same model), and the older one is measured on exactly those rows."""

from __future__ import annotations

import pytest

from helpers import XOR_JOB


def test_two_models_are_scored_on_the_newer_ones_held_out_rows(service, xor_model):
    final, _ = service.train({**XOR_JOB, "numTrees": [3], "maxDepth": [2], "description": "a small forest"})
    assert final["status"] == "COMPLETED", final
    newer = final["model_key"]
    answer = service.post("/models/compare", json={"models": [xor_model, newer]})
    assert answer.status_code == 202, answer.text
    done, _ = service.wait_job(answer.json()["job_id"])
    assert done["status"] == "COMPLETED", done
    figures = done["comparison"]
    stored = service.get(f"/models/{newer}").json()
    assert figures["heldout_of"] == newer
    assert figures["rows"] == figures["heldout_rows"] == stored["training"]["holdout_rows"]  # every row scorable
    assert [m["model_key"] for m in figures["models"]] == [xor_model, newer]  # as asked
    older, mine = figures["models"]
    assert mine["metrics"] == pytest.approx(stored["metrics"], abs=1e-9)  # its own rows, its own figures
    assert set(older["metrics"]) == set(mine["metrics"]) == {"accuracy", "auc", "area_under_pr", "log_loss"}
    assert older["unscorable_rows"] == mine["unscorable_rows"] == 0
    assert f"2 models scored on the same {figures['rows']} rows" in done["message"]
