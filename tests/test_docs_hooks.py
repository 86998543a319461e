"""docs/hooks.py: the manual's generated parts. The performance page says only what committed
result files say (a file written here by the test, never a committed fake), and plainly that
there is none when there is none; the configuration page gets the table from defaults.py."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from helpers import docs_hooks
from predictionservice.config import settings_markdown

pytestmark = pytest.mark.unit

RESULT = {
    "benchmark": "bench_predict",
    "started_at": "2026-12-06T09:00:00Z",
    "commit": "0123abc",
    "command": ".venv/bin/python bench/bench_predict.py --quick",
    "options": {"quick": True},
    "machine": {"cpus": 2, "loadavg_at_start": [1.5, 1.2, 1.0], "loadavg_at_end": [1.9, 1.3, 1.1]},
    "figures": {"service_rps": 717.5, "bare_rps": 880.25},
    "ratios": {
        "service/bare": {
            "value": 0.815,
            "of": "service_rps / bare_rps",
            "goal": ">= 0.8",
            "met": True,
            "rounds": [0.79, 0.815, 0.83],
            "min": 0.79,
            "max": 0.83,
        },
        "p99": {"value": 51, "of": "service p99 ms", "goal": "<= 20", "met": False},
    },
    "seconds": 64.2,
}
BASELINE = {"baseline": {"bare_p99_ms": 41}}


def page(src_uri: str) -> SimpleNamespace:
    """What on_page_markdown reads of a page: its file's path in docs/."""
    return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))


def test_a_result_file_becomes_its_table(tmp_path):
    hooks = docs_hooks()
    (tmp_path / "bench_predict.json").write_text(json.dumps(RESULT))
    text = hooks.results_markdown(hooks.load_results(tmp_path))
    assert "## bench_predict" in text and "Reproduce: `.venv/bin/python bench/bench_predict.py --quick`" in text
    assert "2026-12-06T09:00:00Z" in text and "`0123abc`" in text and "2 CPUs" in text and "[1.5, 1.2, 1.0]" in text
    assert "| service/bare | 0.815 | service_rps / bare_rps | >= 0.8 | yes | rounds 0.79 to 0.83 |" in text
    assert "| p99 | 51 | service p99 ms | <= 20 | **no** | one measurement |" in text
    assert "| service_rps | 717.5 |" in text and "| bare_rps | 880.25 |" in text
    assert "baseline" not in text  # this file keeps none apart: no table for it


def test_a_baseline_kept_apart_gets_its_own_table():
    text = docs_hooks().result_markdown(RESULT | BASELINE | {"file": "bench_predict.json"})
    assert "| baseline | value |\n|---|---|\n| bare_p99_ms | 41 |" in text


def test_the_page_quotes_no_figure_but_the_files():
    hooks = docs_hooks()
    text = hooks.results_markdown([RESULT | {"file": "bench_predict.json"}])
    numbers = {float(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text)}
    in_file = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", json.dumps(RESULT))}
    assert numbers <= in_file, numbers - in_file


def test_no_committed_result_is_said_plainly(tmp_path):
    hooks = docs_hooks()
    assert hooks.results_markdown(hooks.load_results(tmp_path)).startswith("**No benchmark result is committed yet**")
    filled = hooks.on_page_markdown("intro\n\n<!-- results -->\n", page("performance.md"))
    assert "<!-- results -->" not in filled


def test_the_configuration_page_gets_the_settings_table():
    hooks = docs_hooks()
    filled = hooks.on_page_markdown("intro\n\n<!-- settings -->\n", page("configuration.md"))
    assert filled == "intro\n\n" + settings_markdown() + "\n"
    assert hooks.on_page_markdown("<!-- settings -->", page("index.md")) == "<!-- settings -->"
