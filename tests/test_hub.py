"""The Hub without silent loss, in memory: positions, history, resume,
catch-up of slow subscribers, presence. Real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import pytest

from tests.support import until
from websockets_lite import (
    ConnectionClosedError,
    Hub,
    MemoryBackend,
    Position,
    connect,
)


def stamped(topic: str, position: Position, message) -> str:
    """A formatter: each message carries its position, as a client needs."""
    return json.dumps({"position": str(position), "message": message})


def read(raw) -> tuple[Position, str]:
    event = json.loads(raw)
    return Position.parse(event["position"]), event["message"]


def subscriber(hub: Hub, ready: list | None = None):
    """A handler: subscribe to the path's topic, resuming from ?since=...,
    say whether it recovered, then wait."""

    async def handler(ws):
        path, _, query = ws.request.path.partition("?since=")
        since = Position.parse(query) if query else None
        async with hub.subscribe(ws, path.strip("/"), since=since) as subscription:
            await ws.send(json.dumps({"recovered": subscription.recovered}))
            if ready is not None:
                ready.append(ws)
            await ws.wait_closed()

    return handler


class TestPositions:
    async def test_offsets_count_per_topic_and_epochs_name_a_backend(self):
        hub = Hub()
        one = [await hub.publish("a", f"{i}") for i in range(3)]
        assert [p.offset for p in one] == [1, 2, 3]
        assert len({p.epoch for p in one}) == 1
        assert (await hub.publish("b", "x")).offset == 1
        assert await hub.position("a") == one[-1]
        assert await Hub().position("a") is None
        other = await Hub().publish("a", "x")
        assert other.offset == 1 and other.epoch != one[0].epoch

    def test_position_text_form(self):
        position = Position("0123abcd", 42)
        assert str(position) == "0123abcd:42"
        assert Position.parse(str(position)) == position
        for bad in ["", "42", "abc:", "abc:x", ":1", "a:-1"]:
            with pytest.raises(ValueError):
                Position.parse(bad)


class TestHistory:
    async def test_off_by_default(self):
        hub = Hub()
        await hub.publish("t", "one")
        assert await hub.history("t") == []

    async def test_bounded_since_and_limit(self):
        hub = Hub(history_size=3)
        positions = [await hub.publish("t", f"m{i}") for i in range(5)]
        assert await hub.history("t") == [(p, f"m{i}") for i, p in enumerate(positions)][2:]
        assert await hub.history("t", limit=2) == [(positions[3], "m3"), (positions[4], "m4")]
        assert await hub.history("t", since=positions[2]) == [
            (positions[3], "m3"), (positions[4], "m4")
        ]
        assert await hub.history("t", since=positions[2], limit=1) == [(positions[3], "m3")]
        assert await hub.history("t", since=Position("other", 1)) == []
        assert await hub.history("t", limit=10) == await hub.history("t")

    async def test_ttl_expires_the_topic_and_starts_a_new_epoch(self):
        hub = Hub(history_size=10, history_ttl=0.05)
        first = await hub.publish("t", "old")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.1
        await until(lambda: loop.time() > deadline)
        assert await hub.history("t") == []
        second = await hub.publish("t", "new")
        assert second.offset == 1 and second.epoch != first.epoch

    def test_bad_settings(self):
        with pytest.raises(ValueError, match="history_size"):
            Hub(history_size=-1)
        with pytest.raises(ValueError, match="history_ttl"):
            Hub(history_ttl=0)
        with pytest.raises(TypeError, match="formatter"):
            Hub(formatter="json")  # type: ignore[arg-type]


class TestResume:
    async def test_resume_delivers_exactly_what_was_missed_then_live(self, start_server):
        hub = Hub(history_size=100, formatter=stamped)
        server = await start_server(subscriber(hub))
        async with connect(server.uri + "/room") as ws:
            assert json.loads(await ws.recv()) == {"recovered": None}
            await until(lambda: hub.topics.get("room"))
            await hub.publish("room", "before 1")
            await hub.publish("room", "before 2")
            last, message = read(await ws.recv())
            assert message == "before 1"
            # The client got "before 1" and then left (before 2 was in flight).
        await until(lambda: not hub.topics)
        for i in range(3):
            await hub.publish("room", f"while away {i}")
        async with connect(f"{server.uri}/room?since={last}") as ws:
            # The replay comes first: entering the subscription sends it.
            got = [read(await ws.recv()) for _ in range(4)]
            assert json.loads(await ws.recv()) == {"recovered": True}
            assert [m for _, m in got] == ["before 2", *(f"while away {i}" for i in range(3))]
            assert [p.offset for p, _ in got] == [last.offset + 1 + i for i in range(4)]
            await hub.publish("room", "live")
            assert read(await ws.recv())[1] == "live"

    async def test_a_gap_no_longer_in_the_history_replays_nothing(self, start_server):
        hub = Hub(history_size=2, formatter=stamped)
        server = await start_server(subscriber(hub))
        first = await hub.publish("room", "kept out")
        for i in range(3):
            await hub.publish("room", f"later {i}")
        for since in (first, Position("an old epoch", 1)):
            async with connect(f"{server.uri}/room?since={since}") as ws:
                assert json.loads(await ws.recv()) == {"recovered": False}
                await until(lambda: hub.topics.get("room"))
                await hub.publish("room", "live")
                assert read(await ws.recv())[1] == "live"  # nothing partial before it

    async def test_without_history_resume_recovers_only_when_nothing_was_missed(
        self, start_server
    ):
        hub = Hub(formatter=stamped)
        server = await start_server(subscriber(hub))
        latest = await hub.publish("room", "one")
        async with connect(f"{server.uri}/room?since={latest}") as ws:
            assert json.loads(await ws.recv()) == {"recovered": True}
        await hub.publish("room", "two")
        async with connect(f"{server.uri}/room?since={latest}") as ws:
            assert json.loads(await ws.recv()) == {"recovered": False}

    async def test_resume_while_publishing_has_no_gap_and_no_duplicate(self, start_server):
        hub = Hub(history_size=10_000, formatter=stamped)
        server = await start_server(subscriber(hub))
        since = await hub.publish("room", "start")
        stop = asyncio.Event()

        async def publisher():
            while not stop.is_set():
                await hub.publish("room", "x")
                await asyncio.sleep(0)

        task = asyncio.ensure_future(publisher())
        try:
            async with connect(
                f"{server.uri}/room?since={since}", message_queue_size=None
            ) as ws:
                offsets = []
                while len(offsets) < 500:
                    event = json.loads(await ws.recv())
                    if "recovered" in event:
                        assert event["recovered"] is True
                    else:
                        offsets.append(Position.parse(event["position"]).offset)
                stop.set()
                await task
                end = (await hub.position("room")).offset
                while offsets[-1] < end:
                    offsets.append(read(await ws.recv())[0].offset)
            assert offsets == list(range(since.offset + 1, end + 1))
        finally:
            stop.set()
            await task


def small_buffers(ws) -> None:
    """Shrink the kernel's buffers on both ends, so that a client that does
    not read fills the server's write buffer after a few KiB."""
    ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


