"""A named model's monitoring page (docs/API.md, "Quality and drift"): the report GET
/registry/<name>/monitor answers (the same core call), drawn: quality on the labelled
predictions, then per feature its training and live distributions side by side, drifted ones
first, and the score's."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from web.charts import Chart, compared
from web.pages.common import page_blueprint
from web.services import services

bp = page_blueprint("monitor_pages", __name__)


@bp.get("/ui/registry/<name>/monitor")
def monitor_page(name: str) -> str:
    report = services().monitor.run(name, request.args.get("since"), request.args.get("version"))
    features = report["drift"]["features"]
    order = sorted(features, key=lambda k: (not features[k]["drifted"], -(features[k]["psi"] or 0.0), k))
    charts = [(key, features[key], chart_of(key, features[key])) for key in order]
    score = report["drift"]["score"]
    score_chart = chart_of("score", score) if score else None
    return render_template("ui/monitor.html", report=report, charts=charts, score=score, score_chart=score_chart)


def chart_of(key: str, found: dict[str, Any]) -> Chart:
    """A feature's (or the score's) histograms; the template puts its verdict, drifted or not, beside
    the title in the page's warning or neutral style."""
    figures = "" if found["psi"] is None else f"; PSI {found['psi']:.3f}, p {found['p_value']:.3g}"
    note = f"training vs live share of each bin{figures}"
    return compared(key, found["bins"], found["training"], found["live"], note)
