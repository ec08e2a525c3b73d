"""Connecting through proxies: real proxy servers (pproxy) on 127.0.0.1 for
HTTP CONNECT (plain and over TLS) and SOCKS 4a/5/5h, plus proxies that
refuse or never answer."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import trustme

from tests.conftest import echo
from websockets_lite import (
    ConnectTimeout,
    InvalidProxy,
    InvalidProxyStatus,
    ProxyError,
    connect,
    serve,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Pproxy:
    """A pproxy process listening on 127.0.0.1."""

    def __init__(self, listen: str, *extra: str) -> None:
        self.port = free_port()
        address = listen.replace("PORT", str(self.port))
        # pproxy picks uvloop when installed, in a way that fails on 3.11.
        command = ("import sys; sys.modules['uvloop'] = None; "
                   "from pproxy.server import main; main()")
        self.process = subprocess.Popen(
            [sys.executable, "-c", command, "-l", address, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("pproxy did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def pproxy() -> Iterator[type[Pproxy]]:
    started: list[Pproxy] = []

    class Started(Pproxy):
        def __init__(self, listen: str, *extra: str) -> None:
            super().__init__(listen, *extra)
            started.append(self)

    yield Started
    for proxy in started:
        proxy.stop()


async def echo_through(uri: str, **kwargs) -> tuple[str, object]:
    async with connect(uri, **kwargs) as ws:
        await ws.send("through the proxy")
        return await ws.recv(), ws.remote_address


@pytest.mark.parametrize("scheme", ["http", "socks5h", "socks5", "socks4a"])
async def test_through_a_proxy(start_server, pproxy, scheme):
    server = await start_server(echo)
    proxy = pproxy("http+socks4+socks5://127.0.0.1:PORT")
    message, peer = await echo_through(server.uri, proxy=f"{scheme}://127.0.0.1:{proxy.port}")
    assert message == "through the proxy"
    assert peer[1] == proxy.port  # the TCP connection went to the proxy


async def test_wss_through_an_https_proxy(tmp_path, pproxy):
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    # The proxy speaks TLS too, with the same certificate authority.
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(cert)
    certificate.private_key_pem.write_to_path(key)
    proxy = pproxy("http+ssl://127.0.0.1:PORT", "--ssl", f"{cert},{key}")
    async with serve(echo, "127.0.0.1", 0, ssl=server_context) as server:
        port = server.sockets[0].getsockname()[1]
        message, peer = await echo_through(
            f"wss://localhost:{port}/", ssl=client_context,
            proxy=f"https://127.0.0.1:{proxy.port}", proxy_ssl=client_context,
        )
    assert message == "through the proxy" and peer[1] == proxy.port


async def test_proxy_credentials(start_server, pproxy):
    server = await start_server(echo)
    # --auth 0: no remembering that 127.0.0.1 authenticated once already.
    proxy = pproxy("http+socks5://127.0.0.1:PORT#alice:s3cret", "--auth", "0")
    for scheme in ("http", "socks5"):
        message, _ = await echo_through(
            server.uri, proxy=f"{scheme}://alice:s3cret@127.0.0.1:{proxy.port}"
        )
        assert message == "through the proxy"
    with pytest.raises(InvalidProxyStatus) as caught:
        await connect(server.uri, proxy=f"http://127.0.0.1:{proxy.port}")
    assert caught.value.status == 407
    with pytest.raises(ProxyError):
        await connect(server.uri, proxy=f"socks5://127.0.0.1:{proxy.port}")


async def fake_proxy(answer: bytes | None) -> tuple[asyncio.Server, int]:
    """A proxy that answers CONNECT with ``answer``, or never answers."""

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if answer is None:
            await asyncio.sleep(3600)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_proxy_that_refuses(start_server):
    server = await start_server(echo)
    proxy, port = await fake_proxy(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    async with proxy:
        with pytest.raises(InvalidProxyStatus) as caught:
            await connect(server.uri, proxy=f"http://127.0.0.1:{port}")
    assert caught.value.status == 403 and caught.value.response.status == 403


async def test_a_proxy_that_never_answers(start_server):
    server = await start_server(echo)
    proxy, port = await fake_proxy(None)
    async with proxy:
        with pytest.raises(ConnectTimeout):
            await connect(server.uri, proxy=f"http://127.0.0.1:{port}", connect_timeout=0.3)
        proxy.close()


async def test_the_environment_names_the_proxy(start_server, pproxy, monkeypatch):
    server = await start_server(echo)
    proxy = pproxy("http+socks5://127.0.0.1:PORT")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    _, peer = await echo_through(server.uri)  # proxy=True is the default
    assert peer[1] == proxy.port
    _, peer = await echo_through(server.uri, proxy=None)
    assert peer[1] == server.port
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    _, peer = await echo_through(server.uri)
    assert peer[1] == server.port
    monkeypatch.delenv("no_proxy")
    monkeypatch.delenv("http_proxy")
    monkeypatch.setenv("all_proxy", f"socks5h://127.0.0.1:{proxy.port}")
    _, peer = await echo_through(server.uri)
    assert peer[1] == proxy.port


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"http_proxy": "http://p:1"},
        {"HTTP_PROXY": "http://p:2"},
        {"HTTP_PROXY": "http://p:2", "http_proxy": ""},
        {"HTTP_PROXY": "http://p:2", "REQUEST_METHOD": "GET"},
        {"http_proxy": "http://p:1", "REQUEST_METHOD": "GET"},
        {"https_proxy": "http://p:3", "ALL_PROXY": "socks5h://p:4"},
        {"all_proxy": "socks5h://p:4", "no_proxy": "*"},
        {"http_proxy": "http://p:1", "no_proxy": "example.com, .internal,other:8080"},
        {"http_proxy": "http://p:1", "NO_PROXY": "EXAMPLE.com"},
        {"http_proxy": "http://p:1", "NO_PROXY": "example.com", "no_proxy": "elsewhere"},
    ],
)
def test_the_environment_is_read_as_urllib_reads_it(monkeypatch, environ):
    import urllib.request

    from websockets_lite.proxy import proxy_for

    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    proxies = urllib.request.getproxies()
    for host, port in [("example.com", 80), ("a.example.com", 443), ("x.internal", 80),
                       ("other", 8080), ("other", 80), ("Example.COM", 80), ("elsewhere", 1)]:
        for secure in (False, True):
            url = proxies.get("https" if secure else "http") or proxies.get("all")
            if url is not None and (
                urllib.request.proxy_bypass(f"{host}:{port}") or urllib.request.proxy_bypass(host)
            ):
                url = None
            assert proxy_for(host, port, secure) == url, (host, port, secure)


def test_bad_proxy_urls_fail_at_the_call():
    for bad in ["ftp://127.0.0.1:1", "http://", "http://host:99999", "http://h/path"]:
        with pytest.raises(InvalidProxy):
            connect("ws://127.0.0.1/", proxy=bad)
    with pytest.raises(TypeError, match="proxy"):
        connect("ws://127.0.0.1/", proxy=42)  # type: ignore[arg-type]


async def test_socks_without_python_socks(start_server, monkeypatch):
    import builtins

    server = await start_server(echo)
    real_import = builtins.__import__

    def without_python_socks(name, *args, **kwargs):
        if name.startswith("python_socks"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_python_socks)
    with pytest.raises(ImportError, match=r"websockets_lite\[socks\]"):
        await connect(server.uri, proxy="socks5h://127.0.0.1:1")
