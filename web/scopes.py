"""The one place each route declares the scope a key needs for it (docs/API.md, "API keys with
scopes"): ``ROUTE_SCOPES``, keyed by the Flask endpoint of the view (a view answering several
methods maps each method). ``OPEN`` routes need no key at all.

The guard reads it for every request (web/guard.py), and tests/test_scopes.py walks the app's own
url_map: a route added without a line here fails that test, and is meanwhile refused to every key
but an ``admin`` one (closed by default, never open by omission).
"""

from __future__ import annotations

import functools
import re

from flask import Request

OPEN = None  # no key needed (the health probe, the docs page, the sign-in, the pages' files)
ANY = ""  # any valid key: a path no route answers (its 404 or 405 tells nothing to anyone else)
UNDECLARED = "admin"  # what a route missing from the table needs until it is declared

ROUTE_SCOPES: dict[str, str | dict[str, str | None] | None] = {
    # jobs
    "jobs.submit_training": "train",
    "jobs.submit_predictall": "train",
    "jobs.training_status": "read",
    "jobs.predictall_status": "read",
    "jobs.any_job": "read",
    "jobs.list_jobs": "read",
    "jobs.cancel_job": "admin",
    # online prediction
    "prediction.predict": "predict",
    "v2.infer": "predict",
    "v2.server_metadata": "read",
    "v2.live": "read",
    "v2.ready": "read",
    "v2.model_metadata": "read",
    "v2.model_ready": "read",
    "v2.version_metadata": "read",
    "v2.version_ready": "read",
    "v2.version_infer": "predict",
    # the outcome of logged predictions: sent by whoever predicted, it changes only their log
    "feedback.store_feedback": "predict",
    # models
    "models.list_models": "read",
    "models.show_model": "read",
    "models.delete_model": "admin",
    "models.compare_models": "train",  # it queues Spark work, as a training does
    # named models
    "registry.list_names": "read",
    "registry.show_name": "read",
    "registry.delete_name": "admin",
    "registry.move_alias": "admin",
    "registry.delete_alias": "admin",
    "registry.put_policy": "admin",
    "registry.retrain": "train",
    "registry.put_schedule": "admin",
    "registry.show_schedule": "read",
    "registry.delete_schedule": "admin",
    "monitor.monitor": "read",
    "registry.put_traffic": "admin",
    "registry.show_traffic": "read",
    "registry.delete_traffic": "admin",
    # datasets
    "datasets.list_datasets": "read",
    "datasets.describe_dataset": "read",
    "datasets.export_dataset": "read",
    "datasets.dataset_schema": "read",
    "datasets.put_dataset": "train",
    "datasets.delete_dataset": "admin",
    # keys and the audit trail
    "keys.create_key": "admin",
    "keys.list_keys": "admin",
    "keys.revoke_key": "admin",
    "audit.list_audit": "admin",
    # the service
    "meta.health": OPEN,  # details need 'read' (web/meta.py)
    "meta.docs": OPEN,
    "meta.docs_asset": OPEN,
    "meta.openapi": "read",
    "metrics.metrics": "read",
    # the pages
    "ui.root": OPEN,
    "ui.login": OPEN,
    "ui.logout": OPEN,
    "ui.static": OPEN,
    "model_pages.models_page": "read",
    "model_pages.model_page": {"GET": "read", "POST": "predict"},
    "model_pages.compare_page": {"GET": "read", "POST": "train"},
    "model_pages.delete_model": "admin",
    "job_pages.jobs_page": "read",
    "job_pages.job_page": "read",
    "job_pages.job_status": "read",
    "training_pages.train_page": {"GET": "read", "POST": "train"},
    "dataset_pages.datasets_page": "read",
    "dataset_pages.dataset_page": "read",
    "dataset_pages.download_dataset": "read",
    "dataset_pages.upload_dataset": "train",
    "dataset_pages.delete_dataset": "admin",
    "key_pages.keys_page": "admin",
    "key_pages.revoke_key": "admin",
    "registry_pages.registry_page": "read",
    "registry_pages.name_page": "read",
    "registry_pages.move_alias": "admin",
    "monitor_pages.monitor_page": "read",
}
CHANGES = frozenset({"train", "admin"})  # the scopes of changes: what the audit trail records


@functools.cache  # the app's rules are a fixed few, and every request's metrics ask
def route_of(rule: str) -> str:
    """A route as people read it (metrics labels, the audit trail): its variables without their
    converters, /models/<key> for /models/<path:key>."""
    return re.sub(r"<[^<>:]+:(\w+)>", r"<\1>", rule)


def declared(endpoint: str, method: str) -> bool:
    """Whether the table names this endpoint and method (HEAD is GET's)."""
    entry = ROUTE_SCOPES.get(endpoint, UNDECLARED)
    if endpoint not in ROUTE_SCOPES:
        return False
    return not isinstance(entry, dict) or ("GET" if method == "HEAD" else method) in entry


def scope_of(endpoint: str, method: str) -> str | None:
    """The scope a route's method needs: its declaration, else UNDECLARED."""
    entry = ROUTE_SCOPES.get(endpoint, UNDECLARED)
    if isinstance(entry, dict):
        return entry.get("GET" if method == "HEAD" else method, UNDECLARED)
    return entry


def required(request: Request) -> str | None:
    """The scope this request needs: its route's, or ANY when no route answers it."""
    rule = request.url_rule
    if rule is None or rule.endpoint is None:
        return ANY
    return scope_of(rule.endpoint, request.method)
