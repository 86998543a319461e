"""DataParser: turns records into feature vectors the classic way, in Python and numpy.

``DataParser(schema)`` takes a job document's ``schema``: a label and features. A feature without
``values`` is numeric (numbers, or strings that spell a number); one with ``values`` is one-hot
encoded at the positions the map gives, and a categorical with a single value contributes one
constant 0, as the classic parser did. The same encoding exists three times and the tests hold
them equal:

* ``encode_one(record)`` - one record, plain Python (the reference, and online single records);
* ``encode(records)`` - a batch into a numpy matrix (online micro-batches);
* ``predictionservice.sparkfeatures.feature_columns(parser, df_schema)`` - Spark column expressions, so
  Spark jobs never run Python per row (kept there: this module imports no Spark).

``encode_label(record)`` maps the label by ``schema.label.values`` (a class index) or reads it as
a number. A record that cannot be encoded raises a :class:`RecordError` naming the field; the
Spark form yields an ``error`` column instead, so batch jobs count bad rows rather than die.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from predictionservice.categories import category_key
from predictionservice.defaults import MAX_NUMBER_CHARS
from predictionservice.exceptions import (
    IS_MISSING,
    IS_NULL,
    NOT_A_CATEGORY,
    NOT_A_NUMBER,
    NOT_FINITE,
    TOO_LONG,
    InvalidRequest,
    InvalidSchema,
    MissingField,
    NotFound,
    NotNumeric,
    RecordError,
    UnknownCategory,
    close_names,
    did_you_mean,
    shown,
)

# Each part of a number can match in one way only (no '\d+\.?\d*', whose two runs of digits
# split a long digit string in quadratically many ways before failing), so a match is linear.
_NUMBER = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*\Z")
UNKNOWN_ERROR, UNKNOWN_IGNORE = "error", "ignore"
UNKNOWN_CHOICES = (UNKNOWN_ERROR, UNKNOWN_IGNORE)  # a categorical feature's "unknown"
_SPECIAL = re.compile(r"\s*[+-]?(?:nan|inf|infinity)\s*\Z", re.IGNORECASE)


REGRESSION, BINARY, MULTICLASS = "regression", "binary", "multiclass"


class NumberTooLong(ValueError):
    """A numeric string longer than MAX_NUMBER_CHARS."""


_NUMBER_TYPES = frozenset((int, float))  # exactly: bool is an int subclass, and refused
_DICT_ONLY = frozenset((dict,))  # what a parsed JSON body's records are


@dataclass(frozen=True)
class Feature:
    key: str
    values: Mapping[str, int] | None  # None: numeric
    offset: int  # first position in the feature vector
    width: int
    ignore_unknown: bool = False  # "unknown": "ignore": an unseen category encodes as all zeros

    @property
    def constant(self) -> bool:
        """A single-valued categorical: one feature that is always 0 (classic behaviour)."""
        return self.values is not None and len(self.values) == 1


def _check_values(values: Any, where: str) -> dict[str, int]:
    if not isinstance(values, dict) or not values:
        raise InvalidSchema(f"{where}: 'values' must be a non-empty object of category -> position")
    for name, pos in values.items():
        if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < len(values):
            raise InvalidSchema(f"{where}: position of {name!r} must be an integer from 0 to {len(values) - 1}")
    return dict(values)


def number(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None for a non-number.

    Raises ValueError for a non-finite number (NaN, infinities, overflow) and NumberTooLong for
    a string longer than any number needs (MAX_NUMBER_CHARS): parsing it would cost the server
    more than sending it cost the client."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            result = float(value)
        except OverflowError:
            raise ValueError("overflow") from None
    elif isinstance(value, str):
        if len(value) > MAX_NUMBER_CHARS:
            raise NumberTooLong(value)
        if _NUMBER.match(value):
            result = float(value)
        elif _SPECIAL.match(value):
            raise ValueError("non-finite")
        else:
            return None
    else:
        return None
    if not math.isfinite(result):
        raise ValueError("non-finite")
    return result


def unknown_category(value: Any, values: Mapping[str, int]) -> str:
    """Why a value is no category, with the categories it was most likely meant to be: a case
    slip first ('Management' for 'management'), then the closest spellings, else a few allowed."""
    text = value if isinstance(value, str) else repr(value)
    shown = repr(text if len(text) <= 60 else text[:60] + "...") if isinstance(value, str) else text[:60]
    close = close_names(text, values, n=3)
    if close:
        hint = "closest: " + ", ".join(repr(n) for n in close)
    else:
        more = f", ... ({len(values)} in all)" if len(values) > 5 else ""
        hint = "allowed: " + ", ".join(repr(n) for n in sorted(values)[:5]) + more
    return f"has the value {shown}, which is not one of the schema's categories ({hint})"


def _unknown(item: Mapping[str, Any], where: str) -> bool:
    """Whether a categorical feature's ``unknown`` says to ignore a category it does not list
    ("ignore": all zeros) rather than refuse the record ("error", the default)."""
    unknown = item.get("unknown", UNKNOWN_ERROR)
    if unknown not in UNKNOWN_CHOICES:
        raise InvalidSchema(f"{where}: 'unknown' must be one of {', '.join(map(repr, UNKNOWN_CHOICES))}")
    return unknown == UNKNOWN_IGNORE


def _feature_schema(f: Feature) -> dict[str, Any]:
    if f.values is None:
        return {"key": f.key}
    return {"key": f.key, "values": dict(f.values), **({"unknown": UNKNOWN_IGNORE} if f.ignore_unknown else {})}


def _one_hot(matrix: np.ndarray, offset: int, positions: np.ndarray, ignore: bool) -> None:
    """Sets each row's one at its position; a -1 (an ignored unknown category) sets none."""
    rows = np.arange(len(positions))
    if ignore and (positions < 0).any():
        kept = positions >= 0
        rows, positions = rows[kept], positions[kept]
    matrix[rows, offset + positions] = 1.0


