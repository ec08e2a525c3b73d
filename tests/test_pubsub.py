"""The Hub: in memory, and across processes through a real redis-server."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from tests.support import until
from websockets_lite import (
    BackendError,
    Backoff,
    ConnectionClosedError,
    Hub,
    InvalidStatus,
    MemoryBackend,
    SubscriptionLost,
    connect,
)


class FlakyBackend(MemoryBackend):
    """A memory backend whose connection the test can break and restore."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed: list[str] = []
        self.unsubscribed: list[str] = []

    async def subscribe(self, topic: str) -> None:
        self.subscribed.append(topic)

    async def unsubscribe(self, topic: str) -> None:
        self.unsubscribed.append(topic)

    def break_(self) -> None:
        assert self._listener is not None
        self._listener.lost(ConnectionError("backend went away"))

    def restore(self) -> None:
        assert self._listener is not None
        self._listener.restored()


def rooms_handler(hub: Hub):
    """Subscribe to the topics named in the path (/a,b), publish "topic:text"."""

    async def handler(ws):
        topics = ws.request.path.strip("/").split(",")
        subscriptions = [hub.subscribe(ws, topic) for topic in topics]
        for subscription in subscriptions:
            await subscription.__aenter__()
        try:
            await ws.send("ready")
            async for message in ws:
                topic, _, text = message.partition(":")
                await hub.publish(topic, text)
        finally:
            for subscription in reversed(subscriptions):
                await subscription.__aexit__(None, None, None)

    return handler


class TestMemoryHub:
    async def test_topics_subscribers_and_delivery(self, start_server):
        hub = Hub()
        server = await start_server(rooms_handler(hub))
        a = await connect(server.uri + "/news,sport")
        b = await connect(server.uri + "/news")
        c = await connect(server.uri + "/weather")
        for ws in (a, b, c):
            assert await ws.recv() == "ready"
        assert hub.topics == {"news": 2, "sport": 1, "weather": 1}
        await c.send("news:extra")
        assert [await a.recv(), await b.recv()] == ["extra", "extra"]
        await c.send("sport:goal")
        assert await a.recv() == "goal"
        await c.send("nobody:listens")
        await b.send("weather:rain")
        assert await c.recv() == "rain"
        await a.close()
        await until(lambda: hub.topics == {"news": 1, "weather": 1})
        await b.close()
        await c.close()
        await until(lambda: not hub.topics)

    async def test_binary_and_type_check(self):
        hub = Hub()
        with pytest.raises(TypeError):
            await hub.publish("t", 42)
        await hub.publish("empty", b"\x00")  # no subscribers: nothing happens

    async def test_backend_subscribe_on_first_and_unsubscribe_on_last(self, start_server):
        backend = FlakyBackend()
        hub = Hub(backend)
        server = await start_server(rooms_handler(hub))
        one = await connect(server.uri + "/t")
        two = await connect(server.uri + "/t")
        for ws in (one, two):
            assert await ws.recv() == "ready"
        assert backend.subscribed == ["t"]
        await one.close()
        await until(lambda: hub.topics == {"t": 1})
        assert backend.unsubscribed == []
        await two.close()
        await until(lambda: backend.unsubscribed == ["t"])

    async def test_lost_backend_interrupts_subscriptions_and_refuses_new_ones(self):
        backend = FlakyBackend()
        hub = Hub(backend)
        await hub.start()
        outcome: list[BaseException] = []

        async def subscriber(ws):
            try:
                async with hub.subscribe(ws, "t"):
                    await asyncio.Event().wait()  # only listens: would wait forever
            except SubscriptionLost as exc:
                outcome.append(exc)

        fake_ws = object()
        task = asyncio.create_task(subscriber(fake_ws))
        await until(lambda: hub.topics == {"t": 1})
        backend.break_()
        await task
        assert isinstance(outcome[0], SubscriptionLost)
        assert "backend went away" in str(outcome[0])
        assert not hub.topics
        with pytest.raises(SubscriptionLost):
            async with hub.subscribe(fake_ws, "t"):
                pass
        backend.restore()
        async with hub.subscribe(fake_ws, "t"):
            assert hub.topics == {"t": 1}

    async def test_outside_cancellation_is_not_swallowed(self):
        backend = FlakyBackend()
        hub = Hub(backend)

        async def subscriber():
            async with hub.subscribe(object(), "t"):
                await asyncio.Event().wait()

        task = asyncio.create_task(subscriber())
        await until(lambda: hub.topics)
        task.cancel()
        backend.break_()  # both happen: the outside cancellation wins
        with pytest.raises(asyncio.CancelledError):
            await task

    async def test_nested_subscriptions_raise_one_subscription_lost(self):
        backend = FlakyBackend()
        hub = Hub(backend)
        raised: list[BaseException] = []

        async def subscriber():
            ws = object()
            try:
                async with hub.subscribe(ws, "a"), hub.subscribe(ws, "b"):
                    await asyncio.Event().wait()
            except BaseException as exc:
                raised.append(exc)

        task = asyncio.create_task(subscriber())
        await until(lambda: len(hub.topics) == 2)
        backend.break_()
        await task
        assert len(raised) == 1 and isinstance(raised[0], SubscriptionLost)
        assert not task.cancelled()


