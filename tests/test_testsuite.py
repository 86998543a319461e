"""The test suite's own shape: every tests/test_X.py is named after what it tests, so a maintainer
finds a module's tests by its name and a flow's by the flow (the convention is tests/conftest.py's
docstring):

* ``test_<module>.py`` (or ``test_<package>_<module>.py``, ``test_<package>.py``), the tests of
  one module of the repository; ``test_<module>_<aspect>.py`` one aspect of it that wants a file
  of its own (``test_worker_shutdown.py``); a top-level folder or file counts too
  (``test_deploy.py``, ``test_readme.py``);
* ``test_flow_<flow>.py``, a flow through the running service, named after the flow;
* ``test_hostile_<surface>.py``, hostile input against one surface of the whole service;
* and the short list below of files that test no one module.

It also holds the order the files run in (tests/helpers.py, ``heaviest_first``): heaviest first by
the seconds a recorded run took (tests/filetimes.json), so two streams end together.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FILE_TIMES, ROOT, TIER_SECONDS, heaviest_first, recorded_file_times

FLOWS = ("flow_", "hostile_")
EXCEPTIONS = {
    "layout": "the code's shape across every module (imports, function length)",
    "testsuite": "this file: the suite's own shape",
}
PACKAGES = ("predictionservice", "web", "localservers", "predictionclient")


def targets(root: Path) -> set[str]:
    """What a test file may be named after: every module of the service (top level and its
    packages, 'web_meta' for web/meta.py), every package, and every top-level folder or file."""
    names = {path.stem for path in root.iterdir() if not path.name.startswith(".")}
    names |= {name.lower() for name in names}
    for package in PACKAGES:
        for module in (root / package).glob("*.py"):
            if module.stem != "__init__":
                names |= {module.stem, f"{package}_{module.stem}"}
        for sub in (root / package).glob("*/__init__.py"):  # a package's own packages (web/pages)
            names |= {sub.parent.name, f"{package}_{sub.parent.name}"}
    return names - {"tests", "__pycache__"}


def misnamed(stem: str, known: set[str]) -> bool:
    """Whether tests/<stem>.py breaks the naming rule."""
    name = stem.removeprefix("test_")
    if name.startswith(FLOWS) or name in EXCEPTIONS:
        return False
    return not any(name == target or name.startswith(target + "_") for target in known)


def test_every_test_file_is_named_after_a_module_or_a_flow():
    known = targets(ROOT)
    wrong = [path.name for path in sorted((ROOT / "tests").glob("test_*.py")) if misnamed(path.stem, known)]
    assert not wrong, (
        f"{wrong}: name a test file after the module it tests (test_<module>.py, test_<package>_<module>.py, "
        "test_<module>_<aspect>.py) or, for a flow through the running service, test_flow_<flow>.py "
        "(tests/conftest.py)"
    )


def test_the_exceptions_are_files_that_exist():
    for name in EXCEPTIONS:
        assert (ROOT / "tests" / f"test_{name}.py").exists(), f"EXCEPTIONS names test_{name}.py, which is gone"


@pytest.mark.parametrize(
    ("stem", "wrong"),
    [
        ("test_web_meta", False),
        ("test_meta", False),
        ("test_worker_shutdown", False),
        ("test_flow_training", False),
        ("test_deploy", False),
        ("test_readme", False),
        ("test_layout", False),
        ("test_answer_size", True),
        ("test_auth", True),
        ("test_scoring", True),
        ("test_workers", True),  # not 'worker': a whole name, or one and an aspect
    ],
)
def test_the_rule_tells_a_module_s_name_from_another(stem, wrong):
    assert misnamed(stem, targets(ROOT)) is wrong


class Item:
    """What heaviest_first reads of a pytest item: its file, and its tier (by the tier function)."""

    def __init__(self, file: str, name: str, tier: str = "unit"):
        self.fspath, self.name, self.tier = f"/repo/tests/{file}", name, tier


def names(items: list[Item]) -> list[str]:
    return [f"{Path(item.fspath).name}::{item.name}" for item in items]


def test_files_run_heaviest_first_each_file_whole_and_in_its_own_order():
    items = [
        Item("test_a.py", "1"), Item("test_b.py", "1"), Item("test_a.py", "2"),
        Item("test_c.py", "1"), Item("test_b.py", "2"), Item("test_d.py", "1"),
    ]  # fmt: skip
    times = {"test_a.py": 3.0, "test_b.py": 40.0, "test_c.py": 3.0, "test_d.py": 0.5}
    ordered = heaviest_first(items, times, lambda item: item.tier)
    assert names(ordered) == [
        "test_b.py::1", "test_b.py::2", "test_a.py::1", "test_a.py::2", "test_c.py::1", "test_d.py::1",
    ]  # fmt: skip


def test_a_file_the_recording_does_not_know_weighs_its_heaviest_tier():
    items = [
        Item("test_new_unit.py", "1"),
        Item("test_new_system.py", "1"), Item("test_new_system.py", "2", tier="system"),
        Item("test_known.py", "1"), Item("test_new_app.py", "1", tier="app"),
    ]  # fmt: skip
    times = {"test_known.py": TIER_SECONDS["app"] + 1}
    ordered = heaviest_first(items, times, lambda item: item.tier)
    assert [Path(item.fspath).name for item in ordered] == [
        "test_new_system.py", "test_new_system.py", "test_known.py", "test_new_app.py", "test_new_unit.py",
    ]  # fmt: skip


def test_the_recorded_times_name_only_test_files_that_exist():
    times = recorded_file_times()
    assert times, f"{FILE_TIMES} is missing or empty: run make test-times and commit it"
    gone = sorted(name for name in times if not (ROOT / "tests" / name).exists())
    assert not gone, f"{gone}: renamed or removed test files in {FILE_TIMES.name}; run make test-times"
    assert all(seconds >= 0 for seconds in times.values())


def test_a_run_records_the_seconds_of_each_file_it_ran(tmp_path):
    out = tmp_path / "times.json"
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "tests/test_readable.py", "--record-file-times", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    recorded = json.loads(out.read_text())
    assert list(recorded) == ["test_readable.py"] and recorded["test_readable.py"] >= 0