def _column(records: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """One feature's column, a pass over the records: the path that names a record lacking it."""
    try:
        return list(map(itemgetter(key), records))
    except KeyError:
        raise MissingField(key, IS_MISSING, next(i for i, r in enumerate(records) if key not in r)) from None


class DataParser:
    """Encodes records by a schema; built once per model and reused for every record."""

    def __init__(self, schema: Any):
        if not isinstance(schema, Mapping):
            raise InvalidSchema("'schema' must be an object with a label and features")
        label = schema.get("label")
        if not isinstance(label, Mapping) or not isinstance(label.get("key"), str) or not label["key"]:
            raise InvalidSchema("schema.label must be an object with a non-empty 'key'")
        self.label_key: str = label["key"]
        self.label_values: dict[str, int] | None = (
            _check_values(label["values"], "schema.label") if "values" in label else None
        )
        if self.label_values is not None and sorted(self.label_values.values()) != list(range(len(self.label_values))):
            raise InvalidSchema(
                "schema.label.values must give each category a position of its own, 0 to "
                f"{len(self.label_values) - 1} (a class index each)"
            )
        raw = schema.get("features")
        if not isinstance(raw, list) or not raw:
            raise InvalidSchema("schema.features must be a non-empty array")
        features: list[Feature] = []
        offset = 0
        seen: set[str] = set()
        for i, item in enumerate(raw):
            where = f"schema.features[{i}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("key"), str) or not item["key"]:
                raise InvalidSchema(f"{where} must be an object with a non-empty 'key'")
            key = item["key"]
            if key in seen:
                raise InvalidSchema(f"{where}: feature '{key}' is listed twice")
            if key == self.label_key:
                raise InvalidSchema(f"{where}: '{key}' is the label; it cannot also be a feature")
            seen.add(key)
            if "values" in item:
                values = _check_values(item["values"], where)
                width = 1 if len(values) == 1 else max(values.values()) + 1
                features.append(Feature(key, values, offset, width, _unknown(item, where)))
            else:
                if "unknown" in item:
                    raise InvalidSchema(f"{where}: 'unknown' is for a categorical feature (one with 'values')")
                features.append(Feature(key, None, offset, 1))
            offset += features[-1].width
        self.features: tuple[Feature, ...] = tuple(features)
        self._keys = tuple(f.key for f in self.features)  # read from each record at once by encode
        # The features whose unseen categories encode as zeros (their records may carry warnings).
        self.ignoring: tuple[Feature, ...] = tuple(f for f in features if f.ignore_unknown)
        self.num_features: int = offset
        self.label_names: dict[int, str] | None = (
            {pos: name for name, pos in self.label_values.items()} if self.label_values else None
        )

    @property
    def task(self) -> str:
        """What the schema asks for: a label with values is classification (binary for two
        categories), one without is a numeric regression target."""
        if self.label_values is None:
            return REGRESSION
        return BINARY if len(self.label_values) == 2 else MULTICLASS

    @property
    def class_names(self) -> list[str]:
        """The label's categories by class index (empty for regression)."""
        return [self.label_names[i] for i in range(len(self.label_names))] if self.label_names else []

    # ------------------------------------------------------------------ one record (reference)

    def schema(self) -> dict[str, Any]:
        label: dict[str, Any] = {"key": self.label_key}
        if self.label_values is not None:
            label["values"] = dict(self.label_values)
        feats = [_feature_schema(f) for f in self.features]
        return {"label": label, "features": feats}

    def feature_names(self) -> list[str]:
        names: list[str] = []
        for f in self.features:
            if f.values is None or f.constant:
                names.append(f.key)
            else:
                by_pos: dict[int, list[str]] = {}
                for name, pos in f.values.items():
                    by_pos.setdefault(pos, []).append(name)
                names.extend(f"{f.key}={'|'.join(by_pos.get(p, ['?']))}" for p in range(f.width))
        return names

    def _numeric(self, key: str, value: Any) -> float:
        if value is None:
            raise MissingField(key, f"{IS_NULL}: a number is expected", reason=IS_MISSING)
        try:
            result = number(value)
        except NumberTooLong:
            raise NotNumeric(key, TOO_LONG) from None
        except ValueError:
            raise NotNumeric(key, NOT_FINITE) from None
        if result is None:
            raise NotNumeric(key, NOT_A_NUMBER)
        return result

    def _position(self, key: str, values: Mapping[str, int], value: Any, ignore: bool = False) -> int:
        """The value's one-hot position; -1 (no position: all zeros) for a category the schema
        does not list when the feature ignores unknown ones (``ignore``)."""
        if value is None:
            raise MissingField(key, f"{IS_NULL}: one of the schema's categories is expected", reason=IS_MISSING)
        name = category_key(value)
        pos = values.get(name) if name is not None else None
        if pos is None:
            if ignore:  # any value but null: Spark reads a column of mixed kinds as text
                return -1
            raise UnknownCategory(key, unknown_category(value, values), reason=NOT_A_CATEGORY)
        return pos

    def encode_label(self, record: Mapping[str, Any]) -> float:
        """The label of a training record: its class index, or the number it holds."""
        if self.label_key not in record:
            raise MissingField(self.label_key)
        value = record[self.label_key]
        if self.label_values is not None:
            return float(self._position(self.label_key, self.label_values, value))
        return self._numeric(self.label_key, value)

    def encode_one(self, record: Mapping[str, Any]) -> list[float]:
        """The feature vector of one record (the label, if present, is not read)."""
        if not isinstance(record, Mapping):
            raise RecordError("record", "is not an object")
        vector = [0.0] * self.num_features
        for f in self.features:
            if f.key not in record:
                raise MissingField(f.key)
            value = record[f.key]
            if f.values is None:
                vector[f.offset] = self._numeric(f.key, value)
            else:
                pos = self._position(f.key, f.values, value, f.ignore_unknown)
                if not f.constant and pos >= 0:
                    vector[f.offset + pos] = 1.0
        return vector

    def problems(self, record: Any) -> list[RecordError]:
        """Every reason the record cannot be encoded, one per field (empty: it encodes). The
        slow path, asked only of a record the encoders refused, so a report names them all."""
        if not isinstance(record, Mapping):
            return [RecordError("record", "is not an object")]
        found: list[RecordError] = []
        for f in self.features:
            try:
                if f.key not in record:
                    raise MissingField(f.key)
                if f.values is None:
                    self._numeric(f.key, record[f.key])
                else:
                    self._position(f.key, f.values, record[f.key], f.ignore_unknown)
            except RecordError as exc:
                found.append(exc)
        return found

    def warnings(self, record: Mapping[str, Any]) -> list[str]:
        """What an answer says of a record's categories the model never saw, for the features
        that ignore them (an encodable record: ``encode_one`` accepted it)."""
        said: list[str] = []
        for f in self.ignoring:
            name = category_key(record[f.key])
            if name is None or name not in f.values:  # type: ignore[operator]
                value = shown(name, 60) if name is not None else shown(repr(record[f.key]), 60, quote=False)
                said.append(f"field '{f.key}': {value} is not a known category; treated as none of them")
        return said

    # ------------------------------------------------------------------------ numpy batch

    def encode(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Feature matrix of a batch, column by column; a bad record raises with its index."""
        matrix = np.zeros((len(records), self.num_features), dtype=np.float64)
        columns = self._columns(records)
        for index, f in enumerate(self.features):
            self._encode_column(matrix, f, columns[index] if columns is not None else _column(records, f.key))
        return matrix

    def encode_columns(self, columns: Sequence[Sequence[Any]]) -> np.ndarray:
        """Feature matrix of a batch sent as columns, one per feature in the schema's order (V2's
        inputs): the numbers ``encode`` gives for the records they make, and its errors, with no
        record made (1,000 bank rows made into records took 1 ms of a V2 request's 4)."""
        matrix = np.zeros((len(columns[0]) if columns else 0, self.num_features), dtype=np.float64)
        for f, column in zip(self.features, columns, strict=True):
            self._encode_column(matrix, f, column)
        return matrix

    def _encode_column(self, matrix: np.ndarray, f: Feature, column: Sequence[Any]) -> None:
        """One feature's column into its place in the matrix (a bad value raises with its row)."""
        if f.values is None:
            matrix[:, f.offset] = self._numeric_column(f.key, column)
        else:
            positions = self._positions(f, column)
            if not f.constant:
                _one_hot(matrix, f.offset, positions, f.ignore_unknown)

    def _positions(self, f: Feature, column: Sequence[Any]) -> np.ndarray:
        """A categorical column's one-hot positions. A column of known categories is one pass in
        C (each value looked up and stored as it comes: 30 us for 1,000 values, where a list of
        lookups, a search of it for misses and its conversion took 47); a miss (any value not a
        listed string) or an unhashable value ends that pass, and the misses are looked at one
        by one, the first bad one named with its index."""
        values: Mapping[str, int] = f.values  # type: ignore[assignment]  # a categorical's
        try:
            return np.fromiter(map(values.__getitem__, column), dtype=np.int64, count=len(column))
        except (KeyError, TypeError):
            pass
        try:
            positions = list(map(values.get, column))  # keys are str: any other value misses
        except TypeError:  # an unhashable value (a list, an object): each one is looked at
            positions = [None] * len(column)
        for i, v in enumerate(column):
            if positions[i] is None:
                try:
                    positions[i] = self._position(f.key, values, v, f.ignore_unknown)
                except RecordError as exc:
                    raise exc.at(i) from None
        return np.asarray(positions, dtype=np.int64)

    def _columns(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]] | None:
        """Every feature's column, read in one pass over the records (each record's values
        fetched together, then transposed, both at C speed): a record is touched once, where a
        pass per feature read every record again from memory, sixteen times for the bank. None
        when a record is not an object or lacks a feature: ``_column`` then names which."""
        if not _DICT_ONLY.issuperset(map(type, records)):
            for i, record in enumerate(records):
                if not isinstance(record, Mapping):
                    raise RecordError("record", "is not an object", i)
            return None
        try:
            rows = list(map(itemgetter(*self._keys), records))
        except KeyError:
            return None
        return list(zip(*rows, strict=True)) if len(self._keys) > 1 else [rows]

    def _numeric_column(self, key: str, column: Sequence[Any]) -> np.ndarray:
        """The column as floats; the row-by-row checks only when it holds anything but int and
        float (bool included: it is refused there by name)."""
        if _NUMBER_TYPES.issuperset(map(type, column)):
            try:
                array = np.asarray(column, dtype=np.float64)
            except OverflowError:
                array = None
            if array is not None and np.isfinite(array).all():
                return array
        out = np.empty(len(column), dtype=np.float64)
        for i, v in enumerate(column):
            try:
                out[i] = self._numeric(key, v)
            except RecordError as exc:
                raise exc.at(i) from None
        return out

    def label_name(self, prediction: int) -> Any:
        return self.label_names.get(prediction, prediction) if self.label_names else prediction


CLASSIFICATION = "classification"
# The reasons a person's own choice gives for a field schema inference leaves out (the start of
# the reason, for a categories choice that could not be met): the training page keeps such a
# field in its form, to be taken back.
LEFT_OUT, UNMET_CATEGORIES = "left out as asked", "asked to be categorical"
TASKS = (CLASSIFICATION, REGRESSION)  # what GET .../schema?task= may ask for


@dataclass
class _Scan:
    """What one pass over the documents saw: each field's kinds and (bounded) distinct values."""

    order: list[str]
    kinds: dict[str, set[str]]
    distinct: dict[str, set[Any]]
    overflow: set[str]
    count: int = 0
    fractional_label: Any = None  # the first non-whole number the label holds (it cannot be a class)
    categorical: frozenset[str] = frozenset()  # numeric fields asked to be categories (whole numbers)
    fractional: dict[str, Any] | None = None  # such a field's first non-whole number


def schema_from_documents(
    documents: Iterable[Mapping[str, Any]],
    label: str,
    *,
    task: str | None = None,
    max_categories: int = 100,
    max_label_values: int = 100,
    categorical: Iterable[str] = (),
    exclude: Iterable[str] = (),
    ignore_unknown: Iterable[str] = (),
) -> dict[str, Any]:
    """A ready ``schema`` block from documents: numbers numeric, strings categorical.

    A person's choices (the schema endpoint's query, the training page's form): ``categorical``
    numeric fields of whole numbers become categories (a code, a rating); ``exclude`` fields are
    left out (named in ``dropped``); ``ignore_unknown`` categorical features (``*``: every one)
    say ``"unknown": "ignore"``. A name that is no field of the documents is refused, with the
    closest names.

    Categories are numbered in sorted order, so the same data always gives the same map. Fields
    that are ids (``_id``, or a string distinct in every document), mixed, nested, always null or with more
    than max_categories values are left out (they would not generalise), each named in ``dropped``
    with its reason (``[{"field", "reason"}]``; a job ignores it).

    The label decides the task unless task names one: text is classification (its categories
    mapped, at most max_label_values of them: a value list is held in memory and stored with the
    model), a number is a regression target (no value list, so no bound: a price or a duration
    has as many values as rows). task='classification' makes a numeric label of whole numbers
    classes (a 0/1 column, star ratings); task='regression' on text is refused.
    """
    if task is not None and task not in TASKS:
        raise InvalidRequest(f"'task' must be {' or '.join(repr(t) for t in TASKS)}, not {task[:40]!r}")
    chosen = {"categorical": set(categorical), "exclude": set(exclude), "ignore_unknown": set(ignore_unknown)}
    scan = _scan(documents, label, task, max_categories, max_label_values, frozenset(chosen["categorical"]))
    if scan.count == 0:
        raise InvalidSchema("the collection is empty: nothing to infer a schema from")
    if label not in scan.kinds:
        raise InvalidSchema(f"label field '{label}'{did_you_mean(label, scan.order)} not found in the collection")
    _check_choices(chosen, scan.order, label)
    label_block = _label_block(scan, label, task, max_label_values)
    features: list[dict[str, Any]] = []
    dropped: list[dict[str, str]] = []
    for key in scan.order:
        if key == label:
            continue
        reason = LEFT_OUT if key in chosen["exclude"] else _unusable(scan, key, max_categories)
        if reason:
            dropped.append({"field": key, "reason": reason})
        elif scan.kinds[key] == {"number"} and key not in scan.categorical:
            features.append({"key": key})
        else:
            ignore = key in chosen["ignore_unknown"] or "*" in chosen["ignore_unknown"]
            values = _positions(scan.distinct[key], numeric=key in scan.categorical)
            features.append({"key": key, "values": values, **({"unknown": UNKNOWN_IGNORE} if ignore else {})})
    numeric_ignored = [f["key"] for f in features if "values" not in f and f["key"] in chosen["ignore_unknown"]]
    if numeric_ignored:
        raise InvalidRequest(
            f"'ignore_unknown': {', '.join(repr(k) for k in numeric_ignored)} numeric; unknown categories are "
            "a categorical feature's (ask categorical= for a field of whole-number codes)"
        )
    if not features:
        reasons = "; ".join(f"'{d['field']}': {d['reason']}" for d in dropped[:5])
        raise InvalidSchema(f"no usable feature: every field is an id, mixed, nested or the label ({reasons})")
    return {"label": label_block, "features": features, "dropped": dropped}


def _check_choices(chosen: dict[str, set[str]], fields: list[str], label: str) -> None:
    """Refuses a chosen name that is no field of the documents (naming the closest), and the label
    among the features' choices."""
    for what, names in chosen.items():
        for name in sorted(names - {"*"} if what == "ignore_unknown" else names):
            if name == label:
                raise InvalidRequest(f"'{what}': '{label}' is the label; the choices are about features")
            if name not in fields:
                raise InvalidRequest(
                    f"'{what}': field {shown(name)}{did_you_mean(name, fields)} is not in the collection"
                )


def _unusable(scan: _Scan, key: str, max_categories: int) -> str | None:
    """Why a field cannot be a feature (schema inference leaves it out, saying so), or None."""
    kinds = scan.kinds[key]
    if key == "_id":
        return "the document id: an id does not generalise"
    if not kinds:
        return "null in every document read"
    if len(kinds) > 1:
        return f"mixed types ({', '.join(sorted(kinds))}): a feature is numbers only or text only"
    (kind,) = kinds
    if kind in ("object", "array"):
        return f"nested values ({kind}s): flatten them into fields of their own to use them"
    if kind == "number" and key in scan.categorical:
        fractional = (scan.fractional or {}).get(key)
        if fractional is not None:
            return f"{UNMET_CATEGORIES}, but holds {fractional!r}, not a whole number"
        if key in scan.overflow:
            return f"{UNMET_CATEGORIES}, but has more than {max_categories} distinct values"
        return None
    if kind == "number":
        return None
    if kind == "boolean":
        return "true/false values: store them as 0/1 or as text to use them"
    if kind != "string":
        return "values that are neither numbers nor text (dates, ids, binary)"
    if key in scan.overflow:
        return f"more than {max_categories} distinct values: too many categories"
    if len(scan.distinct[key]) >= scan.count:
        return "id-like: a different text in every document"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, Mapping) else "array" if isinstance(value, list) else "other"


