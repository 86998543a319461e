"""Temporary collections: where loads and Spark writes put their documents before a publish makes
them the target (replace) or merges them into it (append), all or nothing, even if MongoDB or the
publishing process is killed at any moment. No dependency beyond pymongo: Spark ships this file to
its executors beside sparkmongo.py.

What is recorded where (every name starts with "__", so GET /datasets/ never lists one; the API
refuses these prefixes, so no dataset can be mistaken for one):

* ``__writing_<t>_<r>_<target>`` (Spark writes) or ``__loading_<t>_<r>_<target>`` (uploads), the
  temporary collection W: the new documents, ``t`` its creation time (hex seconds), ``r`` random.
  Unmarked, it is unfinished: its writer drops it on failure, the sweep (drop_stale) once it is
  older than STALE_AFTER.
* ``__publishing_<t>_<r>`` (the marker M), written once W is complete: one document naming W, the
  target T and the aside A, W's document count, T's count before (None: there was no T), whether it
  is a replace, and its owner (host, pid, the process's start). From then on W is kept until the
  publish is finished, forward or back, by its owner or by recovery.
* ``__replaced_<t>_<r>_<target>`` (the aside A): the old target, renamed aside before W is renamed
  into place and dropped once W is the target, so the old documents are never dropped before the
  new ones are in place (a rename with dropTarget may drop the target first, then copy).

A replace: mark; rename T -> A; rename W -> T; drop A; drop M. An append: check for _id clashes;
mark; merge W into T; drop W; drop M. A server whose rename moves documents one by one can be
killed half-way through a rename, leaving both names partly filled; the recorded counts
tell a complete collection from a torn one. Recovery (``recover``) of a marker whose owner is gone:

1. W holds its recorded count: the new data is intact; finish the publish (a torn T or A is dropped
   first, an append re-merges keeping what is already there).
2. Else T holds W's count and W is gone or empty: the rename into place finished; drop A and M.
3. Else W was torn by its rename into place: the old data is in A; copy it back into T (a copy, so
   A stays whole if this is interrupted too), record that in M, drop A, W and M.

Recovery runs after every publish (beside the sweep) and at the worker's start (recover_server).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pymongo
import pymongo.errors
from pymongo.write_concern import WriteConcern

log = logging.getLogger(__name__)

STALE_AFTER = 24 * 3600  # seconds: no load or write lives this long; its process died
RECOVER_WAIT = 20.0  # seconds a failed publish waits for MongoDB to come back to finish or undo itself
LOADING_PREFIX = "__loading_"  # dataset uploads (datasetloader)
WRITING_PREFIX = "__writing_"  # Spark writes (sparkmongo)
MARKER_PREFIX = "__publishing_"  # a publish under way: W is complete (see the module's docstring)
ASIDE_PREFIX = "__replaced_"  # the target a replace is replacing, kept until the new one is in place
# No collection the API names may start so: a sweep or a recovery would drop it (mongotarget refuses them).
RESERVED_PREFIXES = (LOADING_PREFIX, WRITING_PREFIX, MARKER_PREFIX, ASIDE_PREFIX)
SYSTEM_DATABASES = ("admin", "config", "local")
MARKER_ID = "publish"
_TEMP_NAME = re.compile(rf"^(?:{LOADING_PREFIX}|{WRITING_PREFIX})([0-9a-f]+)_([0-9a-f]{{8}})_")

Step = Callable[[str], None]


def temp_name(prefix: str, collection: str) -> str:
    """prefix, creation time (hex seconds), a random part, the target's name (within 120 bytes)."""
    return f"{prefix}{int(time.time()):x}_{uuid.uuid4().hex[:8]}_{collection}"[:120]


def _stamp(temp: str) -> str:
    """The '<t>_<r>' a temporary collection's marker and aside share with it; a name not made by
    temp_name gets a stamp of time 0 and a digest of the name."""
    found = _TEMP_NAME.match(temp)
    return f"{found[1]}_{found[2]}" if found else f"0_{hashlib.sha256(temp.encode()).hexdigest()[:8]}"


def marker_name(temp: str) -> str:
    return f"{MARKER_PREFIX}{_stamp(temp)}"


def aside_name(temp: str, target: str) -> str:
    return f"{ASIDE_PREFIX}{_stamp(temp)}_{target}"[:120]


class IdClash(ValueError):
    """An append would meet a document already in the target: nothing was merged."""


class PublishLost(RuntimeError):
    """Recovery found no whole copy, old or new (two renames torn by crashes): nothing is dropped."""


