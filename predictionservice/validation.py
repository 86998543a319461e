"""Request bodies: strict JSON parsing and JSON Schema validation.

The schemas here are the single definition of what a job document, a predict body and a
predictall body may hold: requests are validated against them (jsonschema, Draft 2020-12) and the
OpenAPI document is generated from them, so the two cannot drift apart.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

import jsonschema_rs
import numpy as np
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from predictionservice.defaults import MAX_SCHEMA_ERRORS, MAX_SUGGESTED_NAMES
from predictionservice.exceptions import InvalidJSON, InvalidRequest, did_you_mean, shown
from predictionservice.registry import ALIAS, NAME, VERSION

MAX_DEPTH = 64
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
# What a request may name a model by: a model key, or a named model's reference (docs/API.md,
# "Named models": name@alias, name/version; a bare name is a key's form already).
REF_PATTERN = rf"^(?:[A-Za-z0-9_.:-]{{1,128}}|{NAME}(?:@{ALIAS}|/{VERSION}))$"
MODEL_REF = {
    "type": "string",
    "pattern": REF_PATTERN,
    "description": "a model key, or a named model: <name> (its production version), <name>@<alias>, <name>/<version>",
}
# A field name MongoDB stores and Spark selects: no '$' first, no '.', NUL, ',' (the reader's list of
# fields is comma-separated) or backtick (Spark quotes a column name in backticks).
FIELD_KEY = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": r"^[^$.,`\u0000][^.,`\u0000]*$"}
COLLECTION_SPEC = {
    "type": "string",
    "minLength": 3,
    "maxLength": 1024,
    "description": "'db.collection' on the configured MongoDB, or mongodb://host[:port]/db.collection "
    "with a host from the configured allowlist",
}
VALUES = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 100_000,
    "additionalProperties": {"type": "integer", "minimum": 0},
    "description": "category -> one-hot position (0 .. n-1)",
}
FIELD = {
    "type": "object",
    "required": ["key"],
    "properties": {"key": FIELD_KEY, "values": VALUES},
    "additionalProperties": False,
}
FEATURE = {
    "type": "object",
    "required": ["key"],
    "properties": {
        "key": FIELD_KEY,
        "values": VALUES,
        "unknown": {
            "enum": ["error", "ignore"],
            "description": "a category 'values' does not list: 'error' (the default) refuses the record; "
            "'ignore' encodes it as none of them (all zeros) and the answer carries a warning",
        },
    },
    "additionalProperties": False,
}
SCHEMA_BLOCK = {
    "type": "object",
    "required": ["label", "features"],
    "properties": {
        "label": FIELD,
        "features": {"type": "array", "minItems": 1, "maxItems": 10_000, "items": FEATURE},
        "dropped": {
            "type": "array",
            "description": "what schema inference left out and why; ignored by training and scoring",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["field", "reason"],
            },
        },
    },
    "additionalProperties": False,
}


def numbers(minimum: float, maximum: float, kind: str = "number") -> dict[str, Any]:
    """A grid field: a list of numbers (or, with kind "integer", whole numbers) to cross-validate
    over."""
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": 50,
        "items": {"type": kind, "minimum": minimum, "maximum": maximum},
    }


def integers(minimum: int, maximum: int) -> dict[str, Any]:
    return numbers(minimum, maximum, "integer")


# The fields of every job document, whatever its algorithm; each algorithm adds its own
# (Algorithm.job_fields) and a job may hold no others.
JOB_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "pattern": NAME_PATTERN, "description": "an algorithm the server offers"},
    "inputCollection": COLLECTION_SPEC,
    "outputCollection": COLLECTION_SPEC,
    "schema": SCHEMA_BLOCK,
    "numFolds": {"type": "integer", "minimum": 2, "maximum": 20},
    "holdoutFraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    "description": {"type": "string", "maxLength": 2000, "description": "what the model is for, kept with it"},
    "model": {
        "type": "string",
        "pattern": f"^{NAME}$",
        "description": "a model name: when the job completes, its model becomes the name's next version "
        "(1-64 of A-Za-z0-9._-, starting with a letter or digit, not 32 hexadecimal characters)",
    },
    "tags": {
        "type": "array",
        "maxItems": 20,
        "uniqueItems": True,
        "items": {"type": "string", "minLength": 1, "maxLength": 64},
        "description": "labels to find the model by, kept with it",
    },
}
JOB_REQUIRED = ["name", "inputCollection", "schema"]

# Any job document before its algorithm is known: the common fields checked, the rest left to
# the algorithm's own schema (job_schema), which refuses what it does not take.
JOB = {
    "type": "object",
    "title": "Training job document",
    "required": JOB_REQUIRED,
    "properties": JOB_FIELDS,
}


def job_schema(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The job document of one algorithm: the common fields and its own, nothing else."""
    return {
        "type": "object",
        "title": f"Training job document for {name}",
        "required": JOB_REQUIRED,
        "properties": {**JOB_FIELDS, "name": {"const": name}, **fields},
        "additionalProperties": False,
    }


