"""The access log line: who asked (the peer, or the client a configured proxy names) and what,
every field escaped, so no request can write a line of its own or hide its address.

``X-Forwarded-For`` is anyone's to send: it is read only when the peer is one of the configured
``trusted_proxies``, and then from the right (each proxy appends the address it was reached from,
so the first address not of a trusted proxy is the client; what is left of it was sent by the
client and proves nothing). Every field is escaped as Apache escapes its log: ``"`` and ``\\``
with a backslash, every control or non-ASCII character as ``\\xhh`` (``\\uhhhh`` above U+00FF),
so a quote, CR, LF, ESC or NUL in a query or a User-Agent cannot end a field or a line, nor reach
the terminal that shows the log.

The service takes keys only in the ``Authorization`` header and the login form's body, neither of
which is logged; a key pasted into a URL by mistake (``?token=``, ``?api_key=``…) is still a
secret, so the value of a query parameter with such a name is logged as ``[redacted]``, in the
request line and in the Referer.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterable
from typing import Any

from predictionservice.config import ConfigError
from web.requestid import ENVIRON_KEY

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_ESCAPES = {code: f"\\x{code:02x}" for code in range(256) if code < 0x20 or code >= 0x7F}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"


# Query parameters whose value is a secret wherever it is sent: the word, any case, alone or after
# a separator (``key``, ``api_key``, ``access_token``, ``X-Api-Key``; not ``modelkey``, a model's
# name); the value runs to the next & ; or #.
_SECRET_PARAMETER = re.compile(
    r"(?i)(?P<name>(?:^|(?<=[&;]))(?:[^=&;#]*[-_.])?(?:token|key|apikey|secret|password|passwd|auth|authorization)=)[^&;#]*"
)


def redacted(uri: str) -> str:
    """The URI with the value of every secret-named query parameter replaced (the path kept: a
    model key in /models/<key> is a name, not a secret)."""
    path, mark, query = uri.partition("?")
    return path + mark + _SECRET_PARAMETER.sub(r"\g<name>[redacted]", query) if mark else uri


def escaped(text: Any) -> str:
    """text as a log field may hold it: printable ASCII, quotes and backslashes escaped."""
    value = str(text).translate(_ESCAPES)
    if not value.isascii():  # what is left beyond ASCII is above U+00FF
        value = "".join(c if c.isascii() else f"\\u{ord(c):04x}" for c in value)
    return value


def proxy_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """The trusted_proxies setting: addresses or networks (CIDR); a wrong entry stops the start."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"trusted_proxies: {entry!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().removeprefix("::ffff:"))
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, proxies: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in proxies)


def from_trusted_proxy(environ: dict[str, Any], proxies: tuple[Network, ...]) -> bool:
    """Whether the peer is one of the trusted proxies (whose X-Forwarded-* headers are believed)."""
    return bool(proxies) and _trusted(_address(environ.get("REMOTE_ADDR") or ""), proxies)


def client_address(environ: dict[str, Any], proxies: tuple[Network, ...]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the rightmost
    address of X-Forwarded-For that is not a trusted proxy's (a part that is no address stops the
    walk at the proxy that passed it on)."""
    peer = environ.get("REMOTE_ADDR") or "-"
    if not proxies or not _trusted(_address(peer), proxies):
        return peer
    client = peer
    for part in reversed(environ.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _address(part)
        if address is None:
            break
        client = str(address)
        if not _trusted(address, proxies):
            break
    return client


def log_line(environ: dict[str, Any], client: str, method: str, uri: str, start: Any, status: str, size: Any) -> str:
    """The combined log format, every field escaped, with the request's id at its end ('-' when
    the app never ran)."""
    return '%s - %s [%s] "%s %s %s" %s %s "%s" "%s" %s' % (  # noqa: UP031 - the log format's own notation
        escaped(client),
        escaped(environ.get("REMOTE_USER") or "-"),
        time.strftime("%d/%b/%Y:%H:%M:%S %z", start),
        escaped(method),
        escaped(redacted(uri)),
        escaped(environ.get("SERVER_PROTOCOL")),
        escaped(status.split(None, 1)[0]),
        escaped(size or "-"),
        escaped(redacted(environ.get("HTTP_REFERER", "-"))),
        escaped(environ.get("HTTP_USER_AGENT", "-")),
        escaped(environ.get(ENVIRON_KEY, "-")),
    )
