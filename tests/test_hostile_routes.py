"""Hostile routes: wrong methods (405 with Allow), unknown routes (404), query strings with
garbage, and HEAD on every GET route.

The battery and its checks are helpers.hostile_battery's.
"""

from __future__ import annotations

from helpers import (
    CSV_TYPE,
    JOB_ID_404,
    JSON_TYPE,
    MODEL,
    Case,
    hostile_battery,
    job,
    predict,
)

CASES = [
    # --- wrong methods (405 with Allow) and unknown routes (404) --------------------------------
    Case("method-get-train", "GET", "/train/", 405, "method_not_allowed"),
    Case("method-get-train-no-slash", "GET", "/train", 405, "method_not_allowed"),
    Case("method-delete-health", "DELETE", "/health", 405, "method_not_allowed"),
    Case("method-put-predict", "PUT", "/predict/", 405, "method_not_allowed", predict(), JSON_TYPE),
    Case("method-get-predict-no-slash", "GET", "/predict", 405, "method_not_allowed"),
    Case("method-delete-predictall", "DELETE", "/predictall/", 405, "method_not_allowed"),
    Case("method-post-models", "POST", "/models/", 405, "method_not_allowed", {}, JSON_TYPE),
    Case("method-post-models-no-slash", "POST", "/models", 405, "method_not_allowed", {}, JSON_TYPE),
    Case("method-patch-model", "PATCH", f"/models/{MODEL}", 405, "method_not_allowed", {"coefficients": []}, JSON_TYPE),
    Case("method-put-model", "PUT", f"/models/{MODEL}", 405, "method_not_allowed", {"coefficients": []}, JSON_TYPE),
    Case("method-post-jobs", "POST", f"/jobs/{MODEL}", 405, "method_not_allowed", {}, JSON_TYPE),
    Case("method-delete-training-status", "DELETE", f"/training/status/{MODEL}", 405, "method_not_allowed"),
    Case("method-post-dataset", "POST", "/datasets/e2e/bank", 405, "method_not_allowed", b"a\n1\n", CSV_TYPE),
    Case("method-delete-dataset-schema", "DELETE", "/datasets/e2e/bank/schema", 405, "method_not_allowed"),
    Case("method-post-openapi", "POST", "/openapi.json", 405, "method_not_allowed", {}, JSON_TYPE),
    Case("method-trace-predict", "TRACE", "/predict/", 405, "method_not_allowed"),
    Case("method-invented", "BREW", "/health", 405, "method_not_allowed"),
    Case("route-unknown", "GET", "/admin", 404, "not_found"),
    Case("route-dataset-without-collection", "GET", "/datasets/e2e", 404, "not_found"),
    Case("route-model-subpath", "GET", f"/models/{MODEL}/coefficients", 404, "not_found"),
    Case("route-health-trailing", "GET", "/health/x", 404, "not_found"),
    Case("route-train-subpath", "POST", "/train/extra", 404, "not_found", job(), JSON_TYPE),
    Case("route-percent", "GET", "/%", 404, "not_found"),
    Case("route-dotdot", "GET", "/models/../../etc/passwd", 404, "not_found"),
    Case("route-head-unknown-job", "HEAD", "/jobs/" + JOB_ID_404, 404),
    # --- query strings with garbage --------------------------------------------------------------
    Case(
        "query-garbage-schema-label-missing",
        "GET",
        "/datasets/e2e/bank/schema?lab%00el=y&&=&%zz",
        400,
        "invalid_request",
    ),
    Case("query-garbage-unknown-job", "GET", f"/jobs/{JOB_ID_404}?history=%ff%fe&history=1", 404, "not_found"),
    # --- issue 11: job ids that would name other keys, Host headers of other names ---------------
    Case("jobs-history-key", "GET", f"/jobs/{MODEL}:history", 404, "not_found"),
    Case("training-status-history-key", "GET", f"/training/status/{MODEL}:history?history=1", 404, "not_found"),
    Case("predictall-status-history-key", "GET", f"/predictall/status/{JOB_ID_404}:history", 404, "not_found"),
    Case("jobs-uppercase-id", "GET", f"/jobs/{JOB_ID_404.upper()}", 404, "not_found"),
    Case("host-rebound-models", "GET", "/models/", 400, "invalid_host", headers={"Host": "rebind.attacker.example"}),
    Case("host-rebound-health", "GET", "/health", 400, "invalid_host", headers={"Host": "evil.example:5000"}),
    Case("host-rebound-dataset-delete", "DELETE", "/datasets/e2e/bank", 400, "invalid_host", headers={"Host": "a.b"}),
    Case("host-ip-suffix", "GET", "/openapi.json", 400, "invalid_host", headers={"Host": "127.0.0.1.evil.example"}),
]

# HEAD on every GET route, and GETs with query garbage that must be ignored: 200, never a 5xx.
OK_CASES = [
    Case("head-health", "HEAD", "/health", 200),
    Case("head-openapi", "HEAD", "/openapi.json", 200),
    Case("head-models", "HEAD", "/models/", 200),
    Case("head-model", "HEAD", f"/models/{MODEL}", 200),
    Case("head-training-status", "HEAD", f"/training/status/{MODEL}", 200),
    Case("head-jobs", "HEAD", f"/jobs/{MODEL}", 200),
    Case("head-dataset", "HEAD", "/datasets/e2e/bank", 200),
    Case("head-dataset-schema", "HEAD", "/datasets/e2e/bank/schema?label=y", 200),
    Case("query-garbage-models", "GET", "/models/?%ff%00=%zz&&&=;&models[$gt]=", 200),
    Case("query-garbage-health", "GET", "/health?" + "x=1&" * 500, 200),
    Case("query-garbage-dataset", "GET", "/datasets/e2e/bank?limit=-1&fields[$where]=1", 200),
    Case("query-garbage-status", "GET", f"/training/status/{MODEL}?history=%00", 200),
]

(
    test_a_hostile_request_is_refused_with_the_error_shape,
    test_head_and_garbage_queries_on_get_routes_answer_200,
    test_the_battery_has_enough_cases,
    test_after_the_battery_nothing_changed,
) = hostile_battery(CASES, 35, tuple(OK_CASES))
