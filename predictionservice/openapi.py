"""The OpenAPI 3.1 document of the service, served at GET /openapi.json, summarised in the manual
(docs/http-api.md) and rendered there (docs/openapi.md). Its paths, methods and path parameters
are the web app's routes, read from its url_map (web/meta.py hands them over as ``Route``s: this
library imports no web framework); what each operation says (summary, query parameters, request
body, responses) is declared here once, by the endpoint of the view that answers it, from the
schemas the views validate with. ``coverage`` names a route with no operation and an operation
with no route; a test holds it empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from predictionservice.defaults import MAX_BAD_LINES_NAMED, MAX_COMPARED, TASK_METRICS
from predictionservice.exceptions import STATUS
from predictionservice.feedback import FEEDBACK_RESPONSE, feedback_schema
from predictionservice.jobstore import KINDS, MAX_LIST, STATES
from predictionservice.openinference import DATATYPES, inference_request_schema
from predictionservice.validation import JOB, PREDICTALL, SCHEMA_BLOCK, predict_schema
from predictionservice.version import __version__

VERSION = __version__  # the document's info.version is the service's

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array"},
            },
        }
    },
}
JOB_ACCEPTED = {"type": "object", "required": ["job_id"], "properties": {"job_id": {"type": "string"}}}
COMPARE_REQUEST = {
    "type": "object",
    "required": ["models"],
    "properties": {
        "models": {
            "type": "array",
            "items": {"type": "string", "description": "a model key or a named model's reference"},
            "minItems": 2,
            "maxItems": MAX_COMPARED,
        }
    },
}
# The promotion gate's decision on a named model's later version (predictionservice.gate).
DECISION = {
    "type": "object",
    "description": "the promotion gate's: the name's production version and this one scored on this version's "
    "held-out rows, by the policy's metric",
    "required": ["decision", "reason", "metric", "new", "production", "rows", "production_version", "error"],
    "properties": {
        "decision": {"enum": ["promoted", "kept"], "description": "promoted: this version took production"},
        "reason": {"type": "string", "description": "why, in words (the figures, min_delta, rows left out)"},
        "metric": {"type": ["string", "null"]},
        "lower_is_better": {"type": "boolean"},
        "new": {"type": ["number", "null"], "description": "this version's figure (null: not measured)"},
        "production": {"type": ["number", "null"], "description": "production's figure on the same rows"},
        "production_version": {"type": ["integer", "null"], "description": "null: the name had no production"},
        "min_delta": {"type": ["number", "null"]},
        "auto_promote": {"type": ["boolean", "null"]},
        "rows": {"type": "integer", "description": "held-out rows both versions were scored on"},
        "heldout_rows": {"type": "integer", "description": "this version's held-out rows"},
        "unscorable_rows": {"type": "integer", "description": "held-out rows production cannot score (left out)"},
        "unscorable_reasons": {"type": "object", "additionalProperties": {"type": "integer"}},
        "error": {"type": ["string", "null"], "description": "why the gate could not compare (the version stays)"},
        "decided_at": {"type": "string"},
    },
}

COMPARISON = {
    "type": "object",
    "description": "COMPLETED comparisons (POST /models/compare): every model scored on the newest one's held-out "
    "rows that all of them can score",
    "properties": {
        "heldout_rows": {"type": "integer", "description": "the newest model's held-out rows"},
        "rows": {"type": "integer", "description": "the rows every model could score: each figure is over these"},
        "models": {
            "type": "array",
            "description": "newest first",
            "items": {
                "type": "object",
                "properties": {
                    "model_key": {"type": "string"},
                    "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
                    "unscorable_rows": {"type": "integer"},
                    "unscorable_reasons": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
        },
        "why_none": {"type": "string", "description": "present when no row could be compared"},
    },
}

_TEST = {
    "type": "object",
    "properties": {
        "statistic": {"type": ["number", "null"]},
        "p_value": {"type": ["number", "null"]},
        "psi": {"type": ["number", "null"]},
        "drifted": {"type": "boolean"},
    },
}
DRIFT_TRIGGER = {
    "type": "object",
    "description": 'the drift report that queued a retrain on drift (a schedule with "when": "drift")',
    "required": ["kind", "version", "model_key", "since", "until", "count", "drifted"],
    "properties": {
        "kind": {"enum": ["drift"]},
        "version": {"type": "integer", "description": "the production version whose predictions drifted"},
        "model_key": {"type": "string"},
        "since": {"type": "string", "description": "the window's start"},
        "until": {"type": "string", "description": "the window's end: the check's time"},
        "count": {"type": "integer", "description": "predictions in the window"},
        "drifted": {"type": "array", "items": {"type": "string"}, "description": "drifted features, largest PSI first"},
        "score_drifted": {"type": "boolean"},
        "features": {"type": "object", "additionalProperties": _TEST},
        "score": {"oneOf": [_TEST, {"type": "null"}]},
    },
}
JOB_STATUS = {
    "type": "object",
    "required": ["job_id", "status", "message", "progress"],
    "properties": {
        "job_id": {"type": "string"},
        "kind": {"enum": list(KINDS)},
        "status": {"enum": ["PENDING", "STARTED", "SUBMITTED", "COMPLETED", "FAILED"]},
        "message": {"type": "string"},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "attempts": {"type": "integer"},
        "created_at": {"type": "string"},
        "started_at": {"type": "string", "description": "when a worker started its last attempt (absent before)"},
        "updated_at": {"type": "string"},
        "model_key": {"type": "string", "description": "COMPLETED training jobs"},
        "metrics": {
            "type": "object",
            "description": "COMPLETED training jobs, measured on the held-out split: binary auc, area_under_pr, "
            "accuracy, log_loss; multi-class accuracy, f1, log_loss; regression rmse, mae, r2",
            "additionalProperties": {"type": "number"},
        },
        "decision": {
            **DECISION,
            "description": "COMPLETED training jobs that made version n > 1 of a name: the promotion gate's decision",
        },
        "rows": {"type": "integer", "description": "COMPLETED scoring jobs: documents written"},
        "comparison": COMPARISON,
        "invalid_rows": {"type": "integer", "description": "rows skipped because a field could not be encoded"},
        "request_id": {"type": "string", "description": "the X-Request-ID of the request that submitted the job"},
        "trigger": {**DRIFT_TRIGGER, "description": "a retrain on drift's job: the drift report that queued it"},
        "spark_ui": {"type": "string", "description": "address of the Spark UI while the job runs (spark_ui on)"},
        "lineage": {
            "type": "object",
            "description": "what the job runs: algorithm, input (and output) collection, label, model, "
            "description and tags of its document",
        },
        "cancelled": {
            "type": "object",
            "description": "a job cancelled by DELETE /jobs/{job_id} (FAILED): when and by whom",
            "properties": {"at": {"type": "string"}, "by": {"type": "string"}},
        },
        "history": {
            "type": "array",
            "description": "?history=1: every step, oldest first",
            "items": {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "message": {"type": "string"},
                    "progress": {"type": "number"},
                    "updated_at": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
}
NAMED = {
    "type": "object",
    "required": ["name", "version", "model_key"],
    "description": "the named model's version that answered (answers made from a reference)",
    "properties": {"name": {"type": "string"}, "version": {"type": "integer"}, "model_key": {"type": "string"}},
}
EXPLANATION = {
    "type": "object",
    "required": ["base", "contributions", "output"],
    "description": "with explain: base + the sum of the contributions is the model's output for the record",
    "properties": {
        "base": {"type": "number", "description": "the output at the training means (linear models)"},
        "contributions": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "one per schema feature (a categorical's one-hot columns summed into it)",
        },
        "output": {"enum": ["margin", "probability", "value"]},
    },
}
WARNINGS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "what was assumed to score the record: a category the model never saw, in a feature whose schema "
    'says "unknown": "ignore", encoded as none of them (absent: nothing assumed)',
}
RECORD_ERROR = {
    "type": "object",
    "required": ["error"],
    "description": "with on_error 'report': a record that cannot be scored, in its place",
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "every problem of the record"},
                "field": {"type": "string", "description": "the first field with a problem"},
                "details": {
                    "type": "array",
                    "description": "one per problem: {field, problem}",
                    "items": {"type": "object", "required": ["field", "problem"]},
                },
            },
        }
    },
}
CLASSIFICATION = {
    "type": "object",
    "required": ["prediction", "label", "probability", "probabilities"],
    "properties": {
        "prediction": {"type": "integer", "minimum": 0, "description": "the class index"},
        "label": {"description": "the label category of the prediction"},
        "probability": {
            "type": "number",
            "description": "binary: the positive class's (position 1) probability; multi-class: the predicted label's",
        },
        "probabilities": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "every label's probability (they sum to 1), or with top_probabilities k the k most "
            "probable, most probable first",
        },
        "explanation": EXPLANATION,
        "warnings": WARNINGS,
    },
}
REGRESSION = {
    "type": "object",
    "required": ["prediction"],
    "properties": {"prediction": {"type": "number"}, "explanation": EXPLANATION, "warnings": WARNINGS},
}
PREDICTION = {"oneOf": [CLASSIFICATION, {**REGRESSION, "not": {"required": ["label"]}}]}
PREDICT_RESPONSE = {
    "oneOf": [
        {"allOf": [{"type": "object", "properties": {"modelkey": {"type": "string"}, "model": NAMED}}, PREDICTION]},
        {
            "type": "object",
            "required": ["modelkey", "predictions"],
            "properties": {
                "modelkey": {"type": "string"},
                "model": NAMED,
                "predictions": {
                    "type": "array",
                    "items": {"oneOf": [PREDICTION, RECORD_ERROR]},
                    "description": "one per record, in order; with on_error 'report', a bad record's error in its "
                    "place",
                },
            },
        },
    ]
}
LINEAGE = {
    "type": "object",
    "properties": {
        "algorithm": {"type": "string"},
        "input_collection": {"type": ["string", "null"]},
        "label": {"type": ["string", "null"]},
        "task": {"enum": ["binary classification", "multi-class classification", "regression", None]},
    },
}
MODEL_SUMMARY = {
    "type": "object",
    "required": ["model_key", "name", "created_at", "num_features", "lineage"],
    "properties": {
        "model_key": {"type": "string"},
        "name": {"type": "string"},
        "created_at": {"type": ["string", "null"]},
        "metrics": {"type": ["object", "null"], "description": "null for a model stored without them (by hand)"},
        "num_features": {"type": "integer"},
        "description": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "lineage": LINEAGE,
    },
}
MODEL = {
    "type": "object",
    "required": ["model_key", "name", "schema"],
    "properties": {
        "model_key": {"type": "string"},
        "name": {"type": "string"},
        "task": {"enum": ["binary", "multiclass", "regression"]},
        "created_at": {"type": "string"},
        "coefficients": {"type": "array", "items": {"type": "number"}, "description": "binary and linear models"},
        "intercept": {"type": "number"},
        "coefficient_matrix": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}},
            "description": "multinomial models: a row per class",
        },
        "intercepts": {"type": "array", "items": {"type": "number"}},
        "feature_means": {
            "type": "array",
            "items": {"type": "number"},
            "description": "linear models: each encoded column's training mean, what explanations are measured from",
        },
        "feature_stds": {
            "type": "array",
            "items": {"type": "number"},
            "description": "linear models: each encoded column's training standard deviation (the page's standardized "
            "effects are coefficient times deviation)",
        },
        "trees": {"type": "array", "items": {"type": "object"}, "description": "forests: flat node arrays per tree"},
        "feature_importances": {"type": "object", "additionalProperties": {"type": "number"}},
        "numFeatures": {"type": "integer"},
        "numClasses": {"type": "integer"},
        "num_features": {"type": "integer"},
        "num_classes": {"type": "integer"},
        "description": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "lineage": LINEAGE,
        "feature_names": {"type": "array", "items": {"type": "string"}},
        "integral_features": {
            "type": "array",
            "items": {"type": "string"},
            "description": "numeric features whose training column held whole numbers (V2 metadata: INT64)",
        },
        "schema": SCHEMA_BLOCK,
        "parameters": JOB,
        "metrics": {"type": "object"},
        "training": {"type": "object"},
        "model": NAMED,
    },
}
DATASET = {
    "type": "object",
    "required": ["count", "fields", "sample"],
    "properties": {
        "dataset": {"type": "string"},
        "count": {"type": "integer"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        "sample": {"type": "array", "items": {"type": "object"}},
    },
}
BAD_LINE = {
    "type": "object",
    "required": ["line", "reason"],
    "properties": {
        "line": {"type": "integer", "description": "the line of the file (the header is line 1)"},
        "reason": {"type": "string"},
        "fields": {"type": "integer", "description": "a ragged row: its fields"},
        "expected": {"type": "integer", "description": "a ragged row: the header's fields"},
    },
}
LOADED = {
    "type": "object",
    "required": ["inserted", "dataset", "mode"],
    "properties": {
        "inserted": {"type": "integer"},
        "dataset": {"type": "string"},
        "mode": {"enum": ["replace", "append"]},
        "skipped": {"type": "integer", "description": "?on_error=skip: bad lines skipped, every one counted"},
        "bad_lines": {
            "type": "array",
            "maxItems": MAX_BAD_LINES_NAMED,
            "items": BAD_LINE,
            "description": "?on_error=skip: the first bad lines, each with its reason",
        },
    },
}
DATASET_ENTRY = {
    "type": "object",
    "required": ["dataset", "db", "collection", "count"],
    "properties": {
        "dataset": {"type": "string"},
        "db": {"type": "string"},
        "collection": {"type": "string"},
        "count": {"type": "integer"},
    },
}
HEALTH = {
    "type": "object",
    "required": ["status", "redis", "mongo", "workers"],
    "properties": {
        "status": {"type": "string"},
        "redis": {"type": "string"},
        "mongo": {"type": "string"},
        "workers": {"type": "integer", "description": "Celery workers that answered the last background ping"},
        "worker_names": {"type": "array", "items": {"type": "string"}, "description": "their names (-n)"},
        "version": {"type": "string", "description": "the service's version (the web server's)"},
    },
}

VERSION_ENTRY = {
    "type": "object",
    "required": ["version", "model_key", "created_at", "metrics", "decision"],
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "model_key": {"type": "string"},
        "created_at": {"type": ["string", "null"]},
        "metrics": {"type": ["object", "null"]},
        "decision": {"oneOf": [DECISION, {"type": "null"}], "description": "null: version 1, or not decided yet"},
        "trigger": {**DRIFT_TRIGGER, "description": "a version a retrain on drift made: the drift report"},
    },
}
POLICY = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "metric": {
            "enum": sorted({m for ms in TASK_METRICS.values() for m in ms}),
            "description": "a held-out metric of the name's task (default: auc binary, log_loss multi-class, rmse "
            "regression; lower is better for log_loss, rmse, mae)",
        },
        "min_delta": {"type": "number", "minimum": 0, "description": "how much better a new version must be"},
        "auto_promote": {"type": "boolean", "description": "whether a better version takes production itself"},
    },
}
SCHEDULE_BODY = {
    "type": "object",
    "description": "exactly one of every_seconds (at least the setting schedule_min_seconds) and cron; with "
    '"when": "drift" a tick retrains only when the window since the last check drifted',
    "minProperties": 1,
    "maxProperties": 2,
    "additionalProperties": False,
    "properties": {
        "every_seconds": {"type": "integer", "minimum": 1, "description": "retrain every so many seconds"},
        "cron": {"type": "string", "description": "five cron fields, UTC: minute hour day-of-month month day-of-week"},
        "when": {"enum": ["always", "drift"], "description": "always (the default) or drift"},
    },
}
LAST_CHECK = {
    "type": "object",
    "description": "a schedule on drift: its last check of the window (the next one starts at until)",
    "required": ["at", "since", "until", "outcome"],
    "properties": {
        "at": {"type": "string"},
        "since": {"type": "string"},
        "until": {"type": "string", "description": "where the next window starts (since again: not checked)"},
        "version": {"type": "integer"},
        "count": {"type": "integer"},
        "drifted": {"type": "array", "items": {"type": "string"}},
        "score_drifted": {"type": "boolean"},
        "outcome": {"enum": ["no predictions", "no drift", "retrained", "skipped", "failed", "error"]},
        "job_id": {"type": "string", "description": "retrained: the job queued"},
        "running_job": {"type": "string", "description": "skipped: the job of the name still queued or running"},
        "message": {"type": "string", "description": "skipped, failed, error: why"},
    },
}
SCHEDULE = {
    "type": "object",
    "required": ["created_at", "last_run_at", "next_run_at"],
    "properties": {
        **SCHEDULE_BODY["properties"],
        "created_at": {"type": "string"},
        "last_run_at": {"type": ["string", "null"], "description": "the scheduler's last tick for it"},
        "next_run_at": {"type": ["string", "null"], "description": "when it fires next"},
        "last_check": LAST_CHECK,
    },
}
RETRAIN = {
    "type": "object",
    "required": ["time", "trigger", "outcome"],
    "properties": {
        "time": {"type": "string"},
        "trigger": {"enum": ["manual", "schedule", "drift"]},
        "outcome": {"enum": ["queued", "skipped", "failed"]},
        "drifted": {"type": "array", "items": {"type": "string"}, "description": "drift: the drifted features"},
        "score_drifted": {"type": "boolean", "description": "drift: whether the score drifted"},
        "job_id": {"type": "string", "description": "the job queued"},
        "running_job": {"type": "string", "description": "the job of the name still queued or running (skipped)"},
        "message": {"type": "string", "description": "why the job was refused (failed)"},
        "overrides": {"type": "array", "items": {"type": "string"}, "description": "the fields overridden"},
    },
}
RETRAIN_BODY = {
    "type": "object",
    "description": "job document fields that override the last job document's (optional; checked like POST /train/)",
}
_DRIFT = {
    "type": "object",
    "properties": {
        "statistic": {"type": ["number", "null"], "description": "chi-square against the training bins"},
        "p_value": {"type": ["number", "null"]},
        "psi": {"type": ["number", "null"], "description": "population stability index"},
        "drifted": {"type": "boolean", "description": "p_value < drift_p_value and psi >= drift_min_psi"},
        "missing": {"type": "integer"},
        "bins": {"type": "array", "items": {"type": "string"}},
        "training": {"type": "array", "items": {"type": "integer"}},
        "live": {"type": "array", "items": {"type": "integer"}},
    },
}
MONITOR_REPORT = {
    "type": "object",
    "required": ["name", "version", "model_key", "since", "count", "quality", "drift", "drifted"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "integer"},
        "model_key": {"type": "string"},
        "since": {"type": "string", "format": "date-time"},
        "count": {"type": "integer"},
        "quality": {"type": "object", "description": "labelled, and the held-out metrics' names"},
        "drift": {
            "type": "object",
            "properties": {
                "features": {"type": "object", "additionalProperties": _DRIFT},
                "score": {"oneOf": [_DRIFT, {"type": "null"}]},
            },
        },
        "drifted": {"type": "array", "items": {"type": "string"}, "description": "largest PSI first"},
        "message": {"type": "string"},
    },
}
TRAFFIC_BODY = {
    "type": "object",
    "required": ["alias", "mode"],
    "additionalProperties": False,
    "description": 'shadow: {"alias", "mode": "shadow"}; split: {"alias", "mode": "split", "percent": p}',
    "properties": {
        "alias": {"type": "string", "description": "an alias of the name other than production (e.g. candidate)"},
        "mode": {
            "enum": ["shadow", "split"],
            "description": "shadow: the alias's version also scores every request to the bare name, off the "
            "request's path, its answer only logged (prediction log, variant shadow); split: it answers percent % "
            "of them (by a hash of the request's routing_key when it has one)",
        },
        "percent": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100, "description": "split only"},
    },
}
TRAFFIC = {
    "type": "object",
    "required": ["alias", "mode", "since"],
    "properties": {**TRAFFIC_BODY["properties"], "since": {"type": "string", "description": "when it was set"}},
}
REGISTRY_ENTRY = {
    "type": "object",
    "required": ["name", "aliases", "policy", "schedule", "versions", "history"],
    "properties": {
        "name": {"type": "string"},
        "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
        "policy": {**POLICY, "minProperties": 0, "additionalProperties": True},
        "schedule": {"oneOf": [SCHEDULE, {"type": "null"}]},
        "traffic": {"oneOf": [TRAFFIC, {"type": "null"}], "description": "the name's shadow or split, if any"},
        "versions": {"type": "array", "items": VERSION_ENTRY},
        "retrains": {"type": "array", "items": RETRAIN, "description": "retrains, newest first"},
        "history": {
            "type": "array",
            "description": "alias moves, newest first",
            "items": {
                "type": "object",
                "required": ["time", "alias", "from", "to", "why"],
                "properties": {
                    "time": {"type": "string"},
                    "alias": {"type": "string"},
                    "from": {"type": ["integer", "null"]},
                    "to": {"type": ["integer", "null"]},
                    "why": {"type": "string", "description": "manual, promoted, first version, new version"},
                },
            },
        },
    },
}
REGISTRY_SUMMARY = {
    "type": "object",
    "required": ["name", "aliases", "versions", "latest"],
    "properties": {
        "name": {"type": "string"},
        "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
        "versions": {"type": "integer", "description": "how many versions it has"},
        "latest": {"oneOf": [VERSION_ENTRY, {"type": "null"}]},
    },
}
ALIAS_MOVE = {
    "type": "object",
    "required": ["version"],
    "additionalProperties": False,
    "properties": {"version": {"type": "integer", "minimum": 1}},
}

V2_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
TENSOR_METADATA = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"enum": DATATYPES},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "parameters": {"type": "object"},
    },
}
V2_MODEL = {
    "type": "object",
    "required": ["name", "versions", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": TENSOR_METADATA, "description": "one per feature, named by its key"},
        "outputs": {"type": "array", "items": TENSOR_METADATA},
        "parameters": {"type": "object"},
    },
}
V2_INFER_RESPONSE = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string", "description": "the request's id, echoed"},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "datatype", "shape", "data"],
                "properties": {**TENSOR_METADATA["properties"], "data": {"type": "array"}},
            },
            "description": "the requested outputs; 'explanation' (asked for by name or with the parameter "
            '"explain": true) is FP64 [N, 1 + features]: each row the record\'s base, then one contribution '
            "per feature in the order of its parameters' 'columns', adding up to its 'output' (margin, "
            "probability or value) as /predict/'s explanation does",
        },
    },
}
_V2_ERRORS = {
    "400": "a malformed inference request, an unknown or missing input, or binary tensor data",
    "401": "missing or wrong bearer token (when a token is configured)",
    "403": "the key lacks the scope this route needs (the message names it)",
    "404": "unknown model",
    "409": "the 'explanation' output asked of a model stored before explanations existed (retrain it)",
    "413": "body too large",
    "415": "a Content-Type other than JSON (none at all is JSON)",
    "503": "Redis is down",
}

_ERRORS = {
    "400": "malformed JSON, or a field missing or of the wrong type (the message names it)",
    "401": "missing or wrong bearer token (when a token is configured)",
    "403": "the key lacks the scope this route needs (the message names it)",
    "404": "unknown job, model or dataset; a named model's unknown name, alias or version (the message names those "
    "it has)",
    "405": "wrong method",
    "409": "an append whose _id is already stored (nothing was merged), a cancel of a job that already ended, "
    "an explanation asked of a model stored before explanations existed (retrain it), or a delete of a model an "
    "alias points to (the message names the alias)",
    "413": "body too large",
    "415": "wrong content type",
    "429": "the job queue is full, or too many failed authentications from this address: try again after "
    "Retry-After seconds",
    "503": "a dependency (Redis, MongoDB) is down",
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    wanted = codes or tuple(_ERRORS)
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in wanted}


def _query(name: str, description: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


HISTORY = _query("history", "1 (or true, yes): add every step the job went through", {"enum": ["1", "true", "yes"]})


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


# The path parameters of every route, by the name its rule gives them (the rule's <job_id> is the
# document's {job_id}): declared once, picked for each path from its rule.
PATH_PARAMETERS = {
    "job_id": _path_param("job_id", "a job id issued by POST /train/ or POST /predictall/"),
    "db": _path_param("db", "database (not admin, local or config)"),
    "collection": _path_param("collection", "collection"),
    "key": _path_param(
        "key",
        "model key (the id of the training job), or a named model: <name> (its production version), "
        "<name>@<alias>, <name>/<version>",
    ),
    "name": _path_param("name", "a model name (1-64 of A-Za-z0-9._-, starting with a letter or digit)"),
    "alias": _path_param("alias", "an alias of the name's versions ([a-z][a-z0-9_-]{0,31}): production, candidate"),
    "version": _path_param("version", "a version number of the named model (1, 2, ...)"),
    "id": _path_param("id", "an API key's id (GET /keys/ lists them)"),
}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def _body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


@dataclass(frozen=True)
class Route:
    """One method of one served path as the web app's url_map has it (this module imports no web
    framework: web/meta.py reads the map): the path in the document's form ('/jobs/{job_id}'),
    the method in lower case, the view's endpoint name, and whether that endpoint answers this
    method only."""

    path: str
    method: str
    endpoint: str
    only_method: bool = True

    @property
    def key(self) -> str:
        """The operation's key in ``operations``: the endpoint, or 'endpoint method' for an
        endpoint that answers several methods (each needs a summary and responses of its own)."""
        return self.endpoint if self.only_method else f"{self.endpoint} {self.method}"

    def names(self) -> list[str]:
        """The path parameters, in the order the path has them."""
        return re.findall(r"{(\w+)}", self.path)


def operations(job: dict[str, Any], max_records: int, max_feedback: int = 1000) -> dict[str, dict[str, Any]]:
    """Every operation of the API by the endpoint of the view that answers it: its summary, query
    parameters, request body and responses, declared here once. Which paths and methods exist,
    and their path parameters, is the web app's url_map (``openapi_document``). job is the job
    document's schema, max_records the setting max_records_per_request, max_feedback the setting
    feedback_max_records."""
    return {
        **_job_operations(job),
        **_prediction_operations(max_records),
        **_feedback_operations(max_feedback),
        **_model_operations(),
        **_registry_operations(),
        **_dataset_operations(),
        **_service_operations(),
        **_access_operations(),
        **_v2_operations(max_records),
    }


def coverage(routes: Iterable[Route]) -> list[str]:
    """What keeps the document from being the served API, a sentence each: a route with no
    operation (it would be served undocumented), an operation no route answers (a documented
    path that is not served), a path parameter with no description. Empty when they agree; a
    test holds it empty for the app."""
    routes = list(routes)
    declared = operations(JOB, 1)
    served = {route.key for route in routes}
    names = {name for route in routes for name in route.names()}
    return [
        *(
            f"{route.method.upper()} {route.path} (endpoint {route.key!r}) has no operation: declare its "
            "summary and responses in predictionservice/openapi.py"
            for route in routes
            if route.key not in declared
        ),
        *(
            f"operation {key!r} of predictionservice/openapi.py is answered by no route"
            for key in declared.keys() - served
        ),
        *(
            f"path parameter {{{name}}} has no description in PATH_PARAMETERS"
            for name in names - PATH_PARAMETERS.keys()
        ),
    ]


def openapi_document(
    routes: Iterable[Route],
    *,
    max_records: int,
    max_feedback: int = 1000,
    secured: bool = False,
    job_schemas: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service: its paths and methods are the served routes (the
    web app's url_map, read by web/meta.py), each operation the one declared for its endpoint
    (``operations``), built from the schemas the views validate with. A route with no operation is
    left out (``coverage`` names it). max_records is the setting max_records_per_request, secured
    whether a bearer token is required; a job document is one of the offered algorithms'
    (job_schemas, by name) when they are given."""
    job = {"oneOf": list(job_schemas.values())} if job_schemas else JOB
    declared = operations(job, max_records, max_feedback)
    paths: dict[str, Any] = {}
    for route in routes:
        if route.key in declared:
            item = paths.setdefault(route.path, {})
            if route.names():
                item["parameters"] = [PATH_PARAMETERS[name] for name in route.names() if name in PATH_PARAMETERS]
            item[route.method] = declared[route.key]
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Prediction service",
            "version": VERSION,
            "description": "Train Spark MLlib models on MongoDB data and serve them over REST. "
            "Every route also answers without its trailing slash; every GET answers HEAD. A method a path does "
            "not list is 405 (the E405 response). Every answer carries an X-Request-ID header (the request's own "
            "when it sent a usable one). The /v2 routes speak the Open Inference Protocol V2; their errors are "
            '{"error": "<message>"}. Error codes: ' + ", ".join(sorted(STATUS)) + ".",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, "Job": job, "JobStatus": JOB_STATUS, "Schema": SCHEMA_BLOCK},
            "responses": {f"E{code}": _json(ERROR, text) for code, text in _ERRORS.items()},
        },
    }
    if secured:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


