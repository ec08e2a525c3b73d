"""The command line, run as a user would: real processes, real sockets."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import socket
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


async def run_cli(*args: str, stdin: bytes = b"", timeout: float = 20) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "websockets_lite", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_connect_survives_a_line_of_invalid_utf8():
    process, url = await start_echo_server()
    try:
        code, stdout, stderr = await run_cli("connect", url, stdin=b"caf\xe9\nok\n")
        assert code == 0, stderr
        assert stdout.splitlines() == ["caf\N{REPLACEMENT CHARACTER}", "ok"]
        assert "not valid UTF-8" in stderr and "Traceback" not in stderr
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 10)


async def test_a_bare_url_connects_and_version_is_shown():
    process, url = await start_echo_server()
    try:
        code, stdout, _ = await run_cli(url, stdin=b"hello\n")
        assert code == 0 and stdout.splitlines() == ["hello"]
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 10)
    from websockets_lite import __version__

    code, stdout, _ = await run_cli("--version")
    assert code == 0 and stdout.strip() == f"websockets_lite {__version__}"


async def test_bad_port_and_port_in_use_print_one_line():
    code, _, stderr = await run_cli("serve", "--port", "99999")
    assert code == 2 and "not a port number" in stderr and "Traceback" not in stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in ("serve", "chat"):
            code, _, stderr = await run_cli(command, "--port", str(port))
            assert code == 1, stderr
            assert stderr.strip().splitlines() == [
                f"cannot listen on 127.0.0.1:{port}: Address already in use"
            ]


async def test_help_shows_defaults():
    code, stdout, _ = await run_cli("serve", "--help")
    assert code == 0 and "(default: 8765)" in stdout and "(default: 127.0.0.1)" in stdout


async def test_chat_with_an_unreachable_redis_fails_at_startup():
    code, stdout, stderr = await run_cli("chat", "--port", "0", "--redis", "redis://127.0.0.1:1/0")
    assert code == 1 and stdout == ""
    [line] = stderr.strip().splitlines()
    assert line.startswith("cannot reach Redis at redis://127.0.0.1:1/0: ")
    code, _, stderr = await run_cli(
        "chat", "--port", "0", "--workers", "2", "--redis", "redis://127.0.0.1:1/0"
    )
    assert code == 1 and "cannot reach Redis" in stderr and "Traceback" not in stderr


async def test_interactive_terminal_shows_prompt_and_markers():
    process, url = await start_echo_server()
    primary, secondary = pty.openpty()
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "websockets_lite", "connect", url,
            stdin=secondary, stdout=secondary, stderr=secondary,
        )
        os.close(secondary)
        output = b""

        async def read_until(marker: bytes) -> None:
            nonlocal output
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(10):
                while marker not in output:
                    output += await loop.run_in_executor(None, os.read, primary, 4096)

        await read_until(b"> ")
        os.write(primary, b"hello\n")
        await read_until(b"< hello")
        os.write(primary, b"\x04")  # end of input on a terminal
        assert await asyncio.wait_for(client.wait(), 10) == 0
        assert b"connected to" in output
    finally:
        os.close(primary)
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 10)


def test_console_script_is_installed():
    import shutil
    import subprocess

    script = shutil.which("websockets-lite", path=os.path.dirname(sys.executable))
    assert script is not None, "pip install -e . installs the websockets-lite script"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0 and result.stdout.startswith("websockets_lite ")
