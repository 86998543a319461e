"""web/accesslog.py: whose address the access log names, and fields no request can break out of
(the log itself is checked through a real server in test_modelserver.py)."""

from __future__ import annotations

import time

import pytest

from predictionservice.config import ConfigError
from web.accesslog import client_address, escaped, log_line, proxy_networks, redacted

PROXIES = proxy_networks(["127.0.0.1", "10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("192.0.2.9", "203.0.113.7", "192.0.2.9"),  # not a proxy: its header proves nothing
        ("127.0.0.1", "", "127.0.0.1"),  # a proxy that forwarded nothing
        ("127.0.0.1", "203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", "203.0.113.7, 10.1.2.3", "203.0.113.7"),  # two proxies in a row
        ("127.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the client's own claim is left of it
        ("127.0.0.1", '6.6.6.6" fake line', "127.0.0.1"),  # no address: the proxy that passed it on
        ("127.0.0.1", "10.0.0.1, 10.0.0.2", "10.0.0.1"),  # every hop a proxy: the farthest
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("::ffff:127.0.0.1", "203.0.113.7", "203.0.113.7"),  # an IPv4 peer on a dual-stack socket
    ],
)
def test_the_client_is_the_peer_unless_a_trusted_proxy_names_it(peer, forwarded, client):
    environ = {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded}
    assert client_address(environ, PROXIES) == client


def test_no_proxy_is_trusted_by_default():
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert client_address(environ, proxy_networks([])) == "127.0.0.1"


def test_a_wrong_proxy_entry_stops_the_start():
    with pytest.raises(ConfigError, match=r"trusted_proxies: 'proxy\.example'"):
        proxy_networks(["10.0.0.0/8", "proxy.example"])


def test_every_field_is_escaped_into_one_printable_line():
    assert escaped('a "b" \\ c') == 'a \\"b\\" \\\\ c'
    assert escaped("\x1b[2J\r\n\x00\x7f\xe9\u2028") == "\\x1b[2J\\x0d\\x0a\\x00\\x7f\\xe9\\u2028"
    environ = {"SERVER_PROTOCOL": "HTTP/1.1", "HTTP_USER_AGENT": 'x"\n1.2.3.4 - - [...] "GET / HTTP/1.1" 200'}
    line = log_line(environ, "127.0.0.1", "GET", '/a?q="', time.localtime(), "200 OK", "12")
    assert "\n" not in line and line.isprintable()
    assert line.startswith("127.0.0.1 - - [") and '"GET /a?q=\\" HTTP/1.1" 200 12 "-" "x\\"\\x0a1.2.3.4' in line


@pytest.mark.parametrize(
    ("uri", "logged"),
    [
        ("/models/?token=s3cret&page=2", "/models/?token=[redacted]&page=2"),
        ("/a?api_key=psk_abc#top", "/a?api_key=[redacted]#top"),
        ("/a?X-Api-Key=z;q=1", "/a?X-Api-Key=[redacted];q=1"),
        ("/a?x=1&Access_Token=q&b=2", "/a?x=1&Access_Token=[redacted]&b=2"),
        ("/a?password=&b=2", "/a?password=[redacted]&b=2"),
        ("/a?modelkey=0123&keys=3", "/a?modelkey=0123&keys=3"),  # names, not secrets
        ("/models/token=abc", "/models/token=abc"),  # a path is not a query
    ],
)
def test_a_secret_named_query_parameter_is_logged_redacted(uri, logged):
    assert redacted(uri) == logged
