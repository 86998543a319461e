"""PredictionClient: the service's HTTP API as Python calls, for notebooks and scripts.

Every answer the API gives as an error becomes one exception type, PredictionServiceError,
carrying the API's code, message and details, so a caller handles "the service said no" in one
place. Jobs are objects that can wait for their end, with a tqdm progress bar on stderr.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests
from tqdm import tqdm

DEFAULT_URL = "http://localhost:5000"
URL_ENV, TOKEN_ENV = "PREDICTION_SERVICE_URL", "PREDICTION_SERVICE_TOKEN"
FINAL = ("COMPLETED", "FAILED")
BATCH = 1000  # records per POST /predict/ (the service takes up to 10,000 by default)
FEEDBACK_BATCH = 1000  # labels per POST /feedback/ (the service's default feedback_max_records)
EXPORT_CHUNK = 64 * 1024  # bytes read from an export's stream at a time
EXPORT_FORMATS = ("csv", "jsonl")  # what GET /datasets/<db>/<collection>/export?format= takes


class PredictionServiceError(Exception):
    """An error the service answered (its code, message and details), or one on the way to it
    (code 'unreachable', 'timeout', 'job_failed', 'invalid_answer')."""

    def __init__(self, message: str, code: str = "error", status: int | None = None, details: Any = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details if details is not None else []

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status else ""
        return f"{self.code}{where}: {self.message}"


class Job:
    """A training or scoring job the service queued: poll it, or wait for its end."""

    def __init__(self, client: PredictionClient, job_id: str, kind: str = "job"):
        self.client = client
        self.id = job_id
        self.kind = kind

    def __repr__(self) -> str:
        return f"Job({self.id!r}, kind={self.kind!r})"

    def status(self) -> dict[str, Any]:
        return self.client.status(self.id)

    def cancel(self) -> dict[str, Any]:
        """Cancel the job (DELETE /jobs/<id>): its status, FAILED as cancelled."""
        return self.client.cancel(self.id)

    def wait(
        self,
        progress: bool = False,
        timeout: float | None = None,
        poll: float = 0.5,
        raise_on_failure: bool = True,
        file: IO[str] | None = None,
    ) -> dict[str, Any]:
        """The job's final status. With progress, a tqdm bar (on stderr) moves with the job's
        progress and shows its message. A FAILED job raises (code 'job_failed', the job's
        message) unless raise_on_failure is False; timeout (seconds) raises code 'timeout'."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = tqdm(total=100, disable=not progress, file=file or sys.stderr, unit="%", bar_format=_BAR)
        try:
            while True:
                status = self.status()
                bar.update(round(status.get("progress", 0.0) * 100) - bar.n)
                bar.set_postfix_str(f"{status['status']}: {status.get('message', '')}"[:120])
                if status["status"] in FINAL:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise PredictionServiceError(f"job {self.id} not finished after {timeout} s", "timeout")
                time.sleep(poll)
        finally:
            bar.close()
        if status["status"] == "FAILED" and raise_on_failure:
            raise PredictionServiceError(status.get("message", "the job failed"), "job_failed", details=[status])
        return status


_BAR = "{l_bar}{bar}|{postfix}"  # "45%|████▌     |, SUBMITTED: fitting ..."


