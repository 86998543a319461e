"""The shape of the code, held by tests: web and worker apart, a library package that imports
neither the chapter's files nor a web or queue framework, pyspark only where Spark runs, and
functions short enough to read at once."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from helpers import ROOT

ALGORITHMS = {"LogisticRegressionWrapper", "LinearRegressionWrapper", "RandomForestWrapper"}
CHAPTER = {"modelserver", "modelservice", "modelfactory", "dataparser", "messagehandler", *ALGORITHMS}
# Where pyspark may be imported: the library's Spark modules and the algorithms' worker side.
SPARK_MODULES = {
    "predictionservice/crossvalidation.py",
    "predictionservice/scorecolumns.py",
    "predictionservice/sparkfeatures.py",
    "predictionservice/sparkforest.py",
    "predictionservice/sparkgate.py",
    "predictionservice/sparkmongo.py",
    "predictionservice/sparkprofile.py",
    "predictionservice/sparkprogress.py",
    "predictionservice/sparksession.py",
    "localservers/sparkarchive.py",
}
SERVICE_DIRS = ("predictionservice", "web", "web/pages", "localservers", "predictionclient")


def service_files() -> list:
    files = [p for p in ROOT.glob("*.py")]
    for folder in SERVICE_DIRS:
        files += sorted((ROOT / folder).glob("*.py"))
    return files


def imported(path) -> set[str]:
    """Every module a file imports, anywhere in it (top level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_pyspark_is_imported_only_by_the_spark_modules_and_the_algorithms():
    importers = {
        str(p.relative_to(ROOT)) for p in service_files() if any(n.split(".")[0] == "pyspark" for n in imported(p))
    }
    assert importers <= SPARK_MODULES | {f"{name}.py" for name in ALGORITHMS}, importers
    assert SPARK_MODULES <= importers


def test_no_service_file_imports_the_bench_extras():
    """requirements-bench.txt's packages (shap: numba, llvmlite; msgspec) are the benchmarks' and
    the skippable tests', never the service's: neither the web process nor a worker imports them."""
    extras = {line.split("==")[0] for line in (ROOT / "requirements-bench.txt").read_text().split() if "==" in line}
    assert extras == {"shap", "msgspec"}
    importers = {str(p.relative_to(ROOT)) for p in service_files() if {n.split(".")[0] for n in imported(p)} & extras}
    assert not importers, importers


def test_the_library_imports_no_chapter_file_and_no_web_or_queue_framework():
    for path in sorted((ROOT / "predictionservice").glob("*.py")):
        tops = {name.split(".")[0] for name in imported(path)}
        assert not tops & CHAPTER, f"{path.name} imports {tops & CHAPTER}"
        assert not tops & {"flask", "werkzeug", "celery", "cherrypy", "web", "worker", "celeryapp"}, path.name


def test_the_web_side_imports_no_worker_and_the_worker_no_web():
    for path in [*sorted((ROOT / "web").rglob("*.py")), ROOT / "modelservice.py"]:
        tops = {name.split(".")[0] for name in imported(path)}
        assert "pyspark" not in tops and "cherrypy" not in tops, path.name
    assert not {n.split(".")[0] for n in imported(ROOT / "worker.py")} & {"web", "flask", "modelservice"}


def blueprint_modules() -> set[str]:
    """The modules under web/ that define a Blueprint (a module-level one, however made)."""
    import importlib

    from flask import Blueprint

    names = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "web").rglob("*.py")}
    names = {name.removesuffix(".__init__") for name in names}
    return {
        name
        for name in names  # type(), not isinstance(): a module's flask.request is a proxy
        if any(type(v) is Blueprint and v.import_name == name for v in vars(importlib.import_module(name)).values())
    }


