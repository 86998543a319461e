"""API keys with scopes: created, listed, revoked and checked, in Redis (no web framework here).

A key is ``psk_`` and 43 characters of ``secrets.token_urlsafe(32)`` (256 random bits), shown once
by ``create``. Redis keeps only ``HMAC-SHA256(server secret, key)``: a key is a high-entropy random
secret, not a password, so a slow hash (scrypt, argon2) would buy nothing against guessing (2^256
tries) while costing every request milliseconds; the HMAC's server secret means a copy of Redis
alone does not even let an attacker test a candidate. The secret is the setting
``api_key_secret``, or else one drawn at random and kept in Redis (``SET NX``) so every replica
shares it.

The single ``auth_token`` setting stays one key with every scope (``TOKEN_KEY``).

Checking a key costs one HMAC and, the first time in a process, two HGETs; then the answer is
cached per process. Revocation publishes the key's id on the store's change channel (the model
store's pattern): each replica's subscription (``modelwatch.ModelWatch``) evicts it at once, and
while that subscription is not known to be alive every check goes back to Redis, so a revoked key
is refused on every replica at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from predictionservice.defaults import API_KEY_PREFIX, MAX_KEY_NAME_CHARS
from predictionservice.exceptions import Conflict, InvalidRequest, NotFound

SCOPES = ("predict", "read", "train", "admin")
KEYS, DIGESTS, SECRET, CHANNEL = "__api_keys__", "__api_key_digests__", "__api_key_secret__", "__api_key_changes__"
LAST_USED = "__api_keys_last_used__"
TOKEN_KEY = "auth_token"  # noqa: S105 (a name, not a secret): the id and name the auth_token setting authenticates as
LAST_USED_EVERY = 60.0  # seconds between two writes of one key's last_used_at by one process


@dataclass(frozen=True)
class Principal:
    """Who a request authenticated as: a key's id and name (never its secret) and its scopes."""

    id: str
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


EVERYONE = Principal("", "anonymous", frozenset(SCOPES))  # a service without auth_token is open


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


MIN_CONFIGURED_SECRET = 32


def configured_keys(entries: list[str]) -> dict[str, Principal]:
    """The setting api_keys ('name:scope+scope:secret' each) as secret -> principal; a wrong entry
    is a ValueError naming it by position, never showing its secret."""
    found: dict[str, Principal] = {}
    for n, entry in enumerate(entries, 1):
        name, _, rest = entry.partition(":")
        scopes, _, secret = rest.partition(":")
        try:
            name, scope_list = check_new_key(name, [s for s in scopes.split("+") if s])
        except InvalidRequest as exc:
            raise ValueError(f"api_keys entry {n}: {exc.message}") from None
        if len(secret) < MIN_CONFIGURED_SECRET:
            raise ValueError(
                f"api_keys entry {n} ({name}): the secret must be {MIN_CONFIGURED_SECRET} characters or more"
            )
        found[secret] = Principal(f"config:{name}", name, frozenset(scope_list))
    return found