def _scan(
    documents: Iterable[Mapping[str, Any]],
    label: str,
    task: str | None,
    max_categories: int,
    max_label_values: int,
    categorical: frozenset[str] = frozenset(),
) -> _Scan:
    """One pass: the kinds of every field, the categories of text fields (up to max_categories
    each), and the label's values only when they may become classes (up to max_label_values): a
    numeric label's values are kept only for task='classification'."""
    scan = _Scan([], {}, {}, set(), categorical=categorical - {label}, fractional={})
    numeric_classes = task == CLASSIFICATION
    for doc in documents:
        scan.count += 1
        for key, value in doc.items():
            if key not in scan.kinds:
                scan.order.append(key)
                scan.kinds[key] = set()
                scan.distinct[key] = set()
            if value is None:
                continue
            kind = _kind(value)
            scan.kinds[key].add(kind)
            if key in scan.overflow:
                continue
            if kind == "number" and key in scan.categorical:
                _count_code(scan, key, value, max_categories)
                continue
            if not (kind == "string" or (kind == "number" and key == label)):
                continue
            if key == label and kind == "number":
                if not numeric_classes:
                    continue
                if not float(value).is_integer():
                    scan.fractional_label = value if scan.fractional_label is None else scan.fractional_label
                    continue
                value = int(value)
            scan.distinct[key].add(value)
            if len(scan.distinct[key]) > (max_label_values if key == label else max_categories):
                scan.overflow.add(key)
                scan.distinct[key] = set()
    return scan