def test_no_blueprint_module_imports_another():
    """Pages, V2 and the routes only parse, call the core and render: what two of them share is
    in the core (predictionservice) or in a helper module of web/ that is no blueprint."""
    blueprints = blueprint_modules()
    assert {"web.jobs", "web.prediction", "web.v2", "web.pages.models", "web.pages.home"} <= blueprints
    assert not blueprints & {
        "web.jsonio",
        "web.errors",
        "web.services",
        "web.charts",
        "web.reports",
        "web.pages",
        "web.readable",
        "web.downloads",
    }
    found = set()
    for name in sorted(blueprints):
        path = ROOT / (name.replace(".", "/") + ".py")
        found |= {(name, other) for other in imported(path) if other in blueprints - {name}}
        found |= {
            (name, f"{other}.{alias}") for other, alias in _from_imports(path) if f"{other}.{alias}" in blueprints
        }
    assert found == set()


def _from_imports(path) -> set[tuple[str, str]]:
    """(package, name) of each 'from package import name': a name that is a module counts too."""
    return {
        (node.module, alias.name)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        for alias in node.names
    }


def test_no_view_or_hook_is_a_coroutine():
    """modelservice.ServiceApp calls every view and hook as it is (Flask's ensure_sync, which asks
    of each whether it is a coroutine, is skipped): so none may be one."""
    coroutines = [
        f"{path.relative_to(ROOT)}:{node.name}"
        for path in service_files()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.AsyncFunctionDef)
    ]
    assert coroutines == []


def test_modelservice_is_only_the_factory():
    assert len((ROOT / "modelservice.py").read_text().splitlines()) < 200


@pytest.mark.parametrize("path", service_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_of_the_service_is_over_80_lines(path):
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80
    ]
    assert long == []


# A parameter by these names is the whole settings dict (load_parameters' result).
SETTINGS_NAMES = {"params", "settings"}
# config.pick is where the dict is turned into what a library object takes.
SETTINGS_TAKERS = {"predictionservice/config.py:pick"}


def test_no_library_function_takes_the_settings_dict_whole():
    """Issue 21: a library function takes the few values it uses as arguments (or a small frozen
    object built from them once, such as MongoTargets or SparkSettings), never the whole settings:
    what it reads is then in its signature, and a scheduler or a test can call it without a
    configuration."""
    takers = set()
    for path in sorted((ROOT / "predictionservice").glob("*.py")):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
                if names & SETTINGS_NAMES:
                    takers.add(f"{where}:{node.name}")
    assert takers == SETTINGS_TAKERS, sorted(takers ^ SETTINGS_TAKERS)  # pick: the one place that reads it whole


def test_importing_the_app_module_reads_no_configuration_and_builds_no_celery_app(tmp_path):
    """A parameters file that does not exist is an error when read: importing must not read it."""
    probe = (
        "import sys, celery._state as s; import modelservice; "
        "assert 'worker' not in sys.modules and 'pyspark' not in sys.modules; "
        "print(len([a for a in s._apps]))"
    )
    env = {"PATH": "/usr/bin:/bin", "PARAMETERS_FILE": str(tmp_path / "missing.json")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_the_chapter_command_finds_the_worker_app(tmp_path):
    """`celery -A modelservice.celery worker` resolves the worker's app, tasks registered."""
    probe = "import modelservice; print(sorted(t for t in modelservice.celery.tasks if t.startswith('prediction')))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert out.returncode == 0, out.stderr
    tasks = ["compare", "predict_all", "retrain", "train"]
    assert out.stdout.strip() == str([f"prediction_service.{task}" for task in tasks])


def test_the_web_app_builds_one_celery_app(base_params):
    import celery._state

    from modelservice import modelservice

    before = len(celery._state._apps)
    modelservice(base_params)
    assert len(celery._state._apps) == before + 1


def test_the_executors_get_the_library_as_one_zip(tmp_path):
    import zipfile

    from predictionservice.sparksession import package_zip

    archive = package_zip(tmp_path)
    names = set(zipfile.ZipFile(archive).namelist())
    assert {
        "predictionservice/__init__.py",
        "predictionservice/sparkmongo.py",
        "predictionservice/tempcollections.py",
    } <= names
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import predictionservice.tempcollections as t; print(t.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(archive)], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and str(archive) in out.stdout, out.stderr