_ACCEPTED = {
    "description": "queued; poll the Location",
    "headers": {"Location": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": JOB_ACCEPTED}},
}


def _job_operations(job: dict[str, Any]) -> dict[str, Any]:
    status = _json(JOB_STATUS, "the job's state")
    submitted = {"202": _ACCEPTED, **_errors("400", "401", "404", "413", "415", "429", "503")}
    shown = {"200": status, **_errors("401", "404", "503")}
    listed = _json({"type": "object", "properties": {"jobs": {"type": "array", "items": JOB_STATUS}}}, "newest first")
    filters = [
        _query("kind", "only jobs of this kind", {"enum": list(KINDS)}),
        _query("status", "only jobs in this state", {"enum": list(STATES)}),
        _query("limit", "at most this many", {"type": "integer", "minimum": 1, "maximum": MAX_LIST, "default": 50}),
    ]
    return {
        "jobs.submit_training": _op("Submit a training job", submitted, requestBody=_body(job)),
        "jobs.training_status": _op("Status of a training job", shown, parameters=[HISTORY]),
        "jobs.predictall_status": _op("Status of a scoring job", shown, parameters=[HISTORY]),
        "jobs.any_job": _op("Status of any job", shown, parameters=[HISTORY]),
        "jobs.cancel_job": _op(
            "Cancel a job that has not ended: it ends FAILED as cancelled (a queued one never runs, a running "
            "one's Spark work is stopped)",
            {**shown, **_errors("409")},
        ),
        "jobs.list_jobs": _op(
            "Recent jobs, newest first", {"200": listed, **_errors("400", "401", "503")}, parameters=filters
        ),
        "jobs.submit_predictall": _op(
            "Score a whole collection with Spark into an output collection (replaced on success); with "
            "explain, each document also gets its explanation beside its score",
            {**submitted, **_errors("409")},
            requestBody=_body(PREDICTALL),
        ),
    }


def _prediction_operations(max_records: int) -> dict[str, Any]:
    return {
        "prediction.predict": _op(
            "Score one record ('record') or a micro-batch ('records') with a stored model",
            {
                "200": _json(PREDICT_RESPONSE, "predictions in request order"),
                **_errors("400", "401", "404", "409", "413", "415", "503"),
            },
            requestBody=_body(predict_schema(max_records)),
        ),
    }


def _feedback_operations(max_feedback: int) -> dict[str, Any]:
    return {
        "feedback.store_feedback": _op(
            "Store the true outcome ('label') of logged predictions, by the request id they were answered with "
            "(a batch's i-th record: '<request id>/<i>'); a label sent again replaces the last",
            {
                "200": _json(FEEDBACK_RESPONSE, "the labels stored and the log documents that carry them"),
                **_errors("400", "401", "403", "404", "415", "503"),
            },
            requestBody=_body(feedback_schema(max_feedback)),
        ),
    }


def _model_operations() -> dict[str, Any]:
    models = {"type": "object", "properties": {"models": {"type": "array", "items": MODEL_SUMMARY}}}
    return {
        "models.list_models": _op(
            "List the stored models", {"200": _json(models, "models, newest first"), **_errors("401", "503")}
        ),
        "models.show_model": _op(
            "One model with schema, parameters, metrics and coefficients",
            {"200": _json(MODEL, "the model"), **_errors("401", "404", "503")},
        ),
        "models.delete_model": _op(
            "Delete a model (409 while an alias of a named model points to it)",
            {"204": {"description": "deleted"}, **_errors("401", "404", "409", "503")},
        ),
        "models.compare_models": _op(
            "Compare models fairly: a worker scores every one on the newest one's held-out rows (those all can "
            "score) and GET /jobs/{job_id} gives each one's metrics over the same rows",
            {"202": _ACCEPTED, **_errors("400", "401", "404", "413", "415", "429", "503")},
            requestBody=_body(COMPARE_REQUEST),
        ),
    }


def _registry_operations() -> dict[str, Any]:
    entry = _json(REGISTRY_ENTRY, "the name's entry")
    listed = {"type": "object", "properties": {"models": {"type": "array", "items": REGISTRY_SUMMARY}}}
    return {
        "registry.list_names": _op(
            "The named models, with their aliases, version counts and latest versions",
            {"200": _json(listed, "names, by name"), **_errors("401", "503")},
        ),
        "registry.show_name": _op(
            "A named model: aliases, policy, schedule, versions and the history of alias moves",
            {"200": entry, **_errors("400", "401", "404", "503")},
        ),
        "registry.delete_name": _op(
            "Remove a name (its models stay under their keys)",
            {"204": {"description": "removed"}, **_errors("400", "401", "404", "503")},
        ),
        "registry.move_alias": _op(
            "Point an alias at a version (kept in the history, why 'manual')",
            {"200": entry, **_errors("400", "401", "404", "413", "415", "503")},
            requestBody=_body(ALIAS_MOVE),
        ),
        "registry.delete_alias": _op(
            "Remove an alias",
            {"204": {"description": "removed"}, **_errors("400", "401", "404", "503")},
        ),
        "registry.put_policy": _op(
            "Change the name's promotion policy",
            {"200": entry, **_errors("400", "401", "404", "413", "415", "503")},
            requestBody=_body(POLICY),
        ),
        "registry.retrain": _op(
            "Queue the name's last job document again, on its input as it is now (409 naming the job while "
            "one of the name is queued or running: the skip is recorded in the name's retrains)",
            {"202": _ACCEPTED, **_errors("400", "401", "404", "409", "413", "415", "429", "503")},
            requestBody={**_body(RETRAIN_BODY), "required": False},
        ),
        "registry.put_schedule": _op(
            "Retrain the name every so many seconds or on a cron schedule (replaces its schedule)",
            {"200": _json(SCHEDULE, "the schedule"), **_errors("400", "401", "404", "413", "415", "503")},
            requestBody=_body(SCHEDULE_BODY),
        ),
        "registry.show_schedule": _op(
            "The name's schedule, with its next run",
            {"200": _json(SCHEDULE, "the schedule"), **_errors("400", "401", "404", "503")},
        ),
        "registry.delete_schedule": _op(
            "Stop the name's schedule",
            {"204": {"description": "stopped"}, **_errors("400", "401", "404", "503")},
        ),
        "monitor.monitor": _op(
            "Quality and drift of a version's logged predictions against its training profile",
            {
                "200": _json(MONITOR_REPORT, "the report (count 0 and a message for an empty window)"),
                **_errors("400", "401", "404", "409", "503"),
            },
            parameters=[
                _query(
                    "since", "ISO 8601 time the window starts (default: monitor_window_seconds ago)", {"type": "string"}
                ),
                _query("version", "a version number or an alias (default: production)", {"type": "string"}),
            ],
        ),
        "registry.put_traffic": _op(
            "Shadow or split the requests to the bare name with another alias's version (replaces the setting; "
            "400 naming the field for an alias the name lacks, production, or a percent not in (0, 100))",
            {"200": _json(TRAFFIC, "the traffic setting"), **_errors("400", "401", "404", "413", "415", "503")},
            requestBody=_body(TRAFFIC_BODY),
        ),
        "registry.show_traffic": _op(
            "The name's traffic setting (404 when it has none)",
            {"200": _json(TRAFFIC, "the traffic setting"), **_errors("400", "401", "404", "503")},
        ),
        "registry.delete_traffic": _op(
            "End the name's shadow or split (404 when it has none)",
            {"204": {"description": "ended"}, **_errors("400", "401", "404", "503")},
        ),
    }


def _dataset_operations() -> dict[str, Any]:
    loaded = _json(LOADED, "loaded; with ?on_error=skip, the bad lines skipped: every one counted, the first named")
    upload = {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
    mode = {"name": "mode", "in": "query", "schema": {"enum": ["replace", "append"], "default": "replace"}}
    on_error = _query(
        "on_error",
        f"a CSV's bad lines: fail refuses the whole file (400 naming up to {MAX_BAD_LINES_NAMED} of them, every "
        "one counted); skip loads the good lines and answers the bad ones",
        {"enum": ["fail", "skip"], "default": "fail"},
    )
    label = {"name": "label", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1}}
    task = _query(
        "task",
        "what the label is for: classification (a value map) or regression (a number); by default text is "
        "classified and a number regressed",
        {"enum": ["classification", "regression"]},
    )
    choices = [
        _query(name, described, {"type": "string"})
        for name, described in (
            ("categorical", "comma-separated numeric fields of whole numbers to treat as categories (codes)"),
            ("exclude", "comma-separated fields to leave out (named in dropped)"),
            ("ignore_unknown", "comma-separated categorical features (or *) whose unseen categories encode as "
             "all zeros with a warning instead of a 400"),
        )
    ]  # fmt: skip
    fmt = _query("format", "csv (a header of the sampled fields, nested ones dotted) or jsonl (one document a "
                 "line)", {"enum": ["csv", "jsonl"], "default": "csv"})  # fmt: skip
    exported = {
        "description": "the whole collection, streamed",
        "content": {"text/csv": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}}},
    }
    listed = {"type": "object", "properties": {"datasets": {"type": "array", "items": DATASET_ENTRY}}}
    return {
        "datasets.list_datasets": _op(
            "Every collection with its count (never the system databases)",
            {"200": _json(listed, "collections by database"), **_errors("401", "503")},
        ),
        "datasets.export_dataset": _op(
            "The whole collection, streamed as CSV or JSON lines",
            {"200": exported, **_errors("400", "401", "404", "503")},
            parameters=[fmt],
        ),
        "datasets.put_dataset": _op(
            "Load a dataset (CSV with ';' or ',' detected, or a JSON array of objects); replaces it unless "
            "?mode=append",
            {"200": loaded, **_errors("400", "401", "409", "413", "415", "503")},
            parameters=[mode, on_error],
            requestBody=upload,
        ),
        "datasets.describe_dataset": _op(
            "Count, field types and a sample",
            {"200": _json(DATASET, "the dataset"), **_errors("400", "401", "404", "503")},
        ),
        "datasets.delete_dataset": _op(
            "Drop a dataset", {"204": {"description": "dropped"}, **_errors("400", "401", "404", "503")}
        ),
        "datasets.dataset_schema": _op(
            "A ready 'schema' block for a job document, inferred from the data",
            {
                "200": _json(SCHEMA_BLOCK, "the schema block, with 'dropped': the fields left out and why"),
                **_errors("400", "401", "404", "503"),
            },
            parameters=[label, task, *choices],
        ),
    }


