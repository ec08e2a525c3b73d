"""The Hub without silent loss across processes, with a real redis-server:
concurrent publishers, resume, Redis restarts with and without persistence,
slow subscribers, presence of a process killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from tests.support import until
from websockets_lite import (
    BackendError,
    Backoff,
    ConnectionClosedError,
    Hub,
    Position,
    connect,
)


class Process:
    """A tests.hub_server process."""

    def __init__(self, url: str, history_size: int = 100_000, presence_ttl: float = 60) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.hub_server", url, str(history_size), str(presence_ttl)],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        self.uri = f"ws://127.0.0.1:{int(self.process.stdout.readline())}"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
async def processes(redis_server) -> AsyncIterator[list]:
    started: list[Process] = []

    def start(**kwargs) -> Process:
        process = Process(redis_server.url, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


async def subscribe(uri: str, since: Position | None = None):
    """Subscribe; return the connection, the server's status message, and
    the messages replayed before it (a resume sends them first)."""
    query = f"?since={since}" if since is not None else ""
    ws = await connect(f"{uri}/sub{query}", message_queue_size=None, max_message_size=None)
    replayed = []
    while "recovered" not in (event := json.loads(await ws.recv())):
        replayed.append((Position.parse(event["position"]), event["message"]))
    return ws, event, replayed


async def receive(ws) -> tuple[Position, str]:
    event = json.loads(await ws.recv())
    return Position.parse(event["position"]), event["message"]


async def publish(uri: str, n: int, tag: str) -> None:
    async with connect(f"{uri}/pub?n={n}&tag={tag}") as ws:
        assert await ws.recv() == "done"


async def test_two_processes_publish_10000_on_one_topic(processes, redis_server):
    one, two = processes(), processes()
    subscribers = [(await subscribe(p.uri))[0] for p in (one, two, one, two)]
    await until_subscribed(redis_server, 2)
    await asyncio.gather(publish(one.uri, 5000, "A"), publish(two.uri, 5000, "B"))
    for ws in subscribers:
        got = [await receive(ws) for _ in range(10_000)]
        offsets = [position.offset for position, _ in got]
        assert offsets == list(range(offsets[0], offsets[0] + 10_000))
        messages = [message for _, message in got]
        assert sorted(messages) == sorted([f"A-{i}" for i in range(5000)] +
                                          [f"B-{i}" for i in range(5000)])
        # Each publisher's own messages keep their order.
        assert [m for m in messages if m[0] == "A"] == [f"A-{i}" for i in range(5000)]
        await ws.close()


async def test_resubscribing_with_the_last_position_gets_exactly_the_rest(
    processes, redis_server
):
    server = processes()
    ws, _, _ = await subscribe(server.uri)
    await until_subscribed(redis_server, 1)
    publishing = asyncio.ensure_future(publish(server.uri, 3000, "M"))
    got = [await receive(ws) for _ in range(1000)]
    ws.abort()  # gone mid-stream
    await publishing
    ws, status, rest = await subscribe(server.uri, since=got[-1][0])
    assert status == {"recovered": True}
    assert [m for _, m in got + rest] == [f"M-{i}" for i in range(3000)]
    await ws.close()


async def test_redis_restart_with_persistence_loses_nothing(processes, redis_server, tmp_path):
    redis_server.stop()
    redis_server.start(persist_in=str(tmp_path))
    server = processes()
    ws, _, _ = await subscribe(server.uri)
    await until_subscribed(redis_server, 1)
    acknowledged: list[Position] = []
    from websockets_lite import RedisBackend

    # Every process that publishes on a topic stores its history alike.
    backend = RedisBackend(
        redis_server.url, history_size=100_000, heartbeat=0.5, backoff=Backoff(0.05, 2, 0.2)
    )
    async with Hub(backend) as hub:
        async def publisher() -> None:
            i = 0
            while len(acknowledged) < 300:
                try:
                    acknowledged.append(await hub.publish("room", f"n-{i}"))
                except BackendError:
                    await asyncio.sleep(0.01)
                i += 1
                await asyncio.sleep(0.002)

        task = asyncio.ensure_future(publisher())
        await until(lambda: len(acknowledged) >= 100)
        redis_server.process.kill()  # SIGKILL: only the append-only file survives
        redis_server.process.wait()
        redis_server.start(persist_in=str(tmp_path))
        await task
    received: list[Position] = []
    async with asyncio.timeout(20):
        while not received or received[-1].offset < acknowledged[-1].offset:
            received.append((await receive(ws))[0])
    offsets = [p.offset for p in received]
    assert offsets == list(range(offsets[0], offsets[-1] + 1))  # in order, no gap, no dup
    assert set(acknowledged) <= set(received)
    assert len({p.epoch for p in received}) == 1
    await ws.close()


async def test_redis_restart_without_persistence_is_a_new_epoch(processes, redis_server):
    server = processes()
    ws, _, _ = await subscribe(server.uri)
    await until_subscribed(redis_server, 1)
    await publish(server.uri, 10, "old")
    got = [await receive(ws) for _ in range(10)]
    redis_server.stop()  # and its data with it
    redis_server.start()
    # Live subscribers are told: what they might have missed is gone.
    with pytest.raises(ConnectionClosedError) as caught:
        async with asyncio.timeout(20):
            while True:
                await ws.recv()
    assert caught.value.code == 1013
    async with asyncio.timeout(20):
        while True:
            try:
                await publish(server.uri, 3, "new")
                break
            except ConnectionClosedError:
                await asyncio.sleep(0.1)  # the process has not reconnected yet
    ws, status, replayed = await subscribe(server.uri, since=got[-1][0])
    assert status == {"recovered": False} and replayed == []
    await publish(server.uri, 1, "live")
    position, message = await receive(ws)
    assert message == "live-0" and position.epoch != got[-1][0].epoch
    await ws.close()


async def test_a_killed_process_leaves_the_presence_within_its_ttl(processes, redis_server):
    ttl = 1.0
    doomed, survivor = processes(presence_ttl=ttl), processes(presence_ttl=ttl)
    watcher = await connect(f"{survivor.uri}/watch")
    assert await watcher.recv() == "ready"
    members = [await subscribe(doomed.uri), await subscribe(survivor.uri)]
    from websockets_lite import RedisBackend

    async with Hub(RedisBackend(redis_server.url)) as hub:
        await until(lambda: len(members) == 2)
        assert len(await hub.presence("room")) == 2
        assert {info["pid"] for info in (await hub.presence("room")).values()} == {
            doomed.process.pid, survivor.process.pid
        }
        joins = [json.loads(await watcher.recv())["type"] for _ in range(2)]
        assert joins == ["join", "join"]
        doomed.process.send_signal(signal.SIGKILL)
        loop = asyncio.get_running_loop()
        killed = loop.time()
        async with asyncio.timeout(ttl + 1):
            while await hub.presence_count("room") != 1:
                await asyncio.sleep(0.05)
        assert loop.time() - killed <= ttl + 0.2
        [info] = (await hub.presence("room")).values()
        assert info == {"pid": survivor.process.pid}
        # The survivor's refresh notices the dead member and announces it.
        event = json.loads(await asyncio.wait_for(watcher.recv(), 2 * ttl))
        assert event["type"] == "leave" and event["info"] == {"pid": doomed.process.pid}
    await watcher.close()
    await members[1][0].close()


async def test_publish_while_redis_is_down_fails_at_once(redis_server):
    from websockets_lite import RedisBackend

    backend = RedisBackend(redis_server.url, heartbeat=0.5, backoff=Backoff(0.05, 2, 0.2))
    async with Hub(backend, history_size=100) as hub:
        await hub.publish("t", "up")
        redis_server.stop()
        await until(lambda: not hub.available, timeout=5)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(BackendError):
            await hub.publish("t", "down")
        assert loop.time() - start < 0.1
        redis_server.start()
        await until(lambda: hub.available, timeout=10)
        await hub.publish("t", "up again")


async def test_listener_survives_idle_periods(redis_server, start_server):
    from websockets_lite import RedisBackend

    backend = RedisBackend(redis_server.url, heartbeat=0.2)
    hub = Hub(backend)
    lost: list[BaseException] = []
    hub.lost = lost.append  # type: ignore[method-assign]
    async with hub:
        async def handler(ws):
            async with hub.subscribe(ws, "t"):
                await ws.send("ready")
                await ws.wait_closed()

        server = await start_server(handler)
        async with connect(server.uri) as ws:
            assert await ws.recv() == "ready"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 1.5  # many heartbeats, nothing else
            await until(lambda: loop.time() > deadline)
            await hub.publish("t", "still here")
            assert await ws.recv() == "still here"
    assert lost == []


async def until_subscribed(redis_server, processes: int, topic: str = "room") -> None:
    """Wait until ``processes`` Redis connections subscribe to ``topic``."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with asyncio.timeout(10):
            while True:
                [(_, count)] = await client.pubsub_numsub(f"websockets_lite:{topic}")
                if count >= processes:
                    return
                await asyncio.sleep(0.01)
    finally:
        await client.aclose()
