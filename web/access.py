"""Who may do what, for one web process: the API keys, the pages' sessions, the limit on failed
authentications and the audit trail, built once from configuration (``Services.access``), and
the change subscription that lets the key cache be trusted (the model store's pattern)."""

from __future__ import annotations

from typing import Any

import redis

from predictionservice.apikeys import KeyStore, configured_keys
from predictionservice.audit import AuditTrail
from predictionservice.authlimit import FailureLimit
from predictionservice.config import ConfigError
from predictionservice.modelwatch import ModelWatch
from predictionservice.pagesessions import SessionStore
from web.accesslog import Network, proxy_networks


class Access:
    def __init__(self, client: redis.Redis, params: dict[str, Any]):
        prefix = params["redis_key_prefix"]
        self.token: str = params["auth_token"]
        try:
            self.configured = configured_keys(params["api_keys"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.keys = KeyStore(
            client, prefix, token=self.token, secret=params["api_key_secret"], configured=self.configured
        )
        self.sessions = SessionStore(client, prefix, params["session_ttl"])
        self.limit = FailureLimit(
            client, prefix, allowed=params["auth_failures_allowed"], window=params["auth_failure_window"]
        )
        self.audit = AuditTrail(client, prefix, params["audit_max_entries"])
        self.proxies: tuple[Network, ...] = proxy_networks(params["trusted_proxies"])
        self.keys.listeners.append(self.sessions.close_all)  # a revoked key's page sessions end too
        self.watch: ModelWatch | None = None
        if params["model_watch"]:
            self.watch = ModelWatch(
                client,
                self.keys.channel,
                on_change=self.keys.forget,
                on_reset=self.keys.clear,
                ping_interval=params["model_watch_ping"],
            )
            self.keys.trusted = self.watch.healthy

    @property
    def secured(self) -> bool:
        """Keys are asked for only when the service has a token (its first admin key) or keys in
        its configuration (api_keys)."""
        return bool(self.token or self.configured)

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop()