def _service_operations() -> dict[str, Any]:
    return {
        "meta.health": _op(
            "Health of the service and its dependencies (no token needed)",
            {
                "200": _json(HEALTH, "all dependencies answer"),
                "503": _json({"allOf": [HEALTH, ERROR]}, "the same report, and the error naming what is down"),
            },
            security=[],
        ),
        "meta.openapi": _op("This document", {"200": {"description": "OpenAPI 3.1"}, **_errors("401")}),
        "meta.docs": _op(
            "Swagger UI over this document, served offline (its files are /docs/<file>; no token needed)",
            {"200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}},
            security=[],
        ),
        "metrics.metrics": _op(
            "Prometheus metrics in the text format (404 when the setting 'metrics' is off)",
            {
                "200": {"description": "the metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                **_errors("401", "404"),
            },
        ),
    }


KEY = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": {"enum": ["predict", "read", "train", "admin"]}},
        "created_at": {"type": ["string", "null"], "description": "null for a key of the setting api_keys"},
        "last_used_at": {"type": ["string", "null"]},
        "source": {"type": "string", "description": "'setting api_keys' for a key given by configuration"},
    },
}
NEW_KEY = {
    "type": "object",
    "required": ["name", "scopes"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "scopes": {"type": "array", "minItems": 1, "items": {"enum": ["predict", "read", "train", "admin"]}},
    },
}
AUDIT_ENTRY = {
    "type": "object",
    "properties": {
        name: {"type": ["string", "integer", "null"]}
        for name in ("time", "key", "key_id", "request_id", "method", "route", "target", "status", "client")
    },
}