RECORD = {"type": "object", "maxProperties": 10_000, "description": "field -> value, as in the training data"}
ROUTING_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": 256,
    "description": "who the request is for (e.g. a customer's id): a request to a named model whose traffic is "
    "split goes to the same variant for the same key (by a hash of it); without one, at random",
}


def predict_schema(max_records: int) -> dict[str, Any]:
    return {
        "title": "Prediction request",
        "type": "object",
        "required": ["modelkey"],
        "properties": {
            "modelkey": MODEL_REF,
            "schema": SCHEMA_BLOCK,
            "record": RECORD,
            "records": {"type": "array", "minItems": 1, "maxItems": max_records, "items": RECORD},
            "top_probabilities": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100_000,
                "description": "answer only the k most probable classes in 'probabilities' (default: every class)",
            },
            "explain": {
                "type": "boolean",
                "description": "add each answer's 'explanation': a base and one contribution per feature, "
                "adding up to the model's output",
            },
            "routing_key": ROUTING_KEY,
            "on_error": {
                "enum": ["fail", "report"],
                "description": "with 'records', what a record that cannot be scored does: 'fail' (the default) "
                "refuses the request, naming every bad record's index, field and problem; 'report' answers "
                "the others, each bad record's place holding its error",
            },
        },
        "additionalProperties": False,
        "oneOf": [{"required": ["record"]}, {"required": ["records"]}],
    }


PREDICTALL = {
    "type": "object",
    "title": "Batch scoring request",
    "required": ["modelkey", "inputCollection", "outputCollection"],
    "properties": {
        "modelkey": MODEL_REF,
        "inputCollection": COLLECTION_SPEC,
        "outputCollection": COLLECTION_SPEC,
        "schema": SCHEMA_BLOCK,
        "explain": {
            "type": "boolean",
            "description": "write each document's 'explanation' beside its score: a base and one contribution "
            "per feature, adding up to the model's output (as /predict/ answers it)",
        },
    },
    "additionalProperties": False,
}


