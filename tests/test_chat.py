"""The chat demo, run as a user runs it: `python -m websockets_lite chat`,
driven over WebSocket and in headless Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sys
import urllib.parse

import pytest

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
        if "--port" not in args:
            args = ("--port", "0", *args)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "websockets_lite", "chat", *args,
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


async def until_event(ws, kind: str, name: str | None = None, **fields) -> list[dict]:
    """Read events until one of ``kind`` with ``fields`` (and, for joins and
    leaves, of ``name``) arrives; return all read."""
    seen = []
    async with asyncio.timeout(10):
        while True:
            event = json.loads(await ws.recv())
            seen.append(event)
            if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()) and (
                name is None or event.get("info", {}).get("name") == name
            ):
                return seen


async def joined(url: str, **query: str):
    """Connect to the chat; return the connection and what came before ``ready``."""
    ws = await connect(url + "?" + urllib.parse.urlencode(query))
    return ws, await until_event(ws, "ready")


def messages(seen: list[dict]) -> list[str]:
    return [f"{e['name']}: {e['text']}" for e in seen if e["type"] == "message"]


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
        alice, before = await joined(server.ws, room="r1", name="alice")
        assert before[-1] == {"type": "ready", "recovered": None}
        [online] = await until_event(alice, "online")
        assert [m["name"] for m in online["members"].values()] == ["alice"]
        bob, _ = await joined(server.ws, room="r1", name="bob")
        await until_event(alice, "join", name="bob")
        other, _ = await joined(server.ws, room="elsewhere", name="carol")
        await alice.send(json.dumps({"text": "hello bob", "cid": "c1"}))
        for ws in (bob, alice):
            [event] = [e for e in await until_event(ws, "message") if e["type"] == "message"]
            assert {k: event[k] for k in ("name", "text", "cid")} == {
                "name": "alice", "text": "hello bob", "cid": "c1"
            }
            assert event["position"].endswith(":1")
        await bob.close()
        await until_event(alice, "leave", name="bob")
        await alice.send(b"binary")
        with pytest.raises(ConnectionClosedError) as info:
            while True:
                await alice.recv()
        assert info.value.code == 1003
        with pytest.raises(asyncio.TimeoutError):  # carol saw nothing of room r1
            async with asyncio.timeout(0.2):
                while True:
                    assert json.loads(await other.recv())["type"] in ("online", "join")
        await other.close()
        await server.stop()

    async def test_latest_messages_on_join_and_resume_after_a_drop(self, chat):
        server = await chat()
        alice, _ = await joined(server.ws, room="r", name="alice")
        for i in range(3):
            await alice.send(f"m{i}")  # plain text works too
        seen = []
        while len(messages(seen)) < 3:
            seen += await until_event(alice, "message")
        last = [e for e in seen if e["type"] == "message"][-1]["position"]
        alice.abort()  # the connection drops
        bob, before = await joined(server.ws, room="r", name="bob")
        assert messages(before) == ["alice: m0", "alice: m1", "alice: m2"]  # history on join
        for i in range(5):
            await bob.send(f"while away {i}")
        for _ in range(5):
            await until_event(bob, "message")
        alice, before = await joined(server.ws, room="r", name="alice", since=last)
        assert messages(before) == [f"bob: while away {i}" for i in range(5)]
        assert before[-1] == {"type": "ready", "recovered": True}
        await alice.close()
        await bob.close()
        await server.stop()

    async def test_blank_messages_and_same_names(self, chat):
        server = await chat()
        one, _ = await joined(server.ws, room="r", name="sam", client="tab-1")
        two, _ = await joined(server.ws, room="r", name="sam", client="tab-2")
        await one.send(json.dumps({"text": "   "}))
        assert (await until_event(one, "error"))[-1]["text"] == "Blank messages are not sent."
        await one.send("hello")
        await two.send("hi")
        tags = set()
        for _ in range(2):
            seen = await until_event(one, "message")
            tags.add(next(e["tag"] for e in seen if e["type"] == "message"))
        assert len(tags) == 2  # two people called sam, told apart
        again, _ = await joined(server.ws, room="r", name="sam", client="tab-1")
        await again.send("back")
        event = [e for e in await until_event(two, "message", text="back")][-1]
        assert event["tag"] in tags  # the same tab keeps its tag
        for ws in (one, two, again):
            await ws.close()
        await server.stop()

    async def test_oversized_message_gets_1009(self, chat):
        server = await chat()
        ws, _ = await joined(server.ws, room="r", name="n")
        await ws.send("x" * 5000)
        with pytest.raises(ConnectionClosedError) as info:
            while True:
                await ws.recv()
        assert info.value.code == 1009
        await server.stop()

    async def test_rooms_shared_through_redis_by_two_processes(self, chat, redis_server):
        one = await chat("--redis", redis_server.url)
        two = await chat("--redis", redis_server.url)
        alice, _ = await joined(one.ws, room="shared", name="alice")
        bob, _ = await joined(two.ws, room="shared", name="bob")
        await until_event(alice, "join", name="bob")
        await bob.send("across processes")
        seen = await until_event(alice, "message")
        assert messages(seen) == ["bob: across processes"]
        carol, _ = await joined(one.ws, room="shared", name="carol")
        online = (await until_event(carol, "online"))[-1]
        assert sorted(m["name"] for m in online["members"].values()) == ["alice", "bob", "carol"]
        for ws in (alice, bob, carol):
            await ws.close()
        assert await one.stop() == 0 and await two.stop() == 0

    async def test_workers_share_one_port(self, chat, redis_server):
        server = await chat("--redis", redis_server.url, "--workers", "2")
        clients = [(await joined(server.ws, room="w", name=f"c{i}"))[0] for i in range(8)]
        await clients[0].send("to everyone")
        for ws in clients:
            seen = await until_event(ws, "message")
            assert seen[-1]["text"] == "to everyone"
        for ws in clients:
            await ws.close()
        assert await server.stop() == 0

def browser_missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed"
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return f"no Chromium at {CHROMIUM} (Debian package 'chromium'; set CHROMIUM=path)"
    return None


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def log_lines(page, selector: str = "#log .message") -> list[str]:
    return [text.strip() for text in await page.locator(selector).all_inner_texts()]


@pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")
class TestInABrowser:
    async def test_two_pages_in_one_room_see_each_other(self, chat, browser):
        from playwright.async_api import expect

        server = await chat()
        alice = await browser.new_page()
        bob = await (await browser.new_context()).new_page()
        await alice.goto(server.url + "?room=browsers&name=alice")
        await expect(alice.locator("#status")).to_have_text("alice in room browsers")
        await bob.goto(server.url)  # bob fills in the form
        await bob.fill("#name", "bob")
        await bob.fill("#room", "browsers")
        await bob.click("#join button")
        await expect(alice.locator("#log .system").last).to_have_text(
            re.compile(r"bob #\w{4} joined")
        )
        assert "name=bob" in bob.url and "room=browsers" in bob.url  # a reload rejoins
        await expect(alice.locator("#online li")).to_have_count(2)
        await alice.fill("#text", "hi bob, from a browser")
        await alice.click("#send button")
        await expect(bob.locator("#log .message").last).to_have_text(
            re.compile(r"alice #\w{4}: hi bob, from a browser")
        )
        await bob.fill("#text", "hi alice")
        await bob.press("#text", "Enter")
        await expect(alice.locator("#log .message").last).to_have_text(
            re.compile(r"bob #\w{4}: hi alice")
        )
        # Blank messages are refused; a reload rejoins and shows the room's latest.
        await bob.fill("#text", "   ")
        await bob.press("#text", "Enter")
        await expect(bob.locator("#hint")).to_have_text("Type a message first.")
        await bob.reload()
        await expect(bob.locator("#status")).to_have_text("bob in room browsers")
        assert len(await log_lines(bob)) == 2
        assert await server.stop() == 0

    @pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis-workers"])
    async def test_a_page_that_was_offline_shows_what_it_missed_once_in_order(
        self, chat, browser, shared, request
    ):
        from playwright.async_api import expect

        if shared:  # reconnecting may land on the other worker: Redis has the history
            redis_url = request.getfixturevalue("redis_server").url
            server = await chat("--redis", redis_url, "--workers", "2")
        else:
            server = await chat()
        context_a = await browser.new_context()
        a = await context_a.new_page()
        b = await (await browser.new_context()).new_page()
        await a.goto(server.url + "?room=r&name=a")
        await b.goto(server.url + "?room=r&name=b")
        await expect(a.locator("#online li")).to_have_count(2)
        await b.fill("#text", "before")
        await b.press("#text", "Enter")
        await expect(a.locator("#log .message")).to_have_count(1)
        await context_a.set_offline(True)  # and reconnecting fails meanwhile
        await a.evaluate("chat.ws.close()")
        await expect(a.locator("#status")).to_contain_text("reconnecting in")
        for i in range(5):
            await b.fill("#text", f"missed {i}")
            await b.press("#text", "Enter")
        await expect(b.locator("#log .message")).to_have_count(6)
        await a.fill("#text", "typed while offline")
        await a.press("#text", "Enter")
        await expect(a.locator("#log .pending")).to_have_count(1)  # kept until sent
        await context_a.set_offline(False)
        await expect(a.locator("#status")).to_have_text("a in room r", timeout=20_000)
        await expect(b.locator("#log .message").last).to_have_text(
            re.compile(r"a #\w{4}: typed while offline")
        )
        await expect(a.locator("#log .message")).to_have_count(7)
        lines = await log_lines(a)
        assert [line.split(": ", 1)[1] for line in lines] == [
            "before", *(f"missed {i}" for i in range(5)), "typed while offline"
        ]
        await expect(a.locator("#log .pending")).to_have_count(0)
        assert await server.stop() == 0

    async def test_reconnects_after_a_server_restart(self, browser):
        from playwright.async_api import expect

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        server = await Chat.start("--port", port)
        try:
            page = await browser.new_page()
            await page.goto(server.url + "?room=r&name=p")
            await expect(page.locator("#status")).to_have_text("p in room r")
            await page.fill("#text", "hello")
            await page.press("#text", "Enter")
            await expect(page.locator("#log .message")).to_have_count(1)
            await server.stop()
            await expect(page.locator("#status")).to_contain_text("reconnecting in")
            server = await Chat.start("--port", port)
            await expect(page.locator("#status")).to_have_text("p in room r", timeout=20_000)
            # A new server is a new epoch: the page is told what it may have missed.
            await expect(
                page.locator("#log .system", has_text="some messages were missed")
            ).to_have_count(1)
        finally:
            await server.stop()
