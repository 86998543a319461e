"""The registry of named models (docs/API.md, "Named models"): what consumers call a model by,
while its versions come and go under their model keys.

It lives in Redis database 1 beside the models (the model store's client and key prefix), in
reserved keys (``__registry…``, modelstore.RESERVED: no model listing shows them):

* ``__registry__:<name>``: the name's entry, one JSON document: its versions (number, model key,
  created_at, metrics, the promotion gate's ``decision``), aliases (alias -> version), history
  (alias moves, newest first), policy, schedule, retrains (queued, skipped or failed, newest
  first), the next version number, and ``last_job``: the job document (as it ran, defaults
  applied, credentials of its URIs kept: a retrain connects with them; never shown) of the
  name's latest version, written in the transaction that adds the version. A retrain queues it
  again; a job that fails or is cancelled leaves it as it was;
* ``__registry_names__``: the set of names (the listing);
* ``__registry_keys__``: model key -> name (a model's version is found from its key: a delete of
  a model an alias points to is refused, and a deleted model leaves its name's versions);
* ``__registry_tokens__``: name -> a random token replaced at every change, so a web process
  whose change subscription is down checks a cached resolution with one HGET.

Every change is one MULTI/EXEC under WATCH of what it read (a version is added in the very
transaction that stores its model), and publishes ``__registry__:<name>`` on the model store's
change channel, so every web process drops its resolutions of that name (references.References).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import redis

from predictionservice.defaults import (
    POLICY_AUTO_PROMOTE,
    POLICY_METRICS,
    POLICY_MIN_DELTA,
    REGISTRY_HISTORY,
    REGISTRY_RETRAINS,
    TASK_METRICS,
)
from predictionservice.exceptions import (
    AliasInUse,
    BadAlias,
    BadName,
    InvalidRequest,
    NotFound,
    UnknownAlias,
    UnknownName,
    UnknownVersion,
    shown,
)
from predictionservice.modelstore import RESERVED, ModelStore

ENTRY = "__registry__:"  # + name: the entry; also the change message of the name
NAMES = "__registry_names__"
KEYS = "__registry_keys__"
TOKENS = "__registry_tokens__"

NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
ALIAS = r"[a-z][a-z0-9_-]{0,31}"
VERSION = r"[1-9][0-9]{0,8}"
MAX_VERSION_DIGITS = 9
MAX_REFERENCE = 64 + 1 + 32  # name@alias, the longest reference: longer text is a key, never parsed
_NAME = re.compile(NAME)
_ALIAS = re.compile(ALIAS)
_MODEL_KEY = re.compile(r"[0-9a-fA-F]{32}")  # a model key's form (a job id): never a name
# A reference other than a bare name: <name>@<alias> or <name>/<version>.
_QUALIFIED = re.compile(rf"({NAME})(?:@({ALIAS})|/({VERSION}))")
PRODUCTION, CANDIDATE = "production", "candidate"
# Why an alias moved (the history's "why"): docs/API.md's three, and a new version's candidate.
MANUAL, PROMOTED, FIRST_VERSION, NEW_VERSION = "manual", "promoted", "first version", "new version"
UNDONE = "the promoting job was cancelled"  # production given back when a promoted version is undone
SHOWN_NAMES = 20  # names a 404 for an unknown one lists


def is_model_key(text: str) -> bool:
    """A model key's form (32 hexadecimal digits, a job id): no name has it."""
    return _MODEL_KEY.fullmatch(text) is not None


