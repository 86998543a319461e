"""The Open Inference Protocol V2 (KServe V2, spoken by Triton and MLServer) in the service's
terms: a stored model's metadata as tensors, an infer request's tensors as the records
``/predict/`` scores, and the predictor's answers as output tensors.

A model is named by its key, version "1". Each feature is one input column named by its key:
shape ``[-1, 1]``, ``BYTES`` for a categorical, ``INT64`` for a numeric feature whose training
column was whole numbers (recorded as ``integral_features`` at training), ``FP64`` otherwise and
for models stored before that was recorded. The outputs are the predictor's answer fields, so an
infer request and ``/predict/`` with the same records answer the same (one scoring path).

Only JSON tensors are spoken: data in the binary tensor extension is refused (``binary_data_size``
or an ``Inference-Header-Content-Length`` body); a request for binary outputs is answered in JSON,
which the protocol's clients read as well. Unknown request, input and output ``parameters`` (such
as MLServer's ``content_type``) are ignored.

Explanations (docs/API.md, "Explanations") are one more output, ``explanation``: FP64, shape
``[N, 1 + features]``, each row the record's base then one contribution per feature in the
schema's order (the tensor's ``parameters`` name the columns and what they add up to). It is
asked for by naming it in ``outputs`` or with the request parameter ``"explain": true`` (which adds
it to the outputs answered); an infer request naming no outputs is answered every output but it,
as it costs more than the prediction itself. The model metadata lists it among the outputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from predictionservice.exceptions import InvalidRequest, RecordError, shown
from predictionservice.validation import ROUTING_KEY

PATH_PREFIX = "/v2"  # every route of the protocol, and only those, starts so
SERVER_NAME = "prediction-service"
MODEL_VERSION = "1"
PLATFORM = "prediction-service-numpy"
BINARY_HEADER = "Inference-Header-Content-Length"
EXPLANATION = "explanation"  # the output (and request parameter "explain") of explanations
BINARY_REFUSED = (
    "the binary tensor extension is not supported: send every input's values as JSON in 'data' "
    "(tritonclient: set_data_from_numpy(array, binary_data=False))"
)

INTEGER_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
DATATYPES = sorted(INTEGER_TYPES | FLOAT_TYPES | {"BOOL", "BYTES"})
_SCALAR = {"type": ["number", "string", "boolean"]}


def inference_request_schema(max_records: int) -> dict[str, Any]:
    """The infer request body (the protocol's $inference_request), bounded like /predict/: at
    most max_records rows, one input per column."""
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 256},
            "shape": {
                "type": "array",
                "minItems": 1,
                "maxItems": 2,
                "prefixItems": [{"type": "integer", "minimum": 1, "maximum": max_records}, {"const": 1}],
                "description": "[N] or [N, 1]: N rows of one column",
            },
            "datatype": {"enum": DATATYPES},
            "parameters": {"type": "object"},
            "data": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_records,
                "items": {"anyOf": [_SCALAR, {"type": "array", "minItems": 1, "maxItems": 1, "items": _SCALAR}]},
                "description": "the column's N values, flat or nested ([[v], ...]) in row-major order",
            },
        },
    }
    output = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 256}, "parameters": {"type": "object"}},
    }
    return {
        "title": "Open Inference Protocol V2 inference request",
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string", "maxLength": 256},
            "parameters": {
                "type": "object",
                "properties": {
                    "explain": {
                        "type": "boolean",
                        "description": "true: answer the 'explanation' output too (as naming it in 'outputs')",
                    },
                    "routing_key": ROUTING_KEY,
                },
            },
            "inputs": {"type": "array", "minItems": 1, "maxItems": 10_000, "items": tensor},
            "outputs": {"type": "array", "maxItems": 5, "items": output},
        },
    }


def routing_key(body: Any) -> str | None:
    """The request's ``parameters.routing_key`` (a split of a named model's traffic hashes it), if any."""
    parameters = body.get("parameters") if isinstance(body, Mapping) else None
    key = parameters.get("routing_key") if isinstance(parameters, Mapping) else None
    if key is not None and not isinstance(key, str):  # the schema says so too
        raise InvalidRequest("parameter 'routing_key' must be a string (a customer's id: it keeps one variant)")
    return key


def output_tensors(parser: Any) -> list[dict[str, Any]]:
    """What a model answers, as tensor metadata: its predictor's answer fields."""
    names = parser.class_names
    if not names:
        return [{"name": "prediction", "datatype": "FP64", "shape": [-1, 1]}]
    return [
        {"name": "prediction", "datatype": "INT64", "shape": [-1, 1]},
        {"name": "label", "datatype": "BYTES", "shape": [-1, 1]},
        {"name": "probability", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(names)], "parameters": {"labels": names}},
    ]