@pytest.fixture(params=["memory", "redis"])
async def make_hub(request):
    """Hubs on the memory backend, and on Redis (a real redis-server)."""
    hubs: list[Hub] = []

    def make(history_size: int = 0, formatter=None, **kwargs) -> Hub:
        if request.param == "memory":
            hub = Hub(history_size=history_size, formatter=formatter, **kwargs)
        else:
            from websockets_lite import RedisBackend

            url = request.getfixturevalue("redis_server").url
            backend = RedisBackend(url, history_size=history_size)
            hub = Hub(backend, formatter=formatter, **kwargs)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.close()


class TestSlowSubscribers:
    async def _slow_client(self, start_server, hub: Hub, write_limit: int = 8192):
        connections: list = []
        server = await start_server(subscriber(hub, connections), write_limit=write_limit)
        client = await connect(
            server.uri + "/room", max_message_size=None, message_queue_size=1, compression=None
        )
        small_buffers(client)
        assert json.loads(await client.recv()) == {"recovered": None}
        await until(lambda: connections)
        peer = connections[0]
        peer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
        )
        client.transport.pause_reading()  # the client stops reading
        return client, peer

    @pytest.mark.parametrize("cache", [2**20, 0])
    async def test_caught_up_in_order_with_a_bounded_buffer(self, start_server, make_hub, cache):
        # With the default cache, from the publications the hub keeps in
        # memory (no backend read); without it, from the backend's history.
        hub = make_hub(history_size=10_000, formatter=stamped, catch_up_cache=cache)
        reads = []
        read_history = hub.backend.read

        async def counted(*args):
            reads.append(args)
            return await read_history(*args)

        hub.backend.read = counted  # type: ignore[method-assign]
        client, peer = await self._slow_client(start_server, hub)
        fast = await connect(
            client.request.headers["Host"].join(["ws://", "/room"]), message_queue_size=None
        )
        assert json.loads(await fast.recv()) == {"recovered": None}
        payload = "x" * 1000
        most = 0
        for _ in range(400):
            await hub.publish("room", payload)
            most = max(most, peer.stats.write_buffer_size)
            await asyncio.sleep(0)
        assert peer.stats.broadcasts_skipped > 0  # it did fall behind
        assert most <= 8192 + 1100  # write_limit, plus the message that crossed it
        client.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 2**20
        )
        client.transport.resume_reading()
        offsets = [read(await client.recv())[0].offset for _ in range(400)]
        assert offsets == list(range(1, 401))
        fast_offsets = [read(await fast.recv())[0].offset for _ in range(400)]
        assert fast_offsets == list(range(1, 401))
        await hub.publish("room", "live again")
        assert read(await client.recv())[1] == "live again"
        assert hub.stats.catch_ups > 0
        catch_up_reads = [args for args in reads if args[1] is not None]
        assert bool(catch_up_reads) is (cache == 0)
        await client.close()
        await fast.close()

    async def test_closed_with_1013_when_the_history_no_longer_covers_it(
        self, start_server, make_hub
    ):
        hub = make_hub(history_size=20, formatter=stamped)
        client, _ = await self._slow_client(start_server, hub)
        for _ in range(400):
            await hub.publish("room", "x" * 1000)
            await asyncio.sleep(0)
        client.transport.resume_reading()
        with pytest.raises(ConnectionClosedError) as caught:
            while True:
                await client.recv()
        assert caught.value.code == 1013

    async def test_without_history_slow_ones_are_skipped_as_before(self, start_server, make_hub):
        hub = make_hub(formatter=stamped)
        client, peer = await self._slow_client(start_server, hub)
        for _ in range(400):
            await hub.publish("room", "x" * 1000)
            await asyncio.sleep(0)
        assert peer.stats.broadcasts_skipped > 0
        client.transport.resume_reading()
        await until(lambda: peer.stats.write_buffer_size == 0)
        await hub.publish("room", "end")
        offsets = []
        while True:
            position, message = read(await client.recv())
            offsets.append(position.offset)
            if message == "end":
                break
        # The skipped ones are gone, and the gap shows in the offsets.
        assert offsets != list(range(1, 402)) and offsets == sorted(offsets)
        await client.close()