def check_new_key(name: Any, scopes: Any) -> tuple[str, list[str]]:
    """A new key's name and scopes, or InvalidRequest naming what is wrong."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("'name' must be a non-empty string", details=[{"field": "name"}])
    if len(name) > MAX_KEY_NAME_CHARS:
        raise InvalidRequest(f"'name' is longer than {MAX_KEY_NAME_CHARS} characters", details=[{"field": "name"}])
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise InvalidRequest(f"'scopes' must be a non-empty list of {', '.join(SCOPES)}", details=[{"field": "scopes"}])
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidRequest(
            f"unknown scope(s) {', '.join(map(repr, unknown))}; the scopes are {', '.join(SCOPES)}",
            details=[{"field": "scopes", "unknown": unknown}],
        )
    return name.strip(), [s for s in SCOPES if s in scopes]


class KeyStore:
    """The keys of one service in Redis: ``create``, ``list``, ``revoke``, ``authenticate``.

    ``trusted`` says whether the per-process cache may be used now (the change subscription is
    alive: ``ModelWatch.healthy``); without it every check reads Redis."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "",
        *,
        token: str = "",
        secret: str = "",
        configured: dict[str, Principal] | None = None,
    ):
        self.client = client
        self.prefix = prefix
        self.keys, self.digests = prefix + KEYS, prefix + DIGESTS
        db = client.connection_pool.connection_kwargs.get("db", 0)
        self.channel = f"{prefix}{CHANNEL}:{db}"
        self._token = token
        self._configured = configured or {}  # the setting api_keys: secret -> principal
        self._secret = secret.encode() if secret else None
        self._cache: dict[str, Principal] = {}  # digest -> principal
        self._generation = 0  # bumped by every eviction: a read begun before one is not cached
        self._lock = threading.Lock()
        self._last_used: dict[str, float] = {}
        self.trusted: Callable[[], bool] = lambda: False
        self.listeners: list[Callable[[str], None]] = []  # told the key id after each revoke

    def _hmac_key(self) -> bytes:
        if self._secret is None:
            self.client.set(self.prefix + SECRET, secrets.token_hex(32), nx=True)
            self._secret = self.client.get(self.prefix + SECRET)
        return self._secret

    def digest(self, key: str) -> str:
        return hmac.new(self._hmac_key(), key.encode(), hashlib.sha256).hexdigest()

    def create(self, name: Any, scopes: Any) -> tuple[dict[str, Any], str]:
        """A new key: (its record as listed, the secret, which is never shown again)."""
        name, scopes = check_new_key(name, scopes)
        key_id, secret = secrets.token_hex(8), API_KEY_PREFIX + secrets.token_urlsafe(32)
        record = {"id": key_id, "name": name, "scopes": scopes, "created_at": now_iso()}
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys, key_id, json.dumps({**record, "digest": self.digest(secret)}))
            pipe.hset(self.digests, self.digest(secret), key_id)
            pipe.execute()
        return {**record, "last_used_at": None}, secret

    def list(self) -> list[dict[str, Any]]:
        """Every key, oldest first, without its secret or digest."""
        raw = self.client.hgetall(self.keys)
        used = {k.decode(): v.decode() for k, v in self.client.hgetall(self.prefix + LAST_USED).items()}
        records = [json.loads(value) for value in raw.values()]
        shown = [{k: r[k] for k in ("id", "name", "scopes", "created_at")} for r in records]
        for record in shown:
            record["last_used_at"] = used.get(record["id"])
        stored = sorted(shown, key=lambda r: (r["created_at"], r["id"]))
        # The setting's keys exist from the start of each process: listed first, without a date.
        configured = [
            {"id": p.id, "name": p.name, "scopes": [s for s in SCOPES if s in p.scopes], "created_at": None,
             "last_used_at": used.get(p.id), "source": "setting api_keys"}
            for p in sorted(self._configured.values(), key=lambda p: p.id)
        ]  # fmt: skip
        return configured + stored

    def revoke(self, key_id: str) -> None:
        """Delete a key (NotFound when there is none): refused at once here and, through the
        change channel, on every replica."""
        if any(p.id == key_id for p in self._configured.values()):
            raise Conflict(
                f"the key {key_id!r} is given by the setting api_keys: remove it there (and restart) to revoke it"
            )
        raw = self.client.hget(self.keys, key_id) if key_id else None
        if raw is None:
            raise NotFound(f"no key with id {key_id[:100]!r}; GET /keys/ lists them")
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys, key_id)
            pipe.hdel(self.digests, json.loads(raw)["digest"])
            pipe.hdel(self.prefix + LAST_USED, key_id)
            pipe.publish(self.channel, key_id)
            pipe.execute()
        self.forget(key_id)
        for listener in self.listeners:
            listener(key_id)

    def forget(self, key_id: str) -> None:
        """Evict a key from this process's cache (the change channel's message, or our own revoke)."""
        with self._lock:
            self._generation += 1
            for digest in [d for d, p in self._cache.items() if p.id == key_id]:
                del self._cache[digest]

    def clear(self) -> None:
        """Forget every cached key (the subscription was lost or is new: messages may be missed)."""
        with self._lock:
            self._generation += 1
            self._cache.clear()

    def authenticate(self, given: str) -> Principal | None:
        """The principal a bearer secret is, or None (a wrong, revoked or empty secret)."""
        if not given:
            return None
        if self._token and hmac.compare_digest(given.encode(), self._token.encode()):
            return Principal(TOKEN_KEY, TOKEN_KEY, frozenset(SCOPES))
        for secret, principal in self._configured.items():
            if hmac.compare_digest(given.encode(), secret.encode()):
                return principal
        if not given.startswith(API_KEY_PREFIX):
            return None
        digest = self.digest(given)
        trusted = self.trusted()
        cached = self._cache.get(digest) if trusted else None
        if cached is not None:
            self._touch(cached.id)
            return cached
        generation = self._generation
        principal = self._lookup(digest)
        if principal is not None:
            if trusted:
                with self._lock:
                    if generation == self._generation:
                        self._cache[digest] = principal
            self._touch(principal.id)
        return principal

    def principal(self, key_id: str) -> Principal | None:
        """The key with this id as it is now in Redis (a page session's key), or None."""
        if key_id == TOKEN_KEY:
            return Principal(TOKEN_KEY, TOKEN_KEY, frozenset(SCOPES)) if self._token else None
        if key_id.startswith("config:"):
            return next((p for p in self._configured.values() if p.id == key_id), None)
        raw = self.client.hget(self.keys, key_id)
        if raw is None:
            return None
        record = json.loads(raw)
        return Principal(record["id"], record["name"], frozenset(record["scopes"]))

    def _lookup(self, digest: str) -> Principal | None:
        key_id = self.client.hget(self.digests, digest)
        return self.principal(key_id.decode()) if key_id is not None else None

    def _touch(self, key_id: str) -> None:
        """last_used_at, written at most once a minute per key by each process (not per request)."""
        now = time.monotonic()
        if now - self._last_used.get(key_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
            return
        self._last_used[key_id] = now
        if key_id != TOKEN_KEY:
            self.client.hset(self.prefix + LAST_USED, key_id, now_iso())