class PredictionClient:
    """The prediction service at url (default $PREDICTION_SERVICE_URL, else localhost:5000),
    with a bearer token when it needs one (default $PREDICTION_SERVICE_TOKEN)."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60.0):
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.timeout = timeout
        self.session = requests.Session()
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"

    def __repr__(self) -> str:
        return f"PredictionClient({self.url!r})"

    # ------------------------------------------------------------------------------ HTTP

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call of the API; any answer but a success raises PredictionServiceError."""
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise PredictionServiceError(f"cannot reach {self.url}: {exc}", "unreachable") from None
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise PredictionServiceError(
                f"{method} {path} answered {response.status_code} with no JSON", "invalid_answer", response.status_code
            ) from None

    def _post(self, path: str, document: Any, headers: Mapping[str, str] | None = None) -> Any:
        body = json.dumps(document, default=_plain, allow_nan=False)
        return self._json("POST", path, data=body, headers={"Content-Type": "application/json", **(headers or {})})

    # ----------------------------------------------------------------------------- datasets

    def load_csv(self, source: str | Path | IO[bytes] | bytes, dataset: str, mode: str = "replace") -> dict:
        """Upload a CSV (a path, an open binary file or bytes) into dataset 'db.collection',
        replacing it (or mode='append'). The service's answer: {"inserted": n, ...}."""
        path = _dataset_path(dataset)
        headers = {"Content-Type": "text/csv"}
        if isinstance(source, (str, Path)):
            with open(source, "rb") as body:
                return self._json("PUT", path, data=body, headers=headers, params={"mode": mode})
        return self._json("PUT", path, data=source, headers=headers, params={"mode": mode})

    def load_records(self, records: Any, dataset: str, mode: str = "replace") -> dict:
        """Upload records (a list of dicts or a pandas DataFrame) into dataset 'db.collection'."""
        body = json.dumps(_records_of(records), default=_plain, allow_nan=False)
        headers = {"Content-Type": "application/json"}
        return self._json("PUT", _dataset_path(dataset), data=body, headers=headers, params={"mode": mode})

    def dataset(self, dataset: str) -> dict:
        """A dataset's count, fields and a sample."""
        return self._json("GET", _dataset_path(dataset))

    def schema(self, dataset: str, label: str, task: str | None = None) -> dict:
        """The schema block the service infers for dataset with label as the label; task
        ('classification' or 'regression') overrides the label's kind (text is classified, a
        number regressed)."""
        params = {"label": label, **({"task": task} if task else {})}
        return self._json("GET", _dataset_path(dataset) + "/schema", params=params)

    def export(self, dataset: str, target: str | Path | IO[bytes], format: str = "csv") -> int:
        """Download dataset 'db.collection' as the service exports it (format 'csv' or 'jsonl')
        into target, a path or an open binary file (sys.stdout.buffer), streamed: never held
        whole in memory. A path is written only once the service answered with the export (an
        error raises and leaves no file). The number of bytes written."""
        response = self.request("GET", _dataset_path(dataset) + "/export", params={"format": format}, stream=True)
        with response:
            if isinstance(target, (str, Path)):
                with open(target, "wb") as out:
                    return _copy(response, out)
            return _copy(response, target)

    # --------------------------------------------------------------------------------- jobs

    def train(self, job: Mapping[str, Any] | str | Path, **changes: Any) -> Job:
        """Submit a training job (a job document, or the path of one, with changes on top)."""
        document = json.loads(Path(job).read_text()) if isinstance(job, (str, Path)) else dict(job)
        answer = self._post("/train/", {**document, **changes})
        return Job(self, answer["job_id"], "training")

    def predict_all(self, model_key: str, input_collection: str, output_collection: str, explain: bool = False) -> Job:
        """Score a whole collection with Spark into output_collection (replaced on success);
        explain: each scored document also gets its 'explanation' beside its score."""
        document = {"modelkey": model_key, "inputCollection": input_collection, "outputCollection": output_collection}
        answer = self._post("/predictall/", {**document, **({"explain": True} if explain else {})})
        return Job(self, answer["job_id"], "predictall")

    def job(self, job_id: str) -> Job:
        return Job(self, job_id)

    def status(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/jobs/{quote(job_id, safe='')}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job that has not ended: its status, now FAILED as cancelled (a job that already
        ended raises, code 'conflict')."""
        return self._json("DELETE", f"/jobs/{quote(job_id, safe='')}")

    def jobs(self, kind: str | None = None, status: str | None = None, limit: int | None = None) -> list[dict]:
        """Recent jobs, newest first."""
        query = {k: v for k, v in {"kind": kind, "status": status, "limit": limit}.items() if v is not None}
        return self._json("GET", "/jobs/", params=query)["jobs"]

    # ------------------------------------------------------------------------------- models

    def predict(
        self,
        model_key: str,
        records: Any,
        top_probabilities: int | None = None,
        explain: bool = False,
        request_id: str | None = None,
    ) -> Any:
        """model_key: a model key or a named model's reference (``bank``, ``bank@candidate``,
        ``bank/3``; one record's answer then says which version served it, in ``model``).
        One record (a dict) gives one answer (a dict); many (a list) a list of answers in
        their order, sent in batches; a pandas DataFrame gives a DataFrame of answers with its
        index (a 'probabilities' column of dicts for classifiers). top_probabilities k: only the
        k most probable labels in 'probabilities' (what a model of many classes needs). explain:
        each answer also has its 'explanation', {"base", "contributions": {feature: number},
        "output"} adding up to the model's output (a DataFrame: an 'explanation' column of dicts);
        a model stored before explanations existed raises, code 'conflict'. request_id: the
        X-Request-ID the request is sent with, what ``feedback`` names it by (a list's i-th
        record: '<request_id>/<i>'; a list of more than one request's worth of records is refused);
        otherwise the service makes one."""
        headers = {} if request_id is None else {"X-Request-ID": request_id}
        options: dict[str, Any] = {} if top_probabilities is None else {"top_probabilities": top_probabilities}
        if explain:  # only when asked: a service older than explanations still answers the rest
            options["explain"] = True
        if isinstance(records, Mapping):
            answer = self._post("/predict/", {"modelkey": model_key, "record": _clean(records), **options}, headers)
            answer.pop("modelkey", None)
            return answer
        rows = _records_of(records)
        if request_id is not None and len(rows) > BATCH:
            raise ValueError(f"a request_id names one request: at most {BATCH} records with it")
        answers: list[dict[str, Any]] = []
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            answers += self._post("/predict/", {"modelkey": model_key, "records": batch, **options}, headers)[
                "predictions"
            ]
        if _is_frame(records):
            import pandas  # the caller has it: it passed a DataFrame

            return pandas.DataFrame(answers, index=records.index)
        return answers

    def feedback(self, request_id: str, label: Any) -> dict[str, int]:
        """The true outcome of a logged prediction (its request id, as the answer's X-Request-ID
        said or ``predict``'s request_id; a batch's i-th record: '<id>/<i>'): a class of the
        model, or a number for a regressor. Sent again, the last label stays. The service's
        answer: {"stored": 1, "documents": n}."""
        return self._post("/feedback/", {"request_id": request_id, "label": _label(label)})

    def feedback_many(self, labels: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, int]:
        """Many outcomes ({request_id: label} or (request_id, label) pairs), sent in batches;
        the answers' counts added up. A batch the service refuses raises, and the batches
        before it stay stored."""
        pairs = list(labels.items() if isinstance(labels, Mapping) else labels)
        total = {"stored": 0, "documents": 0}
        for start in range(0, len(pairs), FEEDBACK_BATCH):
            records = [{"request_id": i, "label": _label(label)} for i, label in pairs[start : start + FEEDBACK_BATCH]]
            answer = self._post("/feedback/", {"records": records})
            total = {key: total[key] + answer[key] for key in total}
        return total

    def models(self) -> list[dict]:
        """Stored models, newest first."""
        return self._json("GET", "/models/")["models"]

    def model(self, key: str) -> dict:
        """One model: schema, parameters, metrics, coefficients or trees."""
        return self._json("GET", f"/models/{quote(key, safe='')}")

    def delete_model(self, key: str) -> None:
        self.request("DELETE", f"/models/{quote(key, safe='')}")

    def health(self) -> dict:
        return self._json("GET", "/health")

    # ------------------------------------------------------------------------ named models

    def registry(self, name: str | None = None) -> Any:
        """The named models (a list: name, aliases, versions, latest), or one name's entry (name,
        aliases, policy, schedule, versions with their metrics and decisions, history)."""
        if name is None:
            return self._json("GET", "/registry/")["models"]
        return self._json("GET", f"/registry/{quote(name, safe='')}")

    def promote(self, name: str, version: int, alias: str = "production") -> dict:
        """Point the name's alias (default production) at version: the name's entry, the move
        newest in its history. Predictions by the name (or name@alias) answer from it at once."""
        path = f"/registry/{quote(name, safe='')}/aliases/{quote(alias, safe='')}"
        body = json.dumps({"version": version})
        return self._json("PUT", path, data=body, headers={"Content-Type": "application/json"})

    def named_model(self, name: str) -> dict:
        """One name's entry, as ``registry(name)``: aliases, policy, schedule, versions, the
        history of alias moves, retrains."""
        return self.registry(name)

    def retrain(self, name: str, **overrides: Any) -> Job:
        """Queue the name's last job document again (overrides: fields replacing its own, e.g.
        numFolds=2). While a job of the name is queued or running the service skips it: raises,
        code 'conflict', the running job's id in details[0]['job_id']."""
        path = _name_path(name) + "/retrain"
        answer = self._post(path, overrides) if overrides else self._json("POST", path)
        return Job(self, answer["job_id"], "training")

    def schedule(
        self, name: str, every_seconds: int | None = None, cron: str | None = None, when: str | None = None
    ) -> dict:
        """Retrain the name every so many seconds, or on a cron schedule ("0 3 * * *": 03:00 UTC
        daily), replacing its schedule: the schedule with its next run. when="drift": each tick
        retrains only when the predictions logged since the last check drifted (the schedule's
        "last_check" says what the last check found)."""
        if (every_seconds is None) == (cron is None):
            raise ValueError("give one of every_seconds and cron")
        body: dict = {"every_seconds": every_seconds} if every_seconds is not None else {"cron": cron}
        if when is not None:
            body["when"] = when
        return self._json("PUT", _name_path(name) + "/schedule", json=body)

    def get_schedule(self, name: str) -> dict:
        """The name's schedule with its last and next runs (none: raises, code 'not_found')."""
        return self._json("GET", _name_path(name) + "/schedule")

    def delete_schedule(self, name: str) -> None:
        """Stop the name's schedule."""
        self.request("DELETE", _name_path(name) + "/schedule")

    def traffic(
        self, name: str, shadow: str | None = None, split: str | None = None, percent: float | None = None
    ) -> dict:
        """Shadow or split the requests to the bare name with one of its aliases (the candidate),
        replacing its traffic setting: shadow=alias scores every request with it too, off the
        request's path (logged as variant 'shadow', never returned); split=alias with percent
        (0 < percent < 100) lets it answer that share (a request's 'routing_key' always lands on
        the same side). The setting stored: {"alias", "mode", "percent" (a split's), "since"}. An
        alias the name lacks, production or a bad percent raises, code 'invalid_request'."""
        if (shadow is None) == (split is None):
            raise ValueError("give one of shadow and split (an alias of the name)")
        mode, alias = ("shadow", shadow) if shadow is not None else ("split", split)
        body = {"alias": alias, "mode": mode, **({} if percent is None else {"percent": percent})}
        return self._json("PUT", _name_path(name) + "/traffic", json=body)

    def get_traffic(self, name: str) -> dict:
        """The name's traffic setting, as ``traffic`` stored it (none: raises, code 'not_found')."""
        return self._json("GET", _name_path(name) + "/traffic")

    def delete_traffic(self, name: str) -> None:
        """End the name's shadow or split: production alone answers the bare name again (none to
        end: raises, code 'not_found')."""
        self.request("DELETE", _name_path(name) + "/traffic")

    def monitor(self, name: str, since: Any = None, version: int | str | None = None) -> dict:
        """Quality and drift of a named model's logged predictions against its training profile:
        {"count", "quality": {"labelled", <metric>...}, "drift": {"features": {...}, "score"},
        "drifted": [...]}. since: an ISO 8601 string or a datetime (default: the server's window,
        24 h); version: a number or an alias (default: production). A model stored before
        training profiles existed raises, code 'conflict' (retrain it)."""
        if since is not None and hasattr(since, "isoformat"):
            since = since.isoformat()
        query = {k: v for k, v in {"since": since, "version": version}.items() if v is not None}
        return self._json("GET", f"/registry/{quote(name, safe='')}/monitor", params=query)