def check_name(name: Any, field: str = "model") -> str:
    """name, when it can name a model; BadName (400) naming what is wrong otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadName(
            f"{field} {shown(str(name))} is not a model name: 1-64 characters of A-Za-z0-9._-, starting with a "
            "letter or digit",
            details=[{"field": field, "problem": "not a model name"}],
        )
    if is_model_key(name):
        raise BadName(
            f"{field} {shown(name)} has the form of a model key (32 hexadecimal characters): choose another name",
            details=[{"field": field, "problem": "a model key's form"}],
        )
    return name


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise BadAlias(
            f"alias {shown(str(alias))} is not an alias: a lower-case letter, then up to 31 of a-z0-9_-",
            details=[{"field": "alias", "problem": "not an alias"}],
        )
    return alias


def parse_reference(ref: str) -> tuple[str, str | None, int | None] | None:
    """(name, alias, version) of a reference: ``name@alias``, ``name/version`` or a bare
    ``name`` (alias and version None: production, if the name is registered); None for a model
    key's form or any text that names no model of the registry."""
    if len(ref) > MAX_REFERENCE or is_model_key(ref):
        return None
    if _NAME.fullmatch(ref):
        return ref, None, None
    match = _QUALIFIED.fullmatch(ref)
    if match is None:
        return None
    name, alias, version = match.groups()
    if is_model_key(name):
        return None
    return name, alias, int(version) if version else None


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_entry(name: str, task: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "created_at": now(),
        "task": task,
        "next_version": 1,
        "versions": [],
        "aliases": {},
        "history": [],
        "policy": {"metric": None, "min_delta": POLICY_MIN_DELTA, "auto_promote": POLICY_AUTO_PROMOTE},
        "schedule": None,
        "retrains": [],
        "traffic": None,
    }


def policy_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The policy in effect: the metric chosen, or the default of the name's task."""
    policy = dict(entry["policy"])
    if policy.get("metric") is None:
        policy["metric"] = POLICY_METRICS.get(entry.get("task") or "", None)
    return policy


def version_view(version: dict[str, Any]) -> dict[str, Any]:
    """A version as the API shows it; ``trigger`` only on a version a drift check retrained."""
    shown_ = {k: version.get(k) for k in ("version", "model_key", "created_at", "metrics", "decision")}
    return {**shown_, **({"trigger": version["trigger"]} if version.get("trigger") else {})}


def view(entry: dict[str, Any]) -> dict[str, Any]:
    """GET /registry/<name>."""
    return {
        "name": entry["name"],
        "aliases": dict(entry["aliases"]),
        "policy": policy_of(entry),
        "schedule": entry.get("schedule"),
        "traffic": entry.get("traffic"),
        "versions": [version_view(v) for v in entry["versions"]],
        "history": list(entry["history"]),
        "retrains": list(entry.get("retrains", [])),
    }


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    """A name as GET /registry/ lists it."""
    versions = entry["versions"]
    return {
        "name": entry["name"],
        "aliases": dict(entry["aliases"]),
        "versions": len(versions),
        "latest": version_view(versions[-1]) if versions else None,
    }


def _moved(entry: dict[str, Any], alias: str, to: int | None, why: str) -> None:
    """Point alias at version to (None: remove it) and keep the move in the history."""
    before = entry["aliases"].get(alias)
    if to is None:
        entry["aliases"].pop(alias, None)
        if (entry.get("traffic") or {}).get("alias") == alias:
            entry["traffic"] = None  # its candidate is gone: the traffic setting ends with it
    else:
        entry["aliases"][alias] = to
    move = {"time": now(), "alias": alias, "from": before, "to": to, "why": why}
    entry["history"] = [move, *entry["history"]][:REGISTRY_HISTORY]


def new_version_aliases(entry: dict[str, Any], version: int) -> list[tuple[str, str]]:
    """The aliases a new version takes at once, with why: the first version is production; a
    later one is the candidate (the promotion gate decides later whether it takes production)."""
    return [(PRODUCTION, FIRST_VERSION)] if version == 1 else [(CANDIDATE, NEW_VERSION)]