def _access_operations() -> dict[str, Any]:
    """Keys and the audit trail: an admin key's routes."""
    created = {"allOf": [KEY, {"properties": {"key": {"type": "string", "description": "the secret, shown once"}}}]}
    listed = {"type": "object", "properties": {"keys": {"type": "array", "items": KEY}}}
    trail = {"type": "object", "properties": {"entries": {"type": "array", "items": AUDIT_ENTRY}}}
    limit = _query("limit", "at most this many", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
    return {
        "keys.create_key": _op(
            "Make an API key with scopes (admin): its secret is in this answer only",
            {"201": _json(created, "the key and its secret"), **_errors("400", "401", "403", "409", "415", "503")},
            requestBody=_body(NEW_KEY),
        ),
        "keys.list_keys": _op(
            "The API keys, without secrets (admin)",
            {"200": _json(listed, "oldest first"), **_errors("401", "403", "503")},
        ),
        "keys.revoke_key": _op(
            "Revoke an API key (admin): refused at once on every replica, its page sessions end; a key given by "
            "the setting api_keys is 409 (remove it there)",
            {"204": {"description": "revoked"}, **_errors("401", "403", "404", "409", "503")},
        ),
        "audit.list_audit": _op(
            "The audit trail of changes made through the API, newest first (admin)",
            {"200": _json(trail, "newest first"), **_errors("400", "401", "403", "503")},
            parameters=[limit],
        ),
    }


def _v2(schema: dict[str, Any], description: str, *codes: str) -> dict[str, Any]:
    return {"200": _json(schema, description), **{code: _json(V2_ERROR, _V2_ERRORS[code]) for code in codes}}


def _flag(flag: str, **more: Any) -> dict[str, Any]:
    """An object answering with the boolean flag (live, ready) and more required fields."""
    return {"type": "object", "required": [flag, *more], "properties": {flag: {"type": "boolean"}, **more}}


def _v2_operations(max_records: int) -> dict[str, Any]:
    server = {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    }
    not_ready = _json(_flag("ready", error={"type": "string"}), "not ready: Redis is down (and the error)")
    return {
        "v2.live": _op("V2: the server is live", _v2(_flag("live"), "live", "401")),
        "v2.ready": _op(
            "V2: the server is ready (Redis answers)", {**_v2(_flag("ready"), "ready", "401"), "503": not_ready}
        ),
        "v2.server_metadata": _op("V2: server metadata", _v2(server, "name, version, extensions", "401")),
        "v2.model_metadata": _op(
            "V2: model metadata (version '1')", _v2(V2_MODEL, "inputs and outputs", "401", "404", "503")
        ),
        "v2.model_ready": _op(
            "V2: the model can be served", _v2(_flag("ready", name={"type": "string"}), "ready", "401", "404", "503")
        ),
        "v2.infer": _op(
            "V2: score the rows of one input per feature, as /predict/ would",
            _v2(V2_INFER_RESPONSE, "the requested outputs", "400", "401", "404", "409", "413", "415", "503"),
            requestBody=_body(inference_request_schema(max_records)),
        ),
        "v2.version_metadata": _op(
            "V2: metadata of one version of a named model", _v2(V2_MODEL, "inputs and outputs", "401", "404", "503")
        ),
        "v2.version_ready": _op(
            "V2: one version of a named model can be served",
            _v2(_flag("ready", name={"type": "string"}), "ready", "401", "404", "503"),
        ),
        "v2.version_infer": _op(
            "V2: score with one version of a named model",
            _v2(V2_INFER_RESPONSE, "the requested outputs", "400", "401", "404", "413", "415", "503"),
            requestBody=_body(inference_request_schema(max_records)),
        ),
    }