def _label_block(scan: _Scan, label: str, task: str | None, max_label_values: int) -> dict[str, Any]:
    """The schema's label: a value map (classification) or the key alone (regression)."""
    kinds = scan.kinds[label]
    too_many = f"more than {max_label_values} distinct values (schema_max_label_values)"
    if kinds == {"string"}:
        if task == REGRESSION:
            raise InvalidSchema(
                f"label field '{label}' holds text, and regression predicts a number: ask task=classification "
                "(or leave task out) to classify it"
            )
        if label in scan.overflow:
            raise InvalidSchema(f"label field '{label}' has {too_many}: too many classes to classify")
        return {"key": label, "values": _positions(scan.distinct[label])}
    if kinds != {"number"}:
        raise InvalidSchema(f"label field '{label}' must hold only strings or only numbers")
    if task != CLASSIFICATION:
        return {"key": label}
    regress = "leave task out (or ask task=regression) to predict it as a number"
    if scan.fractional_label is not None:
        raise InvalidSchema(
            f"label field '{label}' holds {scan.fractional_label!r}, not a whole number, so it cannot be a class; "
            + regress
        )
    if label in scan.overflow:
        raise InvalidSchema(f"label field '{label}' has {too_many}: too many to be classes; {regress}")
    if len(scan.distinct[label]) < 2:
        raise InvalidSchema(f"label field '{label}' holds a single value: there is nothing to classify; {regress}")
    return {"key": label, "values": {str(v): pos for pos, v in enumerate(sorted(scan.distinct[label]))}}


