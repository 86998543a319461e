"""Reading the service configuration: built-in defaults < parameters.json < environment.

``python -m predictionservice.config`` prints the effective configuration; ``... --markdown`` prints
the settings table of the manual's configuration page (docs/hooks.py puts it there).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from predictionservice.defaults import DEFAULT_PARAMETERS_FILE, PARAMETERS_FILE_ENV, SETTINGS, defaults

PROJECT_DIR = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class ConfigError(ValueError):
    """The configuration cannot be used; raised at start-up, never per request."""


def _coerce(key: str, value: Any, source: str) -> Any:
    default = SETTINGS[key].default
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        if isinstance(default, list):
            if isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            raise ValueError(value)
        if isinstance(value, str):
            return value
        raise ValueError(value)
    except (ValueError, TypeError):
        kind = type(default).__name__
        raise ConfigError(f"{source}: setting '{key}' must be a {kind}, got {value!r}") from None


def parameters_path(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The parameters.json to read: the argument, else $PARAMETERS_FILE, else the project's."""
    environ = os.environ if environ is None else environ
    chosen = Path(path or environ.get(PARAMETERS_FILE_ENV) or DEFAULT_PARAMETERS_FILE)
    if not chosen.is_absolute() and not chosen.exists():
        chosen = work_dir() / chosen
    return chosen


def work_dir() -> Path:
    """The folder relative paths are read against (the parameters file, ``var_dir``): the project
    folder of a checkout, wherever the command runs from; installed (a wheel: the modules' folder
    is site-packages, with no pyproject.toml), the working directory."""
    return PROJECT_DIR if (PROJECT_DIR / "pyproject.toml").exists() else Path.cwd()


def load_parameters(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Effective settings. A missing file means built-in defaults; a wrong key or type is fatal."""
    environ = os.environ if environ is None else environ
    params = defaults()
    file = parameters_path(path, environ)
    if file.exists():
        try:
            loaded = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{file}: not readable JSON ({exc})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: must hold a JSON object")
        unknown = sorted(set(loaded) - set(SETTINGS) - {"_comment"})
        if unknown:
            raise ConfigError(f"{file}: unknown setting(s) {', '.join(unknown)}")
        for key, value in loaded.items():
            if key != "_comment":
                params[key] = _coerce(key, value, str(file))
    elif path is not None or environ.get(PARAMETERS_FILE_ENV):
        raise ConfigError(f"{file}: no such file")
    for key, setting in SETTINGS.items():
        if setting.env in environ:
            params[key] = _coerce(key, environ[setting.env], f"${setting.env}")
    for key, value in (overrides or {}).items():
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting '{key}'")
        params[key] = _coerce(key, value, "override")
    return params


def pick(kind: type[T], params: Mapping[str, Any]) -> T:
    """The few settings a library object uses, out of the whole settings dict: ``kind`` is a
    dataclass whose fields are named after settings (``SparkSettings``, ``MongoTargets``). The
    settings dict stops here: the process that loaded it (app factory, worker, a CLI) picks, and
    the library takes only what it was given."""
    return kind(**{field.name: params[field.name] for field in fields(kind) if field.name in params})  # type: ignore[call-arg]


def settings_markdown() -> str:
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    for key, s in SETTINGS.items():
        default = ",".join(s.default) if isinstance(s.default, list) else s.default
        rows.append(f"| `{key}` | `{s.env}` | `{json.dumps(default) if default == '' else default}` | {s.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if "--markdown" in sys.argv[1:]:
        print(settings_markdown())
    else:
        args = [a for a in sys.argv[1:] if not a.startswith("-")]
        print(json.dumps(load_parameters(args[0] if args else None), indent=2))
