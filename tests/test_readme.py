"""The README is the front page: short (at most 12 KB), a map of every page of the manual, and a
quick start whose blocks, extracted from the README itself, run against a real service (worker
and web server), with the service's address in place of localhost:5000, so they can never rot.
The manual's longer examples are tests/test_docs.py's."""

from __future__ import annotations

import re

from helpers import ROOT, fenced_blocks, manual_pages, run_shell_examples

README = ROOT / "README.md"


def quick_start_blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block of the Quick start section, in order."""
    section = README.read_text().split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return fenced_blocks(section)


def test_the_readme_is_a_front_page():
    text = README.read_text()
    assert len(text.encode()) <= 12_000, len(text.encode())
    assert [language for language, _ in quick_start_blocks()] == ["sh", "sh", "sh"]  # train, follow, predict
    assert "../shared" not in text and "[`docs/API.md`](docs/API.md)" in text


def test_the_readme_maps_every_page_of_the_manual():
    pages = set(manual_pages()) - {"index.md"}
    assert {page for page in pages if f"(docs/{page})" not in README.read_text()} == set()


def test_the_quick_start_runs_as_written(service, bank_collection):
    out = run_shell_examples(quick_start_blocks(), service.url)
    assert '"status":"ok"' in out and "training job " in out
    assert "COMPLETED model " in out and "trained: held-out AUC" in out
    assert re.search(r'"prediction":0,"label":"no","probability":0\.12\d*', out), out[-2000:]