class Registry:
    """The named models of one model store (its client, prefix and change channel)."""

    def __init__(self, store: ModelStore):
        self.store = store
        self.client = store.client
        prefix = store.prefix
        self.names_key, self.keys_key, self.tokens_key = prefix + NAMES, prefix + KEYS, prefix + TOKENS
        self._entry_prefix = prefix + ENTRY

    # ------------------------------------------------------------------------------ reading

    def entry_key(self, name: str) -> str:
        return self._entry_prefix + name

    def _read(self, client: Any, name: str) -> dict[str, Any] | None:
        raw = client.get(self.entry_key(name))
        return json.loads(raw) if raw is not None else None

    def names(self) -> list[str]:
        return sorted(raw.decode() for raw in self.client.smembers(self.names_key))

    def entry(self, name: str) -> dict[str, Any]:
        """The name's stored entry; UnknownName (404, naming names that exist) when there is none."""
        check_name(name, "name")
        found = self._read(self.client, name)
        if found is None:
            raise self.unknown(name)
        return found

    def unknown(self, name: str) -> UnknownName:
        names = self.names()
        more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
        listed = ", ".join(names[:SHOWN_NAMES]) + more
        return UnknownName(
            f"no model named {shown(name)} ({'names: ' + listed if names else 'no model has a name yet'})",
            details=[{"field": "name", "problem": "unknown name", "names": names[:SHOWN_NAMES]}],
        )

    def show(self, name: str) -> dict[str, Any]:
        return view(self.entry(name))

    def listing(self) -> list[dict[str, Any]]:
        names = self.names()
        raws = self.client.mget([self.entry_key(n) for n in names]) if names else []
        return [summary(json.loads(raw)) for raw in raws if raw is not None]

    def token(self, name: str) -> str | None:
        value = self.client.hget(self.tokens_key, name)
        return value.decode() if value is not None else None

    def table(self, name: str) -> tuple[str | None, dict[str, Any] | None]:
        """(token, what resolving the name needs: aliases and version -> model key), read together;
        (None, None) for a name not registered."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self.entry_key(name))
            pipe.hget(self.tokens_key, name)
            raw, token = pipe.execute()
        if raw is None:
            return None, None
        entry = json.loads(raw)
        versions = {v["version"]: v["model_key"] for v in entry["versions"]}
        table = {"aliases": entry["aliases"], "versions": versions, "traffic": entry.get("traffic")}
        return (token.decode() if token else None), table

    def name_of(self, key: str) -> str | None:
        """The name a model key is a version of, if any."""
        value = self.client.hget(self.keys_key, key)
        return value.decode() if value is not None else None

    def versions_of(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Model key -> {"name", "version", "aliases"} for the keys that are versions of a name
        (what the pages show beside a model): one HMGET and one MGET, however many keys."""
        names = [n.decode() if n is not None else None for n in self.client.hmget(self.keys_key, keys)] if keys else []
        wanted = sorted({n for n in names if n is not None})
        raws = self.client.mget([self.entry_key(n) for n in wanted]) if wanted else []
        entries = {n: json.loads(raw) for n, raw in zip(wanted, raws, strict=True) if raw is not None}
        found: dict[str, dict[str, Any]] = {}
        for key, name in zip(keys, names, strict=True):
            entry = entries.get(name) if name is not None else None
            version = next((v["version"] for v in entry["versions"] if v["model_key"] == key), None) if entry else None
            if version is not None:
                aliases = sorted(a for a, v in entry["aliases"].items() if v == version)
                found[key] = {"name": name, "version": version, "aliases": aliases}
        return found

    # ----------------------------------------------------------------------------- writing

    def _transact(self, watched: Iterable[str], build: Callable[[Any], Callable[[Any], Any]]) -> Any:
        """One MULTI/EXEC: build reads (the watched keys unchanged until EXEC, else it runs
        again) and answers the writer, which queues the writes; the writer's answer is returned.
        A ServiceError raised by build leaves everything as it was."""
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(*watched)
                    write = build(pipe)
                    pipe.multi()
                    result = write(pipe)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def _queue_entry(self, pipe: Any, entry: dict[str, Any]) -> None:
        """Queue the entry's write, its new token and its change message."""
        name = entry["name"]
        pipe.set(self.entry_key(name), json.dumps(entry, separators=(",", ":")))
        pipe.sadd(self.names_key, name)
        pipe.hset(self.tokens_key, name, uuid.uuid4().hex)
        pipe.publish(self.store.channel, ENTRY + name)

    def _changed(self, *messages: str) -> None:
        for message in messages:
            self.store._changed(message)

    def add_version(
        self, name: str, key: str, model: dict[str, Any], job: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Store model under key and make it the next version of name, in one transaction (and
        publish both changes). A key already a version of the name (a redelivered job's model
        saved again) stays that version. job, the document the model was trained from, becomes
        the name's ``last_job`` (what a retrain queues again). The version's view is answered."""
        check_name(name)
        entry_key = self.entry_key(name)

        def build(pipe: Any) -> Callable[[Any], Any]:
            entry = self._read(pipe, name) or new_entry(name, model.get("task"))
            known = next((v for v in entry["versions"] if v["model_key"] == key), None)
            version = known or self._append(entry, key, model)
            if job is not None and known is None:
                entry["last_job"] = job

            def write(pipe: Any) -> dict[str, Any]:
                self.store.queue_save(pipe, key, model)
                pipe.hset(self.keys_key, key, name)
                self._queue_entry(pipe, entry)
                return version_view(version)

            return write

        added = self._transact([entry_key], build)
        self._changed(key, ENTRY + name)
        return added

    @staticmethod
    def _append(entry: dict[str, Any], key: str, model: dict[str, Any]) -> dict[str, Any]:
        number = entry["next_version"]
        version = {"version": number, "model_key": key, "created_at": model.get("created_at") or now(),
                   "metrics": model.get("metrics"), "decision": None}  # fmt: skip
        if model.get("trigger"):  # the drift report a retrain on drift was queued for
            version["trigger"] = model["trigger"]
        entry["next_version"] = number + 1
        entry["versions"].append(version)
        if entry.get("task") is None:
            entry["task"] = model.get("task")
        for alias, why in new_version_aliases(entry, number):
            _moved(entry, alias, number, why)
        return version

    def _change(self, name: str, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Read name's entry, apply change (which may refuse), write it back: one transaction."""
        check_name(name, "name")

        def build(pipe: Any) -> Callable[[Any], Any]:
            entry = self._read(pipe, name)
            if entry is None:
                raise self.unknown(name)
            answer = change(entry)

            def write(pipe: Any) -> Any:
                self._queue_entry(pipe, entry)
                return answer

            return write

        result = self._transact([self.entry_key(name)], build)
        self._changed(ENTRY + name)
        return result

    def move(self, name: str, alias: str, version: Any, why: str = MANUAL) -> dict[str, Any]:
        """Point alias at version (kept in the history, unless it points there already): the entry."""
        check_alias(alias)
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidRequest(
                f"'version' must be a version number (an integer), not {shown(json.dumps(version))}",
                details=[{"field": "version", "problem": "must be an integer"}],
            )

        def change(entry: dict[str, Any]) -> dict[str, Any]:
            if version not in {v["version"] for v in entry["versions"]}:
                raise unknown_version(entry, version)
            if entry["aliases"].get(alias) != version:
                _moved(entry, alias, version, why)
            return entry

        return view(self._change(name, change))

    def remove_alias(self, name: str, alias: str) -> dict[str, Any]:
        check_alias(alias)

        def change(entry: dict[str, Any]) -> dict[str, Any]:
            if alias not in entry["aliases"]:
                raise unknown_alias(entry, alias)
            _moved(entry, alias, None, MANUAL)
            return entry

        return view(self._change(name, change))

    def set_policy(self, name: str, changes: Any) -> dict[str, Any]:
        """Change the name's policy (any of metric, min_delta, auto_promote): the entry."""

        def change(entry: dict[str, Any]) -> dict[str, Any]:
            entry["policy"] = {**entry["policy"], **checked_policy(changes, entry.get("task"))}
            return entry

        return view(self._change(name, change))

    def set_traffic(self, name: str, body: Any) -> dict[str, Any]:
        """Shadow or split the name's traffic with one of its aliases (docs/API.md, "Traffic"):
        the setting stored, checked against the entry in the transaction that stores it (the
        alias exists, and is not production). InvalidRequest (400) naming the field otherwise,
        nothing changed; UnknownName (404) for a name not registered."""

        def change(entry: dict[str, Any]) -> dict[str, Any]:
            wanted = checked_traffic(body)  # after the name is found: an unknown one is 404 first
            if wanted["alias"] not in entry["aliases"]:
                missing = unknown_alias(entry, wanted["alias"])  # a body's field: 400, naming the aliases
                raise InvalidRequest(f"traffic: {missing.message}", details=missing.details)
            entry["traffic"] = {**wanted, "since": now()}
            return entry["traffic"]

        return self._change(name, change)

    def remove_traffic(self, name: str) -> None:
        """End the name's shadow or split; NotFound (404) when it has none."""

        def change(entry: dict[str, Any]) -> None:
            if not entry.get("traffic"):
                raise no_traffic(name, "to end")
            entry["traffic"] = None

        self._change(name, change)

    def traffic(self, name: str) -> dict[str, Any]:
        found = self.entry(name).get("traffic")
        if not found:
            raise no_traffic(name, "")
        return found

    def last_job(self, name: str) -> dict[str, Any] | None:
        """The job document a retrain of name queues again: the one its latest version was
        trained from (``last_job``); for a name whose versions came before retraining existed, the
        latest version's stored parameters (credentials redacted). None when there is neither.
        UnknownName (404) for a name not registered."""
        entry = self.entry(name)
        if entry.get("last_job"):
            return dict(entry["last_job"])
        for version in reversed(entry["versions"]):
            loaded = self.store.load(version["model_key"])
            stored = loaded[0] if loaded else None
            if isinstance(stored, dict) and isinstance(stored.get("parameters"), dict):
                return dict(stored["parameters"])
        return None

    def record_retrain(self, name: str, record: dict[str, Any]) -> None:
        """Keep one retrain (queued, skipped or failed) in the name's ``retrains``, newest first."""

        def change(entry: dict[str, Any]) -> None:
            entry["retrains"] = [{"time": now(), **record}, *entry.get("retrains", [])][:REGISTRY_RETRAINS]

        self._change(name, change)

    def record_check(self, name: str, check: dict[str, Any], created_at: str) -> bool:
        """Keep a drift check as the schedule's ``last_check``: only on the schedule it was made
        for (created_at), so a schedule replaced or deleted meanwhile is not written to. Whether
        it was kept."""

        def change(entry: dict[str, Any]) -> bool:
            schedule = entry.get("schedule")
            if not schedule or schedule.get("created_at") != created_at:
                return False
            schedule["last_check"] = check
            return True

        return self._change(name, change)

    def set_schedule(self, name: str, schedule: dict[str, Any] | None) -> dict[str, Any] | None:
        """Store the name's schedule (None: none); the one it had is answered."""

        def change(entry: dict[str, Any]) -> dict[str, Any] | None:
            before = entry.get("schedule")
            entry["schedule"] = schedule
            return before

        return self._change(name, change)

    def decide(
        self, name: str, version: int, decision: dict[str, Any], promote: bool, if_production: int | None = None
    ) -> dict[str, Any]:
        """What the promotion gate calls: record a version's decision and, when promote, move
        production to it (why "promoted"), in one transaction: the entry. With if_production, the
        version production pointed to when the gate compared: a production moved since (by hand, or
        by another version's gate) is not taken over, and the decision says so (kept)."""

        def change(entry: dict[str, Any]) -> dict[str, Any]:
            found = next((v for v in entry["versions"] if v["version"] == version), None)
            if found is None:
                raise unknown_version(entry, version)
            now_production = entry["aliases"].get(PRODUCTION)
            moved = if_production is not None and now_production != if_production
            found["decision"] = decision
            if promote and moved:
                why = f"; production moved to version {now_production} meanwhile: not promoted"
                found["decision"] = {**decision, "decision": "kept", "reason": decision.get("reason", "") + why}
            elif promote and now_production != version:
                _moved(entry, PRODUCTION, version, PROMOTED)
            return entry

        return view(self._change(name, change))

    def delete_name(self, name: str) -> None:
        """Remove the name (its models stay under their keys)."""
        check_name(name, "name")

        def build(pipe: Any) -> Callable[[Any], Any]:
            entry = self._read(pipe, name)
            if entry is None:
                raise self.unknown(name)

            def write(pipe: Any) -> None:
                pipe.delete(self.entry_key(name))
                pipe.srem(self.names_key, name)
                pipe.hdel(self.tokens_key, name)
                keys = [v["model_key"] for v in entry["versions"]]
                if keys:
                    pipe.hdel(self.keys_key, *keys)
                pipe.publish(self.store.channel, ENTRY + name)

            return write

        self._transact([self.entry_key(name)], build)
        self._changed(ENTRY + name)

    def delete_model(self, key: str, *, force: bool = False) -> bool:
        """Delete a stored model, and its version from its name's entry: refused (AliasInUse, 409
        naming the aliases) while an alias points to it, unless force (a cancelled job's model
        undone: its aliases go too). False when there was no such model."""
        if key.startswith(RESERVED):
            return False  # the store's own entries (version tokens, the registry) are no models
        names: list[str] = []

        def build(pipe: Any) -> Callable[[Any], Any]:
            names[:] = []
            name = pipe.hget(self.keys_key, key)
            entry = None
            if name is not None:
                names.append(name.decode())
                pipe.watch(self.entry_key(names[0]))
                entry = self._read(pipe, names[0])
            if entry is not None:
                self._drop_version(entry, key, force)

            def write(pipe: Any) -> bool:
                self.store.queue_delete(pipe, key)
                if name is not None:
                    pipe.hdel(self.keys_key, key)
                if entry is not None:
                    self._queue_entry(pipe, entry)
                return True

            return write

        with self.client.pipeline(transaction=True) as probe:  # the model's existence, read first
            probe.exists(self.store.prefix + key)
            probe.hexists(self.keys_key, key)
            exists, registered = probe.execute()
        if not exists and not registered:
            return False
        self._transact([self.keys_key], build)
        self._changed(key, *(ENTRY + n for n in names))
        return bool(exists)

    @staticmethod
    def _drop_version(entry: dict[str, Any], key: str, force: bool) -> None:
        found = next((v for v in entry["versions"] if v["model_key"] == key), None)
        if found is None:
            return
        number = found["version"]
        aliases = sorted(a for a, v in entry["aliases"].items() if v == number)
        if aliases and not force:
            names = ", ".join(f"{entry['name']}@{a}" for a in aliases)
            raise AliasInUse(
                f"model {key} is version {number} of {entry['name']!r}, which {names} "
                f"point{'s' if len(aliases) == 1 else ''} to: move or delete the alias first "
                f"(PUT or DELETE /registry/{entry['name']}/aliases/<alias>)",
                details=[{"field": "key", "problem": "an alias points to it", "aliases": aliases}],
            )
        for alias in aliases:
            _moved(entry, alias, None, "cancelled")
        entry["versions"] = [v for v in entry["versions"] if v["model_key"] != key]


def unknown_version(entry: dict[str, Any], version: Any) -> UnknownVersion:
    have = [v["version"] for v in entry["versions"]]
    listed = ", ".join(map(str, have)) if have else "none"
    return UnknownVersion(
        f"{entry['name']!r} has no version {shown(str(version), quote=False)} (versions: {listed})",
        details=[{"field": "version", "problem": "unknown version", "versions": have}],
    )


def unknown_alias(entry: dict[str, Any], alias: str) -> UnknownAlias:
    have = sorted(entry["aliases"])
    listed = ", ".join(f"{a} -> {entry['aliases'][a]}" for a in have) if have else "none"
    return UnknownAlias(
        f"{entry['name']!r} has no alias {shown(alias)} (aliases: {listed})",
        details=[{"field": "alias", "problem": "unknown alias", "aliases": have}],
    )


def no_traffic(name: str, what: str) -> NotFound:
    return NotFound(
        f"{name!r} has no traffic setting{' ' + what if what else ''}: PUT /registry/{name}/traffic with "
        '{"alias": "candidate", "mode": "shadow"} or {"alias": "candidate", "mode": "split", "percent": p} makes one',
        details=[{"field": "name", "problem": "no traffic setting"}],
    )


TRAFFIC_MODES = ("shadow", "split")


def checked_traffic(body: Any) -> dict[str, Any]:
    """The traffic setting a PUT body asks for: {"alias", "mode": "shadow"} or {"alias", "mode":
    "split", "percent": 0 < p < 100}; InvalidRequest naming the field otherwise."""
    fields = ("alias", "mode", "percent")
    if not isinstance(body, dict) or "alias" not in body or "mode" not in body:
        raise InvalidRequest(
            'traffic: the body must be {"alias": "candidate", "mode": "shadow"} or {"alias": "candidate", '
            '"mode": "split", "percent": p} (0 < p < 100)',
            details=[{"field": "", "problem": "needs the fields alias and mode"}],
        )
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidRequest(
            f"traffic: unknown field(s) {', '.join(map(repr, unknown))}; it takes {', '.join(fields)}",
            details=[{"field": f, "problem": "unknown field"} for f in unknown],
        )
    alias, mode, percent = check_alias(body["alias"]), body["mode"], body.get("percent")
    if alias == PRODUCTION:
        raise InvalidRequest(
            "traffic: 'alias' must not be production (production answers already): name the alias of the "
            "version to try, e.g. candidate",
            details=[{"field": "alias", "problem": "is production"}],
        )
    if mode not in TRAFFIC_MODES:
        raise InvalidRequest(
            f"traffic: 'mode' must be shadow or split, not {shown(json.dumps(mode))}",
            details=[{"field": "mode", "problem": "must be shadow or split"}],
        )
    if mode == "shadow":
        if "percent" in body:
            raise InvalidRequest(
                "traffic: a shadow takes no 'percent' (it scores every request); split takes one",
                details=[{"field": "percent", "problem": "not for shadow"}],
            )
        return {"alias": alias, "mode": mode}
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent < 100:
        raise InvalidRequest(
            f"traffic: a split's 'percent' must be a number between 0 and 100 (both excluded), not "
            f"{shown(json.dumps(percent))}",
            details=[{"field": "percent", "problem": "must be a number, 0 < percent < 100"}],
        )
    return {"alias": alias, "mode": mode, "percent": percent}


POLICY_FIELDS = ("metric", "min_delta", "auto_promote")


def checked_policy(changes: Any, task: str | None) -> dict[str, Any]:
    """The policy fields of a PUT body, each checked: InvalidRequest naming the field otherwise."""
    if not isinstance(changes, dict) or not changes:
        raise InvalidRequest(
            "the policy must be a JSON object with any of 'metric', 'min_delta', 'auto_promote'",
            details=[{"field": "", "problem": "not a non-empty object"}],
        )
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"policy: unknown field(s) {', '.join(map(repr, unknown))}; it takes {', '.join(POLICY_FIELDS)}",
            details=[{"field": f, "problem": "unknown field"} for f in unknown],
        )
    metric, delta, auto = changes.get("metric"), changes.get("min_delta"), changes.get("auto_promote")
    allowed = TASK_METRICS.get(task or "", sorted({m for ms in TASK_METRICS.values() for m in ms}))
    if "metric" in changes and metric not in allowed:
        raise InvalidRequest(
            f"policy: 'metric' must be one of {', '.join(allowed)} (the held-out metrics of a {task} model), "
            f"not {shown(json.dumps(metric))}",
            details=[{"field": "metric", "problem": "not a metric of the name's task", "metrics": list(allowed)}],
        )
    if "min_delta" in changes and not (
        isinstance(delta, (int, float)) and not isinstance(delta, bool) and 0 <= delta < float("inf")
    ):
        raise InvalidRequest(
            f"policy: 'min_delta' must be a number >= 0, not {shown(json.dumps(delta))}",
            details=[{"field": "min_delta", "problem": "must be a number >= 0"}],
        )
    if "auto_promote" in changes and not isinstance(auto, bool):
        raise InvalidRequest(
            f"policy: 'auto_promote' must be true or false, not {shown(json.dumps(auto))}",
            details=[{"field": "auto_promote", "problem": "must be a boolean"}],
        )
    return {k: changes[k] for k in POLICY_FIELDS if k in changes}
