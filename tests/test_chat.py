"""The chat demo, run as a user runs it: `python -m websockets_lite chat`,
driven over WebSocket and in headless Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys

import pytest

from tests.support import until
from websockets_lite import ConnectionClosedError, InvalidStatus, connect

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class Chat:
    """A chat demo process."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url  # http://127.0.0.1:PORT/
        self.ws = url.replace("http://", "ws://") + "ws"

    @classmethod
    async def start(cls, *args: str) -> Chat:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "websockets_lite", "chat", "--port", "0", *args,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line.startswith("chat demo on http://"), line
        return cls(process, line.split()[3])

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 20)


@pytest.fixture
async def chat():
    started: list[Chat] = []

    async def start(*args: str) -> Chat:
        started.append(await Chat.start(*args))
        return started[-1]

    yield start
    for process in started:
        if process.process.returncode is None:
            process.process.kill()
            await process.process.wait()


async def http_get(url: str) -> bytes:
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    return response


async def events(ws, count: int) -> list[dict]:
    return [json.loads(await ws.recv()) for _ in range(count)]


class TestOverWebSocket:
    async def test_page_health_and_404(self, chat):
        server = await chat()
        page = await http_get(server.url)
        assert page.startswith(b"HTTP/1.1 200 ") and b"<title>websockets_lite chat" in page
        assert (await http_get(server.url + "healthz")).endswith(b"OK\n")
        assert (await http_get(server.url + "nope")).startswith(b"HTTP/1.1 404 ")
        with pytest.raises(InvalidStatus):
            await connect(server.url.replace("http://", "ws://") + "nope")
        assert await server.stop() == 0

    async def test_two_people_in_a_room(self, chat):
        server = await chat()
        alice = await connect(server.ws + "?room=r1&name=alice")
        assert await events(alice, 1) == [{"type": "join", "name": "alice"}]
        bob = await connect(server.ws + "?room=r1&name=bob")
        assert await events(bob, 1) == [{"type": "join", "name": "bob"}]
        assert await events(alice, 1) == [{"type": "join", "name": "bob"}]
        other = await connect(server.ws + "?room=elsewhere&name=carol")
        await events(other, 1)
        await alice.send("hello bob")
        expected = {"type": "message", "name": "alice", "text": "hello bob"}
        assert await events(bob, 1) == [expected]
        assert await events(alice, 1) == [expected]
        await bob.close()
        assert await events(alice, 1) == [{"type": "leave", "name": "bob"}]
        await alice.send(b"binary")
        with pytest.raises(ConnectionClosedError) as info:
            await alice.recv()
        assert info.value.code == 1003
        with pytest.raises(asyncio.TimeoutError):  # carol saw nothing of room r1
            async with asyncio.timeout(0.2):
                await other.recv()
        await other.close()
        await server.stop()

    async def test_oversized_message_gets_1009(self, chat):
        server = await chat()
        async with connect(server.ws + "?room=r&name=n") as ws:
            await events(ws, 1)
            await ws.send("x" * 5000)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.code == 1009
        await server.stop()

    async def test_rooms_shared_through_redis_by_two_processes(self, chat, redis_server):
        one = await chat("--redis", redis_server.url)
        two = await chat("--redis", redis_server.url)
        alice = await connect(one.ws + "?room=shared&name=alice")
        await events(alice, 1)
        bob = await connect(two.ws + "?room=shared&name=bob")
        await events(bob, 1)
        assert await events(alice, 1) == [{"type": "join", "name": "bob"}]
        await bob.send("across processes")
        assert await events(alice, 1) == [
            {"type": "message", "name": "bob", "text": "across processes"}
        ]
        await alice.close()
        await bob.close()
        assert await one.stop() == 0 and await two.stop() == 0

    async def test_workers_share_one_port(self, chat, redis_server):
        server = await chat("--redis", redis_server.url, "--workers", "2")
        clients = [await connect(server.ws + f"?room=w&name=c{i}") for i in range(8)]
        for ws in clients:
            await until(lambda ws=ws: ws.stats.messages_in >= 1)
        await clients[0].send("to everyone")
        for ws in clients:
            async with asyncio.timeout(10):
                while (event := json.loads(await ws.recv()))["type"] != "message":
                    pass
            assert event["text"] == "to everyone"
        for ws in clients:
            await ws.close()
        assert await server.stop() == 0

    async def test_workers_exit_when_their_parent_is_killed(self, chat, redis_server):
        server = await chat("--redis", redis_server.url, "--workers", "2")
        port = int(server.url.rsplit(":", 1)[1].strip("/"))
        server.process.kill()  # no chance to stop its workers
        await server.process.wait()

        async def refused() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return True
            writer.close()
            return False

        async with asyncio.timeout(15):
            while not await refused():
                await asyncio.sleep(0.05)

    async def test_workers_need_redis(self):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "websockets_lite", "chat", "--workers", "2",
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
        assert process.returncode == 2 and b"--workers needs --redis" in stderr


def browser_missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed"
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"no Chromium at {CHROMIUM} (Debian package 'chromium'; set CHROMIUM=path)"
    return None


@pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")
class TestInABrowser:
    async def test_two_pages_in_one_room_see_each_other(self, chat):
        from playwright.async_api import async_playwright, expect

        server = await chat()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync"],
            )
            try:
                alice = await browser.new_page()
                bob = await browser.new_page()
                await alice.goto(server.url + "?room=browsers&name=alice")
                await expect(alice.locator("#status")).to_have_text("alice in room browsers")
                await bob.goto(server.url)  # bob fills in the form
                await bob.fill("#name", "bob")
                await bob.fill("#room", "browsers")
                await bob.click("#join button")
                await expect(alice.locator("#log .system").last).to_have_text("bob joined")
                await alice.fill("#text", "hi bob, from a browser")
                await alice.click("#send button")
                await expect(bob.locator("#log .message").last).to_have_text(
                    "alice: hi bob, from a browser"
                )
                await bob.fill("#text", "hi alice")
                await bob.press("#text", "Enter")
                await expect(alice.locator("#log .message").last).to_have_text("bob: hi alice")
            finally:
                await browser.close()
        assert await server.stop() == 0