def explanation_tensor(parser: Any, output: str) -> dict[str, Any]:
    """The explanation output's metadata: a row per record, its base then each feature's share,
    adding up to ``output`` (margin, probability or value: docs/API.md, "Explanations")."""
    columns = ["base", *(f.key for f in parser.features)]
    return {
        "name": EXPLANATION,
        "datatype": "FP64",
        "shape": [-1, len(columns)],
        "parameters": {"columns": columns, "output": output},
    }


def explained_output(algorithm: Any, parser: Any) -> str:
    """What a stored model's explanations add up to: a regressor's value, a logistic model's
    margin, a forest classifier's predicted class probability."""
    if not parser.class_names:
        return "value"
    return "margin" if algorithm == "LogisticRegressionWrapper" else "probability"


def model_metadata(key: str, stored: Mapping[str, Any], parser: Any) -> dict[str, Any]:
    """GET /v2/models/<key>: one input per feature and the outputs of the model's task."""
    integral = set(stored.get("integral_features") or ())

    def datatype(feature: Any) -> str:
        if feature.values is not None:
            return "BYTES"
        return "INT64" if feature.key in integral else "FP64"

    return {
        "name": key,
        "versions": [MODEL_VERSION],
        "platform": PLATFORM,
        "inputs": [{"name": f.key, "datatype": datatype(f), "shape": [-1, 1]} for f in parser.features],
        "outputs": [*output_tensors(parser), explanation_tensor(parser, explained_output(stored.get("name"), parser))],
        "parameters": {"algorithm": stored.get("name"), "task": parser.task},
    }


def refuse_binary(body: Mapping[str, Any]) -> None:
    """Inputs whose values travel in the binary extension cannot be read from JSON. Runs before
    the schema (such an input has no 'data', which the schema would name instead), so it takes
    the body as it comes: anything else is left to the schema."""
    inputs = body.get("inputs")
    for tensor in inputs if isinstance(inputs, list) else ():
        parameters = tensor.get("parameters") if isinstance(tensor, Mapping) else None
        if isinstance(parameters, Mapping) and "binary_data_size" in parameters:
            raise InvalidRequest(f"input '{shown(str(tensor.get('name')), quote=False)}': {BINARY_REFUSED}")


# The Python types a JSON value of each datatype may have (bool is not an int here).
_BYTES_TYPES, _BOOL_TYPES = frozenset({str}), frozenset({bool})
_INTEGER_VALUE_TYPES, _NUMBER_VALUE_TYPES = frozenset({int}), frozenset({int, float})


def _flat(tensor: Mapping[str, Any]) -> list[Any]:
    """The tensor's values as one list of N scalars, its shape and datatype checked. The values'
    types are gathered in one pass at C speed (a parsed body's values are exactly int, float,
    str, bool, None, list or dict); only a tensor with another type is read value by value, for
    the first wrong value's index (a subclass, which only a caller in process sends, passes)."""
    name, shape, data = tensor["name"], tensor["shape"], tensor["data"]
    types = set(map(type, data))
    if list in types:
        values = [v[0] if isinstance(v, list) else v for v in data]
        types = set(map(type, values))
    else:
        values = list(data)  # the request's own list is not kept: the records are made later
    if len(values) != shape[0]:
        raise InvalidRequest(f"input '{name}' has shape {shape} but {len(values)} values")
    datatype = tensor["datatype"]
    if datatype == "BYTES":
        allowed = _BYTES_TYPES
    elif datatype == "BOOL":
        allowed = _BOOL_TYPES
    else:
        allowed = _INTEGER_VALUE_TYPES if datatype in INTEGER_TYPES else _NUMBER_VALUE_TYPES
    if not allowed.issuperset(types):  # a wrong value, or (from a caller in process) a subclass
        wrong = next((i for i, v in enumerate(values) if not _is(v, allowed)), None)
        if wrong is not None:
            raise InvalidRequest(f"input '{name}' is {datatype} but value {wrong} is {type(values[wrong]).__name__}")
    return values


def _is(value: Any, allowed: frozenset[type]) -> bool:
    """Whether a value is of one of the allowed types, subclasses included, a bool never a number."""
    return isinstance(value, tuple(allowed)) and (bool in allowed or not isinstance(value, bool))


def records(key: str, body: Mapping[str, Any], parser: Any) -> list[dict[str, Any]]:
    """The records an infer request's columns make, row by row (what /predict/ would be sent)."""
    return list(Rows(columns(key, body, parser)))


