"""Connecting through a proxy: HTTP CONNECT (built in, over TLS for
``https://`` proxies) and SOCKS 4, 4a, 5 and 5h (through the ``python-socks``
package, the optional extra ``socks``).

:func:`proxy_for` reads the proxy of a destination from the environment
(``https_proxy`` for wss://, ``http_proxy`` for ws://, ``all_proxy`` for
both, ``no_proxy`` to bypass), as :func:`urllib.request.getproxies` does.
:func:`http_tunnel` and :func:`socks_socket` open the tunnel; the client
then speaks WebSocket (and TLS for wss://) through it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import socket
import ssl as ssl_module
import urllib.parse
from typing import Any

from .exceptions import InvalidProxy, InvalidProxyMessage, InvalidProxyStatus, ProxyError
from .http import Headers, serialize_head

__all__ = ["ProxyURI", "http_tunnel", "parse_proxy", "proxy_for", "socks_socket"]

#: Longest answer head accepted from a proxy.
MAX_PROXY_HEAD = 16 * 1024
_SCHEMES = {"http": 80, "https": 443, "socks5h": 1080, "socks5": 1080, "socks4a": 1080,
            "socks4": 1080}


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyURI:
    """A parsed proxy URL."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks")


def parse_proxy(url: str) -> ProxyURI:
    """Parse ``http://``, ``https://``, ``socks5h://``, ``socks5://``,
    ``socks4a://`` or ``socks4://`` URLs; raise
    :exc:`~websockets_lite.InvalidProxy`."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidProxy(url, str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidProxy(url, f"unsupported scheme {parts.scheme!r}")
    if not parts.hostname:
        raise InvalidProxy(url, "the host is missing")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidProxy(url, "a proxy URL has no path")
    return ProxyURI(
        scheme,
        parts.hostname,
        port or _SCHEMES[scheme],
        urllib.parse.unquote(parts.username) if parts.username else None,
        urllib.parse.unquote(parts.password) if parts.password else None,
    )


def _environ(scheme: str) -> str | None:
    """``<scheme>_proxy`` from the environment, as urllib.request.getproxies()
    reads it on POSIX: the lowercase name wins (empty: unset), and an
    uppercase ``HTTP_PROXY`` is ignored in a CGI script (CVE-2016-1000110).
    Reads four names, not the whole environment twice: connect() calls it
    every time."""
    value = os.environ.get(f"{scheme}_proxy")
    if value is not None:
        return value or None
    if scheme == "http" and "REQUEST_METHOD" in os.environ:
        return None
    return os.environ.get(f"{scheme.upper()}_PROXY") or None


def proxy_for(host: str, port: int, secure: bool) -> str | None:
    """The proxy URL the environment gives for this destination, if any."""
    url = _environ("https" if secure else "http") or _environ("all")
    if url is None:
        return None
    no_proxy = _environ("no")
    if no_proxy is not None and _bypassed(host.lower(), port, no_proxy):
        return None
    return url


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (comma-separated names or domain suffixes, with
    or without a port, or ``*``) covers the destination, as urllib's
    proxy_bypass() says."""
    if no_proxy == "*":
        return True
    with_port = f"{host}:{port}"
    for name in no_proxy.split(","):
        name = name.strip().lstrip(".").lower()
        suffix = "." + name
        if name and (
            name in (host, with_port) or host.endswith(suffix) or with_port.endswith(suffix)
        ):
            return True
    return False


class _Connecting(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT; nothing else may arrive."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.answered.done():
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end >= 0:
            if end + 4 < len(self.head):  # the destination spoke first: not WebSocket
                self.answered.set_exception(InvalidProxyMessage("data after the proxy's answer"))
            else:
                self.answered.set_result(bytes(self.head[:end]))
        elif len(self.head) > MAX_PROXY_HEAD:
            self.answered.set_exception(InvalidProxyMessage("proxy answer too large"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            error = InvalidProxyMessage("the proxy closed the connection before answering")
            error.__cause__ = exc or EOFError()
            self.answered.set_exception(error)


async def http_tunnel(
    proxy: ProxyURI,
    host: str,
    port: int,
    *,
    user_agent: str | None = None,
    ssl: ssl_module.SSLContext | None = None,
) -> asyncio.Transport:
    """Open a tunnel to ``host:port`` with HTTP CONNECT; return the transport,
    whose protocol the caller replaces. ``ssl`` is the context for an
    ``https://`` proxy. Raises :exc:`~websockets_lite.InvalidProxyStatus`
    when the proxy refuses and :exc:`~websockets_lite.InvalidProxyMessage`
    when its answer is not HTTP."""
    loop = asyncio.get_running_loop()
    tls: dict[str, Any] = {}
    if proxy.scheme == "https":
        tls = {"ssl": ssl or ssl_module.create_default_context(), "server_hostname": proxy.host}
    transport, connecting = await loop.create_connection(
        _Connecting, proxy.host, proxy.port, **tls
    )
    try:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        headers = Headers([("Host", target)])
        if user_agent is not None:
            headers.add("User-Agent", user_agent)
        if proxy.username is not None:
            token = base64.b64encode(f"{proxy.username}:{proxy.password or ''}".encode()).decode()
            headers.add("Proxy-Authorization", f"Basic {token}")
        transport.write(serialize_head(f"CONNECT {target} HTTP/1.1", headers.raw_items()))
        head = await connecting.answered
        status, headers = _parse_answer(head)
        if not 200 <= status < 300:
            raise InvalidProxyStatus(status, headers)
    except BaseException:
        transport.abort()
        raise
    return transport


def _parse_answer(head: bytes) -> tuple[int, Headers]:
    """The status and headers of a proxy's answer head (without its blank line)."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise InvalidProxyMessage(f"invalid answer from the proxy: {head[:100]!r}")
    headers = Headers()
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise InvalidProxyMessage(f"invalid header from the proxy: {line[:100]!r}")
        headers.add(name.decode("latin-1"), value.strip().decode("latin-1"))
    return int(code), headers


async def socks_socket(proxy: ProxyURI, host: str, port: int) -> socket.socket:
    """Connect to ``host:port`` through a SOCKS proxy; return the socket.
    ``socks5h`` and ``socks4a`` let the proxy resolve ``host``."""
    try:
        from python_socks import ProxyError as SocksError
        from python_socks.async_.asyncio import Proxy
    except ImportError:
        raise ImportError(
            "SOCKS proxies need python-socks: pip install websockets_lite[socks]"
        ) from None
    scheme = {"socks5h": "socks5", "socks4a": "socks4"}.get(proxy.scheme, proxy.scheme)
    credentials = ""
    if proxy.username is not None:
        user = urllib.parse.quote(proxy.username, safe="")
        credentials = f"{user}:{urllib.parse.quote(proxy.password or '', safe='')}@"
    url = f"{scheme}://{credentials}{proxy.host}:{proxy.port}"
    remote_dns = proxy.scheme in ("socks5h", "socks4a")
    try:
        return await Proxy.from_url(url, rdns=remote_dns).connect(dest_host=host, dest_port=port)
    except SocksError as exc:
        raise ProxyError(f"the SOCKS proxy refused: {exc}") from exc