_TARGET_LOCKS: dict[str, threading.Lock] = {}
_TARGET_LOCKS_GUARD = threading.Lock()
_ACTIVE: set[str] = set()  # 'db.marker' of the publishes and recoveries this process is running


def _target_lock(db: Any, target: str) -> threading.Lock:
    """One lock per target namespace in this process."""
    with _TARGET_LOCKS_GUARD:
        return _TARGET_LOCKS.setdefault(f"{db.name}.{target}", threading.Lock())


@contextlib.contextmanager
def _running(db: Any, marker: str) -> Iterator[bool]:
    """Mark a publish as this process's own while it runs; yields False if it already is."""
    key = f"{db.name}.{marker}"
    with _TARGET_LOCKS_GUARD:
        mine = key not in _ACTIVE
        _ACTIVE.add(key)
    try:
        yield mine
    finally:
        if mine:
            with _TARGET_LOCKS_GUARD:
                _ACTIVE.discard(key)


def _process_start(pid: int) -> str | None:
    """A process's identity beyond its pid (pids are reused): boot id and start time, from /proc."""
    try:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return f"{boot}:{fields[19]}"
    except (OSError, IndexError):
        return None


def _owner() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _process_start(pid)}


def publish(
    db: Any, temp: str, target: str, *, replace: bool, step: Step | None = None, recover_wait: float = RECOVER_WAIT
) -> None:
    """Make a fully written temporary collection the target, all or nothing: put in its place
    (replace) or merged into it (append). An append refuses an _id clash up front, so the merge
    cannot stop halfway; publishes of one target take turns (the web server's concurrent uploads
    are threads of one process), so no other append can slip in between the check and the merge.
    If the publish breaks off once marked (MongoDB went away), it waits up to recover_wait seconds
    to finish it (then it returns) or undo it (then it raises); past that, recovery will. step(name)
    is called after each step (marked, aside, renamed or merged, dropped): where a test crashes it.
    The temporary collection is gone afterwards unless a recovery still needs it."""
    marker = marker_name(temp)
    # Journaled: each step, once acknowledged, outlives a crash of MongoDB (an acknowledged write may
    # otherwise be lost with the last moment of its journal), so a publish that returned is durable.
    db = db.with_options(write_concern=WriteConcern(j=True))
    marking: list[bool] = []  # set once the marker is being written: from then on W is kept
    with _target_lock(db, target), _running(db, marker):
        try:
            _publish(db, temp, target, replace=replace, step=step or (lambda _: None), marking=marking)
        except Exception:
            if not marking:  # an _id clash, or MongoDB gone before W was marked complete
                with contextlib.suppress(pymongo.errors.PyMongoError):
                    db.drop_collection(temp)
                raise
            outcome = _settle(db, marker, recover_wait)
            if outcome in ("finished", "done"):
                log.warning("publish of %s.%s broke off and was finished", db.name, target, exc_info=True)
                return
            if outcome == "unmarked":
                with contextlib.suppress(pymongo.errors.PyMongoError):
                    db.drop_collection(temp)
            raise


def _publish(db: Any, temp: str, target: str, *, replace: bool, step: Step, marking: list[bool]) -> None:
    if not replace:
        _refuse_clash(db, temp, target)
    listed = set(db.list_collection_names(filter={"name": {"$in": [temp, target]}}))
    if temp not in listed:
        db.create_collection(temp)  # nothing written: an empty result still replaces the target
    doc = {
        "_id": MARKER_ID,
        "temp": temp,
        "target": target,
        "aside": aside_name(temp, target),
        "rows": db[temp].count_documents({}),
        "old_rows": db[target].count_documents({}) if replace and target in listed else None,
        "replace": replace,
        "owner": _owner(),
        "at": time.time(),
    }
    marking.append(True)
    db[marker_name(temp)].insert_one(doc)  # journaled (see publish): with it every document of W before
    step("marked")
    if not replace:
        _merge(db, doc, step, keep_existing=False)
        return
    if doc["old_rows"] is not None:
        db[target].rename(doc["aside"])
    _done(db, doc, "aside", step)
    _into_place(db, doc, step)


def _refuse_clash(db: Any, temp: str, target: str) -> None:
    clash = list(
        db[temp].aggregate(
            [
                {"$lookup": {"from": target, "localField": "_id", "foreignField": "_id", "as": "hit"}},
                {"$match": {"hit.0": {"$exists": True}}},
                {"$limit": 1},
                {"$project": {"_id": 1}},
            ]
        )
    )
    if clash:
        raise IdClash(f"document _id {clash[0]['_id']!r} already exists in {db.name}.{target}")


