"""docs/hooks.py: the manual's generated parts; the configuration page gets the table from
defaults.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from helpers import docs_hooks
from predictionservice.config import settings_markdown

pytestmark = pytest.mark.unit


def page(src_uri: str) -> SimpleNamespace:
    """What on_page_markdown reads of a page: its file's path in docs/."""
    return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))


def test_the_configuration_page_gets_the_settings_table():
    hooks = docs_hooks()
    filled = hooks.on_page_markdown("intro\n\n<!-- settings -->\n", page("configuration.md"))
    assert filled == "intro\n\n" + settings_markdown() + "\n"
    assert hooks.on_page_markdown("<!-- settings -->", page("index.md")) == "<!-- settings -->"
