"""The README is the front page: short (at most 12 KB), a map of every page of the manual, and a
quick start whose blocks, extracted from the README itself, are blocks of the manual's Getting
started, which tests/test_docs.py runs against a real service (worker and web server), with the
service's address in place of localhost:5000, so they can never rot."""

from __future__ import annotations

from helpers import ROOT, fenced_blocks, manual_pages
from test_docs import example_blocks as getting_started_blocks

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


def test_the_quick_start_runs_as_written():
    """Each quick-start block is, character for character, one of the shell blocks of Getting
    started, in the same order, which tests/test_docs.py runs against a real service and whose
    answers it checks (the health, the job id, COMPLETED, the record's 0.12): the README's
    commands run as written there, without training the bank model a second time."""
    started = [code for language, code in getting_started_blocks() if language == "sh"]
    positions = [started.index(code) if code in started else -1 for _, code in quick_start_blocks()]
    assert -1 not in positions and positions == sorted(positions), positions