def _into_place(db: Any, doc: dict[str, Any], step: Step) -> None:
    """The last steps of a replace, from a complete W: W renamed to T (dropTarget: a T another
    writer made meanwhile is replaced, as any replace would), A dropped, the marker dropped."""
    db[doc["temp"]].rename(doc["target"], dropTarget=True)
    _done(db, doc, "renamed", step)
    db.drop_collection(doc["aside"])
    _done(db, doc, "dropped", step)
    db.drop_collection(marker_name(doc["temp"]))


def _merge(db: Any, doc: dict[str, Any], step: Step, *, keep_existing: bool) -> None:
    """An append's merge, then W and the marker dropped. Re-run by recovery, it keeps the
    documents an interrupted merge already inserted."""
    matched = "keepExisting" if keep_existing else "fail"
    list(db[doc["temp"]].aggregate([{"$merge": {"into": doc["target"], "whenMatched": matched}}]))
    _done(db, doc, "merged", step)
    db.drop_collection(doc["temp"])
    _done(db, doc, "dropped", step)
    db.drop_collection(marker_name(doc["temp"]))


def _done(db: Any, doc: dict[str, Any], name: str, step: Step) -> None:
    """Record a step in the marker, journaled: a server may journal a rename or a drop lazily, and
    its journal is one sequence, so this makes the step and all before it outlive a crash. The
    record is for people; recovery goes by the counts."""
    db[marker_name(doc["temp"])].update_one({"_id": MARKER_ID}, {"$set": {"step": name}})
    step(name)


def _settle(db: Any, marker: str, wait: float) -> str | None:
    """After a marked publish broke off: finish or undo it, retrying while MongoDB is away, for up
    to wait seconds. 'unmarked' if it was never marked; None if MongoDB did not come back."""
    deadline = time.monotonic() + wait
    while True:
        try:
            doc = db[marker].find_one({"_id": MARKER_ID})
            return "unmarked" if doc is None else _finish(db, doc)
        except pymongo.errors.PyMongoError:
            if time.monotonic() >= deadline:
                log.warning("publish marked by %s.%s left for recovery: MongoDB did not answer", db.name, marker)
                return None
            time.sleep(1.0)


def _count(db: Any, name: str, listed: set[str]) -> int | None:
    return db[name].count_documents({}) if name in listed else None


def _finish(db: Any, doc: dict[str, Any]) -> str:
    """Finish a marked publish from whatever state it was left in (see the module's docstring):
    'finished' (the new data is in place), 'done' (it already was), 'restored' (the old is back)."""
    temp, target, aside = doc["temp"], doc["target"], doc["aside"]
    listed = set(db.list_collection_names(filter={"name": {"$in": [temp, target, aside]}}))
    if doc.get("restored"):
        _drop_all(db, doc)
        return "restored"
    temp_rows = _count(db, temp, listed)
    if temp_rows == doc["rows"]:
        if not doc["replace"]:
            _merge(db, doc, lambda _: None, keep_existing=True)
            return "finished"
        if target in listed and aside not in listed and _count(db, target, listed) == doc["old_rows"]:
            db.drop_collection(aside)  # rows a killed rename left under the aside's name
            db[target].rename(aside)
        else:
            db.drop_collection(target)  # emptied by the rename aside, torn, or never there
        _into_place(db, doc, lambda _: None)
        return "finished"
    if not doc["replace"] or (_count(db, target, listed) == doc["rows"] and not temp_rows):
        _drop_all(db, doc)  # the merge, or the rename into place, had finished
        return "done"
    _restore(db, doc, listed)
    return "restored"


def _restore(db: Any, doc: dict[str, Any], listed: set[str]) -> None:
    """W was torn by its rename into place: copy the old documents back from A into T."""
    target, aside = doc["target"], doc["aside"]
    if doc["old_rows"] is not None and _count(db, aside, listed) != doc["old_rows"]:
        log.error(
            "publish of %s.%s: neither the new nor the old documents are whole (torn by killed renames); "
            "left as they are for a person to look at: %s, %s, %s",
            db.name,
            target,
            doc["temp"],
            aside,
            marker_name(doc["temp"]),
        )
        raise PublishLost(f"{db.name}.{target}: neither the new nor the old documents are whole")
    db.drop_collection(target)  # a torn rename's documents
    if doc["old_rows"] is not None:
        list(db[aside].aggregate([{"$merge": {"into": target, "whenMatched": "replace"}}]))
    db[marker_name(doc["temp"])].update_one({"_id": MARKER_ID}, {"$set": {"restored": True}})
    _drop_all(db, doc)