def _reject_constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not valid JSON (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSON(f"number {shown(text, 40, quote=False)} is out of range")
    return value


_CONTAINERS = (dict, list)
_CONTAINER_SET = frozenset(_CONTAINERS)


def _depth(value: Any, limit: int, brackets: int | None = None) -> int:
    """Nesting depth of a parsed document (a scalar counts one level), visiting containers only
    and stopping as soon as it passes limit. Scalars are looked at once, never gathered.

    brackets, the body's count of "[" and "{" (strings included), bounds how many containers the
    document holds: once that many are found, the levels below hold none and are not visited. A
    batch of 1,000 records is three levels of containers and 16,000 scalars: looking at every
    scalar's type cost 0.7 ms, this stops before them. A bracket inside a string only makes the
    bound loose (the walk then goes on), never wrong."""
    if type(value) not in _CONTAINERS:
        return 1
    level, deepest, found = [value], 1, 1
    while level:
        if found == brackets:  # every container is at this level or above: its children are scalars
            return deepest + (1 if any(level) else 0)
        nested: list[Any] = []
        filled = False
        for item in level:
            if item:
                filled = True
                children = item.values() if type(item) is dict else item
                if not _CONTAINER_SET.isdisjoint(map(type, children)):  # C speed over the scalars
                    nested += [c for c in children if type(c) in _CONTAINERS]
        deepest += 1 if filled else 0  # a non-empty container adds a level
        if deepest > limit:
            return deepest
        level, found = nested, found + len(nested)
    return deepest


def parse_json(data: bytes, *, max_depth: int = MAX_DEPTH, brackets: int | None = None) -> Any:
    """A request body as JSON: UTF-8, finite numbers, bounded nesting; InvalidJSON otherwise.

    orjson reads a well-formed body in a third of the standard parser's time (its refusals are
    the same: NaN and Infinity, numbers out of range, bad UTF-8, lone surrogates); anything it
    refuses is read again by the standard parser, whose refusal names the problem, and a body
    with an integer too long for 64 bits goes to it directly (orjson would make it a float).
    A part of a larger body (one record of a streamed dataset) passes the levels left to it; a
    caller that counted the body's brackets already (jsonio.check_containers) passes the count."""
    if not data.strip():
        raise InvalidJSON("the request body is empty; a JSON document was expected")
    if not has_long_digits(data):
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            # fewer brackets than levels allowed (one record, say) cannot nest too deep: no walk
            if brackets is None:
                brackets = bracket_count(data)
            if brackets >= max_depth and _depth(value, max_depth, brackets) > max_depth:
                raise InvalidJSON(f"JSON nested deeper than {MAX_DEPTH} levels")
            return value
    return _parse_json_slowly(data, max_depth)


# 19 digits in a row, found by mapping every byte to "0" (a digit) or " " and one substring
# search: C speed, where a regular expression took 20 ms over a body of 1,000 records.
_DIGITS_AS_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_DIGITS = b"0" * 19
_LONG_RUN = b"\x01" * 19  # the same run in numpy's mask of digits
# From this size on, a body's scans are numpy's vectorised passes, whose fixed cost (a few us)
# a short body would not repay: over 1,000 bank records (244 KB) the bracket count took 0.14 ms
# by bytes.count and 0.02 by numpy, the search for long digits 0.17 ms and 0.06.
VECTOR_SCAN_BYTES = 16384


def bracket_count(data: bytes) -> int:
    """How many "[" and "{" the body holds, strings included: a bound on its containers."""
    if len(data) < VECTOR_SCAN_BYTES:
        return data.count(b"[") + data.count(b"{")
    return int(np.count_nonzero((np.frombuffer(data, np.uint8) | 32) == 123))  # "[" | 32 is "{"


def has_long_digits(data: bytes) -> bool:
    """Whether the body holds 19 digits in a row: an integer that may not fit 64 bits."""
    if len(data) < VECTOR_SCAN_BYTES:
        return _LONG_DIGITS in data.translate(_DIGITS_AS_ZERO)
    digits = (np.frombuffer(data, np.uint8) - 48) < 10  # a byte below "0" wraps past 9
    return _LONG_RUN in digits.tobytes()


def _parse_json_slowly(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJSON("the request body is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # huge integers, absurd nesting
        raise InvalidJSON(f"malformed JSON: {str(exc)[:120]}") from None
    if _depth(value, max_depth) > max_depth:
        raise InvalidJSON(f"JSON nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(value)
    return value


# A \u escape of a UTF-16 surrogate: JSON allows one alone ("\ud800"), which then has no UTF-8
# form, so MongoDB, Redis and every name check would fail on it later. Only a body holding such
# an escape is walked (a pair, which json joins into one character, passes).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(value: Any) -> None:
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is dict:
            pending.extend(item.keys())
            pending.extend(item.values())
        elif type(item) is list:
            pending.extend(item)
        elif type(item) is str:
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidJSON(
                    f"the body holds a lone UTF-16 surrogate (\\u{ord(item[exc.start]):04x}) in a string: "
                    "it is not Unicode text; send valid UTF-8"
                ) from None


class Validator:
    """A compiled schema; ``check(doc, what)`` raises InvalidRequest naming the offending field."""

    def __init__(self, schema: dict[str, Any]):
        Draft202012Validator.check_schema(schema)
        self.schema = schema
        self._validator = Draft202012Validator(schema)
        self._fast = jsonschema_rs.Draft202012Validator(schema)

    def check(self, document: Any, what: str) -> None:
        # The compiled (Rust) validator answers the common case, a valid body, in microseconds;
        # only a body it refuses goes through jsonschema, which then words the error.
        try:
            if self._fast.is_valid(document):
                return
        except (ValueError, OverflowError):  # a value it cannot represent (a huge integer)
            pass
        # The first few errors only: iter_errors is lazy, and a body of 400,000 wrong items made
        # 400,000 errors (7 s and 1.5 GB for 1.2 MB of request).
        errors = list(itertools.islice(self._validator.iter_errors(document), MAX_SCHEMA_ERRORS))
        if not errors:
            return
        main = best_match(errors)
        details = [{"field": _path(e), "problem": _message(e)} for e in sorted(errors, key=lambda e: list(e.path))]
        field = _path(main)
        message = f"{what}: '{field}' {_message(main)}" if field else f"{what} {_message(main)}"
        if main.validator == "required":  # every field it needs, not one at a time
            message += f" (required: {', '.join(main.validator_value)})"
        raise InvalidRequest(message, details=details)


def _path(error: Any) -> str:
    return shown(".".join(str(p) for p in error.absolute_path), 200, quote=False)


def _message(error: Any) -> str:
    validator = error.validator
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"needs the field '{missing}'"
    if validator == "additionalProperties":
        return shown(f"has unknown field(s): {_unknown_fields(error)}", 200, quote=False)
    if validator == "type":
        return f"must be of type {error.validator_value}"
    if validator == "oneOf":
        return "must carry either 'record' (one object) or 'records' (an array of objects) beside 'modelkey'"
    if validator == "pattern":
        return f"must match {error.validator_value}"
    if validator in ("maxItems", "maxProperties"):  # jsonschema's own message repeats the whole value
        return f"must have at most {error.validator_value} {'items' if validator == 'maxItems' else 'fields'}"
    return shown(error.message, 200, quote=False)


def _unknown_fields(error: Any) -> str:
    """The fields a schema does not take, each with the known field it was likely meant to be
    ('regParm' (did you mean 'regParam'?)); the first few only."""
    known = error.schema.get("properties", {})
    patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
    unknown = [k for k in error.instance if k not in known and not any(p.search(k) for p in patterns)]
    named = [repr(k) + did_you_mean(k, known) for k in unknown[:MAX_SUGGESTED_NAMES]]
    more = f", ... ({len(unknown)} in all)" if len(unknown) > MAX_SUGGESTED_NAMES else ""
    return ", ".join(named) + more + (" was unexpected" if len(unknown) == 1 else " were unexpected")


JOB_VALIDATOR = Validator(JOB)
PREDICTALL_VALIDATOR = Validator(PREDICTALL)