def _count_code(scan: _Scan, key: str, value: Any, max_categories: int) -> None:
    """A number of a field asked to be categorical: a category (its decimal digits, as online
    scoring looks it up) when it is whole, else the field's first fractional value is kept."""
    code = category_key(value)
    if code is None:
        assert scan.fractional is not None
        scan.fractional.setdefault(key, value)
        return
    scan.distinct[key].add(code)
    if len(scan.distinct[key]) > max_categories:
        scan.overflow.add(key)
        scan.distinct[key] = set()


def _positions(values: set[Any], numeric: bool = False) -> dict[str, int]:
    """Categories numbered in sorted order (whole-number codes by their value: 2 before 10)."""
    ordered = sorted(values, key=int) if numeric else sorted(values)
    return {name: pos for pos, name in enumerate(ordered)}


SAMPLE_SIZE = 100  # documents a job's fields are checked against at submission


def check_sample(parser: DataParser, collection: Any, source: str, size: int = SAMPLE_SIZE) -> None:
    """Check a job's schema against a sample of its input collection before it is queued: a
    misspelled field or a label no row can have would otherwise be accepted (202) and then FAIL
    on the worker. Only certain mistakes are refused: a field absent from the whole collection,
    or a field none of whose sampled values can be encoded (a few bad rows are counted, not
    refused). InvalidSchema names the field, what the data holds and what to change."""
    keys = [parser.label_key, *(f.key for f in parser.features)]
    sample = list(collection.find({}, {"_id": 0, **dict.fromkeys(keys, 1)}, limit=size))
    if not sample:
        raise NotFound(f"input collection {source} is empty or does not exist")
    seen = {key for doc in sample for key in doc}
    missing = [k for k in keys if k not in seen and collection.find_one({k: {"$exists": True}}, {"_id": 1}) is None]
    if missing:
        fields = _field_names(collection)
        hints = [f"'{k}'" + did_you_mean(k, fields) for k in missing]
        kind = "field" if parser.label_key in missing else "feature field"
        kind = "label field" if missing == [parser.label_key] else kind + ("s" if len(missing) > 1 else "")
        raise InvalidSchema(f"{kind} {', '.join(hints)} not found in {source}")
    _check_label(parser, [d.get(parser.label_key) for d in sample], source)
    for feature in parser.features:
        _check_feature(feature, [d.get(feature.key) for d in sample], source)


