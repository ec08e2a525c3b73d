"""The command line, run as a user would: real processes, real sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from websockets_lite import ConnectionClosedOK, connect


async def start_echo_server() -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "websockets_lite", "serve", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
    assert line.startswith("echo server listening on ws://127.0.0.1:"), line
    return process, line.split()[-1]


async def test_serve_echoes_and_stops_gracefully_on_sigterm():
    process, url = await start_echo_server()
    try:
        async with connect(url) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_connect_sends_lines_from_a_pipe_and_prints_replies():
    process, url = await start_echo_server()
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "websockets_lite", "connect", url,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(client.communicate(b"hello\nworld\n"), 20)
        assert client.returncode == 0, stderr
        assert stdout.decode().splitlines() == ["hello", "world"]
        assert b"connection closed: 1000" in stderr
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 10)


async def test_connect_reports_a_bad_url():
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "websockets_lite", "connect", "http://nope",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ},
    )
    _, stderr = await asyncio.wait_for(client.communicate(), 20)
    assert client.returncode == 1
    assert b"not a valid WebSocket URI" in stderr
