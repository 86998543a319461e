"""The pages' sessions, one per browser, kept server-side in Redis (no web framework here).

A sign-in at /ui/login makes a random session id (``secrets.token_urlsafe(32)``), the only thing
the browser's cookie holds. Redis keeps, under the SHA-256 of that id (a copy of Redis yields no
usable cookie), the id of the key that signed in, with an expiry (the setting ``session_ttl``);
a set per key lists its sessions, so revoking a key ends every page session it opened. Sign-out
deletes the session. A plain hash suffices here: the id is 256 random bits, never guessed.
"""

from __future__ import annotations

import hashlib
import secrets

import redis

SESSION, BY_KEY = "__page_session__:", "__page_sessions_of__:"


def _name(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(self, client: redis.Redis, prefix: str = "", ttl: int = 8 * 3600):
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def open(self, key_id: str) -> str:
        """A new session of the key: its id, for the browser's cookie."""
        session_id = secrets.token_urlsafe(32)
        name, index = self.prefix + SESSION + _name(session_id), self.prefix + BY_KEY + key_id
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(name, key_id, ex=self.ttl)
            pipe.sadd(index, name)
            pipe.expire(index, self.ttl)
            pipe.execute()
        return session_id

    def key_of(self, session_id: str) -> str | None:
        """The id of the key a live session was opened with, or None (unknown, expired, ended)."""
        if not session_id or len(session_id) > 100:
            return None
        raw = self.client.get(self.prefix + SESSION + _name(session_id))
        return raw.decode() if raw is not None else None

    def close(self, session_id: str) -> None:
        """Sign-out: the session is gone (its cookie is worth nothing from now on)."""
        if session_id and len(session_id) <= 100:
            self.client.delete(self.prefix + SESSION + _name(session_id))

    def close_all(self, key_id: str) -> int:
        """Every session of a key ends (the key was revoked): how many there were."""
        index = self.prefix + BY_KEY + key_id
        names = list(self.client.smembers(index))
        with self.client.pipeline(transaction=True) as pipe:
            for name in names:
                pipe.delete(name)
            pipe.delete(index)
            pipe.execute()
        return len(names)