class Rows(Sequence[dict[str, Any]]):
    """The records of an infer request's columns (keys in the inputs' order), made when first
    read: the scoring reads the columns themselves (``Predictor.predict_columns``), so only the
    prediction log, a shadow (both off the request's thread) or an explanation makes them."""

    def __init__(self, given: dict[str, list[Any]]):
        self._columns = given
        self._rows: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def __getitem__(self, index: Any) -> Any:
        return self._made()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._made())

    def _made(self) -> list[dict[str, Any]]:
        if self._rows is None:  # two threads may both make them: the same rows, one kept
            names = list(self._columns)
            self._rows = [dict(zip(names, row, strict=True)) for row in zip(*self._columns.values(), strict=True)]
        return self._rows


def columns(key: str, body: Mapping[str, Any], parser: Any) -> dict[str, list[Any]]:
    """An infer request's columns by input name, in the body's order, checked: one input per
    feature, all of the same length."""
    features = [f.key for f in parser.features]
    given: dict[str, list[Any]] = {}
    for tensor in body["inputs"]:
        name = tensor["name"]
        if name not in features:
            known = ", ".join(features)
            asked = shown(name, quote=False)
            raise InvalidRequest(f"model '{key}' has no input '{asked}' (its inputs: {known[:2000]})")
        if name in given:
            raise InvalidRequest(f"input '{name}' is given twice")
        given[name] = _flat(tensor)
    missing = [name for name in features if name not in given]
    if missing:
        raise InvalidRequest(f"model '{key}' needs the input(s) {', '.join(missing)[:2000]}")
    lengths = {len(values) for values in given.values()}
    if len(lengths) > 1:
        raise InvalidRequest(f"the inputs have different numbers of rows: {sorted(lengths)}")
    return given


def row_error(error: RecordError) -> InvalidRequest:
    """A record the parser refused, in the protocol's words: the row and the input."""
    where = f"row {error.index}: " if error.index is not None else ""
    return InvalidRequest(f"{where}input '{error.field}' {error.problem}", details=error.details)


def wanted_outputs(key: str, body: Mapping[str, Any], parser: Any) -> list[str]:
    """The outputs an infer request asks for (every one of the model's but the explanation when it
    names none; the explanation too with the parameter ``"explain": true``), known before
    scoring: an answer without 'probabilities' needs no records x classes of them."""
    answered = [tensor["name"] for tensor in output_tensors(parser)]
    offered = [*answered, EXPLANATION]
    wanted = list(dict.fromkeys(output["name"] for output in body.get("outputs") or ())) or answered
    unknown = [name for name in wanted if name not in offered]
    if unknown:
        asked = shown(unknown[0], quote=False)
        raise InvalidRequest(f"model '{key}' has no output '{asked}' (its outputs: {', '.join(offered)})")
    explain = (body.get("parameters") or {}).get("explain", False)
    if not isinstance(explain, bool):  # the schema says so too; a body checked by none is checked here
        raise InvalidRequest("parameter 'explain' must be a boolean (true: answer the 'explanation' output)")
    if explain and EXPLANATION not in wanted:
        wanted.append(EXPLANATION)
    return wanted


def infer_response(
    key: str, body: Mapping[str, Any], parser: Any, answers: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The answers as output tensors, only those requested when the request names some; the
    explanation output reads each answer's ``explanation`` (predictors' ``explanations``)."""
    offered = {tensor["name"]: tensor for tensor in output_tensors(parser)}
    n = len(answers)
    outputs = []
    for name in wanted_outputs(key, body, parser):
        if name == EXPLANATION:
            outputs.append(explanation_output(parser, answers))
            continue
        tensor = offered[name]
        if name == "probabilities":
            labels = parser.class_names  # a list made at each reading: read once
            data = [answer[name][label] for answer in answers for label in labels]
            shape = [n, len(labels)]
        else:
            data = [answer[name] for answer in answers]
            shape = [n, 1]
        outputs.append({"name": name, "datatype": tensor["datatype"], "shape": shape, "data": data})
    response: dict[str, Any] = {"model_name": key, "model_version": MODEL_VERSION, "outputs": outputs}
    if "id" in body:
        response["id"] = body["id"]
    return response


def explanation_output(parser: Any, answers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The explanation tensor: per answer, its base then its contributions in the schema's order
    (the numbers /predict/ answers with ``explain``), flat in row-major order."""
    tensor = explanation_tensor(parser, answers[0]["explanation"]["output"])  # an infer request has rows
    keys = tensor["parameters"]["columns"][1:]
    data = []
    for answer in answers:
        explanation = answer["explanation"]
        data.append(explanation["base"])
        data.extend(explanation["contributions"][k] for k in keys)
    return {**tensor, "shape": [len(answers), len(keys) + 1], "data": data}
