"""The named models' pages: the names (/ui/registry) and a name's page (/ui/registry/<name>): its
versions with their metrics and the promotion gate's decisions, its aliases with forms that move
them (what PUT /registry/<name>/aliases/<alias> does, through the same ``services().registry``,
an admin key's), its policy, its schedule and the history of its aliases. What the entry holds is
shown as it is: a decision or a schedule it does not have yet shows as none."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, redirect, render_template, request, url_for

from predictionservice.registry import PRODUCTION, VERSION
from web.pages.common import page_blueprint
from web.services import services

bp = page_blueprint("registry_pages", __name__)

_VERSION = re.compile(VERSION)


@bp.get("/ui/registry")
def registry_page() -> str:
    return render_template("ui/registry.html", names=services().registry.listing())


@bp.get("/ui/registry/<name>")
def name_page(name: str) -> str:
    entry = services().registry.show(name)
    pointing: dict[int, list[str]] = {}
    for alias, version in sorted(entry["aliases"].items()):
        pointing.setdefault(version, []).append(alias)
    versions = [
        {**v, "decided": decided(v.get("decision")), "triggered": triggered(v.get("trigger"))}
        for v in reversed(entry["versions"])
    ]  # newest first
    return render_template(
        "ui/name.html", entry=entry, versions=versions, pointing=pointing, production=PRODUCTION,
        schedule=shown_fields(entry.get("schedule")),
    )  # fmt: skip


@bp.post("/ui/registry/<name>/aliases")
def move_alias(name: str) -> Response:
    """The form's alias moved to the form's version, as PUT /registry/<name>/aliases/<alias> moves
    it (a bad alias or version is the API's 400 or 404, shown as a page)."""
    version: Any = request.form.get("version", "")
    if _VERSION.fullmatch(version):
        version = int(version)
    services().registry.move(name, request.form.get("alias", ""), version)
    return redirect(url_for("registry_pages.name_page", name=name), 303)


def decided(decision: Any) -> tuple[str, list[tuple[str, Any]]] | None:
    """A version's decision as the page shows it: its outcome (promoted, kept) and its other
    fields (flattened), in the order stored."""
    if not decision:
        return None
    if not isinstance(decision, dict):
        return str(decision), []
    return str(decision.get("decision", "")), flattened({k: v for k, v in decision.items() if k != "decision"})


def flattened(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """A document's fields in the order stored, a nested one's as "field key" (a decision's
    figures, a schedule's last check)."""
    fields: list[tuple[str, Any]] = []
    for field, value in document.items():
        if isinstance(value, dict):
            fields += [(f"{field} {inner}", v) for inner, v in value.items()]
        else:
            fields.append((field, value))
    return fields


def triggered(trigger: Any) -> str | None:
    """What retrained a version, in words: the drift a schedule on drift saw."""
    if not isinstance(trigger, dict):
        return None
    drifted = ", ".join(trigger.get("drifted") or []) or "none"
    score = "; the score drifted" if trigger.get("score_drifted") else ""
    return (
        f"retrained on drift of version {trigger.get('version')}: drifted features {drifted}{score} "
        f"({trigger.get('count')} predictions, {trigger.get('since')} to {trigger.get('until')})"
    )


def shown_fields(document: Any) -> list[tuple[str, Any]] | None:
    """A document the page shows field by field (a schedule, whatever fields it has); None: none."""
    if not document:
        return None
    if not isinstance(document, dict):
        return [("", document)]
    return flattened(document)