def _error_of(response: requests.Response) -> PredictionServiceError:
    """The API's error envelope as an exception; a body that is not one still names the status."""
    try:
        error = response.json()["error"]
        if isinstance(error, str):  # the /v2/ protocol's shape
            return PredictionServiceError(error, "error", response.status_code)
        return PredictionServiceError(error["message"], error["code"], response.status_code, error.get("details"))
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason
        return PredictionServiceError(f"HTTP {response.status_code}: {text}", "http_error", response.status_code)


def _name_path(name: str) -> str:
    return f"/registry/{quote(name, safe='')}"


def _dataset_path(dataset: str) -> str:
    db, dot, collection = dataset.partition(".")
    if not (db and dot and collection):
        raise PredictionServiceError(f"a dataset is named 'db.collection', not {dataset!r}", "invalid_request")
    return f"/datasets/{quote(db, safe='')}/{quote(collection, safe='')}"


def _copy(response: requests.Response, out: IO[bytes]) -> int:
    """A streamed answer's body into out, a chunk at a time (as sent, nothing decoded)."""
    written = 0
    try:
        for chunk in response.iter_content(EXPORT_CHUNK):
            out.write(chunk)
            written += len(chunk)
    except requests.RequestException as exc:
        raise PredictionServiceError(f"the answer broke off after {written} bytes: {exc}", "unreachable") from None
    out.flush()
    return written


def _is_frame(records: Any) -> bool:
    return hasattr(records, "to_dict") and hasattr(records, "columns") and hasattr(records, "index")


def _records_of(records: Any) -> list[dict[str, Any]]:
    if _is_frame(records):
        records = records.to_dict(orient="records")
    if isinstance(records, (str, bytes)) or not isinstance(records, Iterable):
        raise TypeError("records must be a dict, a list of dicts or a pandas DataFrame")
    return [_clean(record) for record in records]


def _clean(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as JSON takes it: NaN (pandas' missing value) is null."""
    return {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}


def _label(value: Any) -> Any:
    """A label as JSON takes it: a numpy scalar as a Python one, anything else as it is."""
    return value.item() if hasattr(value, "item") else value


def _plain(value: Any) -> Any:
    """numpy scalars (what a DataFrame or an array holds) as Python numbers."""
    if hasattr(value, "item"):
        item = value.item()
        return None if isinstance(item, float) and math.isnan(item) else item
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
