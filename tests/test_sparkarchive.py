"""The tests' JVMs map the classes make test dumped (localservers/sparkarchive.py)."""

import os

import pytest

from localservers import sparkarchive

ARCHIVE = sparkarchive.ARCHIVE


def test_the_options_name_the_archive_only_when_it_exists(tmp_path):
    archive = tmp_path / "classes.jsa"
    assert sparkarchive.jvm_options(archive) == sparkarchive.TEST_JVM_OPTIONS
    archive.write_bytes(b"")
    options = sparkarchive.jvm_options(archive).split()
    assert options[:2] == sparkarchive.TEST_JVM_OPTIONS.split()
    assert f"-XX:SharedArchiveFile={archive}" in options and sparkarchive.QUIET_CDS in options


def test_the_jobs_that_fill_the_archive_cover_every_algorithm():
    names = {document["name"] for document, _ in sparkarchive._jobs()}
    assert names == {"RandomForestWrapper", "LinearRegressionWrapper", "LogisticRegressionWrapper"}
    assert all(data.is_file() and document["numFolds"] == 2 for document, data in sparkarchive._jobs())


def test_the_sessions_jvm_maps_the_archive(spark):
    """A JVM that could not use the archive (another JDK, other jars) says nothing and unmaps it:
    only its memory map tells. Under make test, which builds the archive, it must be there."""
    if not ARCHIVE.is_file():
        assert "MAKELEVEL" not in os.environ, f"make test built no {ARCHIVE}: see {ARCHIVE.with_suffix('.log')}"
        pytest.skip(f"no {ARCHIVE} (make test builds it)")
    assert f"-XX:SharedArchiveFile={ARCHIVE}" in os.environ["JDK_JAVA_OPTIONS"]
    pid = spark.sparkContext._gateway.proc.pid
    assert sparkarchive.mapped(pid, ARCHIVE), f"JVM {pid} did not map {ARCHIVE}"


def test_the_check_refuses_a_damaged_archive(tmp_path):
    """A dump cut short (a full disk) kills every JVM given it: the build checks before it keeps one."""
    if not ARCHIVE.is_file():
        pytest.skip(f"no {ARCHIVE} to damage (make test builds it)")
    damaged = tmp_path / "damaged.jsa"
    with ARCHIVE.open("rb") as whole:
        damaged.write_bytes(whole.read(ARCHIVE.stat().st_size // 2))
    assert not sparkarchive.usable(damaged)