def test_recent_publications_kept_for_catching_up_are_bounded():
    from websockets_lite.pubsub.hub import Topic

    hub = Hub(history_size=50, catch_up_cache=1000)
    topic = Topic("t")
    for offset in range(1, 200):
        hub._remember(topic, Position("e", offset), "x" * 30)
    size = sys.getsizeof("x" * 30)  # what each one takes in memory
    assert topic.recent_bytes == size * len(topic.recent) <= 1000
    assert [entry[0].offset for entry in topic.recent] == list(range(200 - 1000 // size, 200))
    topic.last = Position("e", 199)
    assert hub._recent_after(topic, Position("e", 197)) == [
        (Position("e", 198), "x" * 30), (Position("e", 199), "x" * 30)
    ]
    assert hub._recent_after(topic, Position("e", 199)) == []
    assert hub._recent_after(topic, Position("e", 100)) is None  # dropped already
    assert hub._recent_after(topic, Position("other", 198)) is None
    hub._remember(topic, Position("new", 1), "y")  # a new epoch starts over
    assert list(topic.recent) == [(Position("new", 1), "y")]
    assert topic.recent_bytes == sys.getsizeof("y")
    wide = "\N{GRINNING FACE}" * 200  # 200 characters, 800 bytes of memory
    for offset in range(2, 5):
        hub._remember(topic, Position("new", offset), wide)
    assert [entry[0].offset for entry in topic.recent] == [4]
    few = Hub(history_size=10)
    for offset in range(1, 100):
        few._remember(topic, Position("new", offset + 1), "z")
    assert len(topic.recent) == 10  # never more than the history holds
    with pytest.raises(ValueError, match="catch_up_cache"):
        Hub(catch_up_cache=-1)


class TestPresence:
    async def test_who_is_there_and_joins_and_leaves(self, start_server):
        hub = Hub()

        async def handler(ws):
            name = ws.request.path.strip("/")
            if name == "watcher":
                async with hub.subscribe(ws, hub.presence_topic("room")):
                    await ws.send("ready")
                    await ws.wait_closed()
                return
            async with hub.subscribe(ws, "room", presence={"name": name}):
                await ws.send(str(ws.id))
                await ws.wait_closed()

        server = await start_server(handler)
        async with connect(server.uri + "/watcher") as watcher:
            assert await watcher.recv() == "ready"
            async with connect(server.uri + "/alice") as alice:
                alice_id = await alice.recv()
                async with connect(server.uri + "/bob") as bob:
                    bob_id = await bob.recv()
                    assert await hub.presence("room") == {
                        alice_id: {"name": "alice"}, bob_id: {"name": "bob"}
                    }
                    assert await hub.presence_count("room") == 2
            events = [json.loads(await watcher.recv()) for _ in range(4)]
        assert [(e["type"], e["info"]["name"]) for e in events] == [
            ("join", "alice"), ("join", "bob"), ("leave", "bob"), ("leave", "alice")
        ]
        assert events[0]["id"] == alice_id
        await until(lambda: not hub.topics)
        assert await hub.presence("room") == {}

    async def test_presence_must_be_json(self):
        hub = Hub()
        with pytest.raises(TypeError):
            hub.subscribe(None, "room", presence={"when": object()})  # type: ignore[arg-type]


async def test_formatter_per_subscription_and_a_failing_formatter(start_server, caplog):
    hub = Hub()

    def upper(topic, position, message):
        return message.upper()

    def broken(topic, position, message):
        raise RuntimeError("bug in a formatter")

    async def handler(ws):
        formatter = {"/upper": upper, "/broken": broken}.get(ws.request.path)
        async with hub.subscribe(ws, "t", formatter=formatter):
            await ws.send("ready")
            await ws.wait_closed()

    server = await start_server(handler)
    async with connect(server.uri + "/upper") as up, connect(server.uri + "/plain") as plain, \
            connect(server.uri + "/broken") as bad:
        for ws in (up, plain, bad):
            assert await ws.recv() == "ready"
        await hub.publish("t", "hello")
        assert await up.recv() == "HELLO" and await plain.recv() == "hello"
    assert any("formatter failed" in r.getMessage() for r in caplog.records)


async def test_subscribing_twice_on_one_topic_is_refused(start_server):
    hub = Hub()
    errors = []

    async def handler(ws):
        async with hub.subscribe(ws, "t"):
            try:
                async with hub.subscribe(ws, "t"):
                    pass
            except ValueError as exc:
                errors.append(exc)
        await ws.close()

    server = await start_server(handler)
    async with connect(server.uri) as ws:
        await ws.wait_closed()
    assert errors and "already subscribed" in str(errors[0])
    assert MemoryBackend().history_size == 0