class TestRedis:
    async def test_publish_and_receive_in_process(self, redis_server, start_server):
        from websockets_lite import RedisBackend

        async with Hub(RedisBackend(redis_server.url)) as hub:
            server = await start_server(rooms_handler(hub))
            a = await connect(server.uri + "/room")
            b = await connect(server.uri + "/room")
            for ws in (a, b):
                assert await ws.recv() == "ready"
            await until_subscribed(redis_server, "room", 1)
            await a.send("room:héllo")
            assert [await a.recv(), await b.recv()] == ["héllo", "héllo"]
            await hub.publish("room", b"\x00\xff")
            assert [await a.recv(), await b.recv()] == [b"\x00\xff", b"\x00\xff"]
            await a.close()
            await b.close()

    async def test_redis_going_away_is_told_and_survived(self, redis_server, start_server):
        from websockets_lite import RedisBackend

        backend = RedisBackend(
            redis_server.url, heartbeat=0.5, backoff=Backoff(initial=0.05, maximum=0.2)
        )
        async with Hub(backend) as hub:
            lost: list[BaseException] = []

            async def handler(ws):
                try:
                    async with hub.subscribe(ws, "room"):
                        await ws.send("ready")
                        await ws.wait_closed()
                except SubscriptionLost as exc:
                    lost.append(exc)
                    await ws.close(1013, "pub/sub lost")

            server = await start_server(handler)
            ws = await connect(server.uri)
            assert await ws.recv() == "ready"
            redis_server.stop()
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1013 and lost and not hub.available
            with pytest.raises(BackendError):
                await hub.publish("room", "while down")
            redis_server.start()
            await until(lambda: hub.available, timeout=10)
            ws = await connect(server.uri)
            assert await ws.recv() == "ready"
            await until_subscribed(redis_server, "room", 1)
            await hub.publish("room", "back")
            await ws.close()

    async def test_a_hub_used_again_after_its_block_starts_again(self, redis_server, start_server):
        from websockets_lite import RedisBackend

        hub = Hub(RedisBackend(redis_server.url))
        async with hub:
            await hub.publish("room", "first life")
        async with asyncio.timeout(5):  # it used to hang here, in publish()
            await hub.publish("room", "started again on first use")
            await hub.close()
            async with hub:
                server = await start_server(rooms_handler(hub))
                ws = await connect(server.uri + "/room")
                assert await ws.recv() == "ready"
                await until_subscribed(redis_server, "room", 1)
                await hub.publish("room", "second life")
                assert await ws.recv() == "second life"
                await ws.close()

    async def test_across_two_server_processes_and_a_redis_restart(self, redis_server):
        servers = [start_process(redis_server.url) for _ in range(2)]
        try:
            ports = [int(process.stdout.readline()) for process in servers]
            one, two = await joined(ports)
            await until_subscribed(redis_server, "room", 2)
            await one.send("from process one")
            assert await two.recv() == "from process one"
            assert await one.recv() == "from process one"
            await two.send(b"and back")
            assert [await one.recv(), await two.recv()] == [b"and back", b"and back"]

            redis_server.stop()  # both processes lose Redis: subscribers are told
            for ws in (one, two):
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1013

            redis_server.start()
            one, two = await joined(ports)
            await until_subscribed(redis_server, "room", 2)
            await two.send("after the restart")
            assert await one.recv() == "after the restart"
            await one.close()
            await two.close()
        finally:
            for process in servers:
                process.kill()
                process.wait()


def start_process(url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pubsub_server", url], stdout=subprocess.PIPE, text=True
    )


async def joined(ports: list[int]):
    """Connect to each port until the server's hub has Redis again."""
    connections = []
    for port in ports:
        async with asyncio.timeout(10):
            while True:
                try:
                    ws = await connect(f"ws://127.0.0.1:{port}/")
                except (OSError, InvalidStatus):
                    await asyncio.sleep(0.05)
                    continue
                try:
                    if await ws.recv() == "ready":
                        break
                except ConnectionClosedError:  # 1013: Redis not back yet there
                    await asyncio.sleep(0.05)
        connections.append(ws)
    return connections


async def until_subscribed(redis_server, topic: str, processes: int) -> None:
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