def _drop_all(db: Any, doc: dict[str, Any]) -> None:
    db.drop_collection(doc["aside"])
    db.drop_collection(doc["temp"])
    db.drop_collection(marker_name(doc["temp"]))


def _abandoned(doc: dict[str, Any]) -> bool:
    """Whether a marker's owner is gone: this process (not running it), a process of this host
    that is no longer running, or, on another host, a marker older than STALE_AFTER."""
    owner, me = doc.get("owner") or {}, _owner()
    if owner.get("host") == me["host"] and owner.get("started") and me["started"]:
        return owner == me or _process_start(int(owner["pid"])) != owner["started"]
    return time.time() - float(doc.get("at", 0)) > STALE_AFTER


def recover(db: Any) -> list[str]:
    """Finish or undo the publishes of this database whose owner is gone; one line each, to log."""
    db = db.with_options(write_concern=WriteConcern(j=True))  # as publish's steps
    done = []
    for marker in db.list_collection_names(filter={"name": {"$regex": f"^{MARKER_PREFIX}"}}):
        with _running(db, marker) as mine:
            if not mine:
                continue  # this process is running it
            doc = db[marker].find_one({"_id": MARKER_ID})
            if doc is None:  # killed between creating the marker and writing it: never marked
                if _born(marker) < time.time() - STALE_AFTER:
                    db.drop_collection(marker)
                continue
            if not _abandoned(doc):
                continue
            claimed = db[marker].find_one_and_update(
                {"_id": MARKER_ID, "owner": doc["owner"]}, {"$set": {"owner": _owner()}}
            )
            if claimed is None:
                continue  # another process claimed it first
            try:
                outcome = _finish(db, claimed)
            except (pymongo.errors.PyMongoError, PublishLost):  # MongoDB went away again: the next one goes on
                log.warning("could not recover the publish of %s.%s", db.name, claimed["target"], exc_info=True)
                continue
            done.append(f"{db.name}.{claimed['target']}: {outcome} (publish of {claimed['temp']})")
            log.warning("recovered an interrupted publish: %s", done[-1])
    return done


def _born(name: str) -> int:
    try:
        return int(name[len(MARKER_PREFIX) :].split("_", 1)[0], 16)
    except ValueError:
        return 0


def recover_server(client: Any) -> list[str]:
    """recover() in every database of a server but its system ones."""
    done = []
    for name in client.list_database_names():
        if name not in SYSTEM_DATABASES:
            done += recover(client[name])
    return done


def recover_in_background(uri: str, timeout_ms: int) -> threading.Thread:
    """recover_server on a thread of its own, for a process's start: MongoDB may be slow or away."""

    def run() -> None:
        try:
            with pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms) as client:
                recover_server(client)
        except pymongo.errors.PyMongoError:
            log.warning("could not look for interrupted publishes at start", exc_info=True)

    thread = threading.Thread(target=run, name="publish-recovery", daemon=True)
    thread.start()
    return thread


def marked(db: Any, temp: str) -> bool:
    """Whether a temporary collection is complete and awaits its publish's end: not to be dropped."""
    return db[marker_name(temp)].find_one({"_id": MARKER_ID}, {"_id": 1}) is not None


def tidy(db: Any, prefix: str) -> None:
    """After a publish: recover the database's publishes whose owner is gone, sweep this prefix's
    stale temporary collections. The publish has succeeded whatever happens here."""
    try:
        recover(db)
        drop_stale(db, prefix)
    except pymongo.errors.PyMongoError:
        log.warning("could not tidy the temporary collections of %s", db.name, exc_info=True)


def drop_stale(db: Any, prefix: str, max_age: float = STALE_AFTER) -> list[str]:
    """Drop this prefix's temporary collections older than max_age; returns their names. One a
    publish's marker names is left to recovery."""
    dropped = []
    for name in db.list_collection_names():
        if not name.startswith(prefix):
            continue
        try:
            born = int(name[len(prefix) :].split("_", 1)[0], 16)
        except ValueError:
            continue
        if time.time() - born > max_age and not marked(db, name):
            db.drop_collection(name)
            dropped.append(name)
    return dropped