def _field_names(collection: Any) -> list[str]:
    return sorted({key for doc in collection.find({}, {"_id": 0}, limit=SAMPLE_SIZE) for key in doc})


def _examples(values: list[Any]) -> str:
    distinct = list(dict.fromkeys(repr(v)[:40] for v in values))
    return ", ".join(distinct[:3]) + (", ..." if len(distinct) > 3 else "")


def _check_label(parser: DataParser, values: list[Any], source: str) -> None:
    present = [v for v in values if v is not None]
    key = parser.label_key
    if not present:
        return  # all null in the sample: the worker counts the rows and says so
    if parser.label_values is None:
        if not any(_is_number(v) for v in present):
            raise InvalidSchema(
                f"label '{key}' has no 'values', so it is a number to predict, but {source} holds "
                f"{_examples(present)}: give schema.label.values (category -> class) to classify"
            )
        return
    if all(category_key(v) not in parser.label_values for v in present):
        allowed = ", ".join(repr(n) for n in list(parser.label_values)[:5])
        raise InvalidSchema(
            f"label '{key}' in {source} holds {_examples(present)}, none of schema.label.values ({allowed})"
        )


def _check_feature(feature: Feature, values: list[Any], source: str) -> None:
    present = [v for v in values if v is not None]
    if not present:
        return
    if feature.values is None:
        if not any(_is_number(v) for v in present):
            comma = any(isinstance(v, str) and re.fullmatch(r"\s*[+-]?\d*,\d+\s*", v) for v in present)
            hint = (
                ": numbers with a decimal comma; upload the CSV delimited by ';', which reads '1,5' as 1.5"
                if comma
                else "; give the feature 'values' to make it categorical"
            )
            raise InvalidSchema(
                f"feature '{feature.key}' is numeric in the schema but {source} holds {_examples(present)}{hint}"
            )
    elif all(category_key(v) not in feature.values for v in present):
        allowed = ", ".join(repr(n) for n in list(feature.values)[:5])
        raise InvalidSchema(
            f"feature '{feature.key}' in {source} holds {_examples(present)}, none of its schema 'values' "
            f"({allowed}{', ...' if len(feature.values) > 5 else ''})"
        )


def _is_number(value: Any) -> bool:
    try:
        return number(value) is not None
    except ValueError:
        return False
