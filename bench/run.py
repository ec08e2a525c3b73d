"""Benchmarks: websockets_lite side by side with its peers, in one run.

    python bench/run.py                      # everything, 3 runs, medians
    python bench/run.py --quick              # a smoke run: short and small
    python bench/run.py --scenarios rtt,connect --runs 5
    python bench/run.py --uvloop             # the same on uvloop

Every scenario runs the server and the client in separate processes over
127.0.0.1 (bench/peers.py). Results are medians of --runs runs, and the
ratio of each library to websockets measured in the same run: this machine
is shared and noisy, so compare ratios, never absolute numbers across runs.
Nothing here is a test: no threshold is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PEERS = str(HERE / "peers.py")
LIBRARIES = ["websockets", "websockets_lite", "aiohttp", "wsproto-raw", "picows", "raw"]
SCENARIOS = ["rtt", "stream64", "stream16k", "large", "fanout", "fanout-fast", "fanout-tick",
             "connect", "idle-mem", "idle-mem-deflate"]
#: Scenarios where every server gets the same fast client (bench/peers.py).
FAST_CLIENT = {"fanout-fast": "fanout", "fanout-tick": "fanout-tick"}
LOWER_IS_BETTER = {"idle-mem", "idle-mem-deflate"}
QUICK = {"BENCH_RTT_SECONDS": "1", "BENCH_STREAM64": "10000", "BENCH_STREAM16K": "1000",
         "BENCH_LARGE": "4", "BENCH_FANOUT_CLIENTS": "100", "BENCH_FANOUT_MESSAGES": "200",
         "BENCH_CONNECT_SECONDS": "1", "BENCH_IDLE_CONNECTIONS": "300"}


def start_server(
    library: str, scenario: str, env: dict[str, str]
) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, PEERS, "server", library, scenario],
                               stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"{library} server did not start for {scenario}")
    return process, int(line.split()[1])


def stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait()


def run_client_server(library: str, scenario: str, env: dict[str, str]) -> dict[str, Any]:
    client = "fast" if scenario in FAST_CLIENT else library
    base = FAST_CLIENT.get(scenario, scenario)
    server, port = start_server(library, base, env)
    try:
        result = subprocess.run(
            [sys.executable, PEERS, "client", client, base, f"ws://127.0.0.1:{port}/"],
            capture_output=True, text=True, env=env, timeout=600,
        )
        cpu = None
        if result.returncode == 0 and base.startswith("fanout"):
            assert server.stdout is not None
            line = server.stdout.readline()  # "CPU seconds", once the broadcast is over
            if line.startswith("CPU "):
                cpu = float(line.split()[1])
    finally:
        stop(server)
    if result.returncode != 0:
        raise RuntimeError(f"{library} {scenario}: {result.stderr.strip()[-500:]}")
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if cpu is not None:
        deliveries = int(env.get("BENCH_FANOUT_CLIENTS", "500")) * int(
            env.get("BENCH_FANOUT_MESSAGES", "1000"))
        outcome["server_us_per_delivery"] = cpu / deliveries * 1e6
    return outcome


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def idle_memory(port: int, pid: int, connections: int, compression: str | None) -> float:
    """Server RSS growth per connection: N clients connect, exchange one
    message (so that compression state exists) and stay idle."""
    import websockets.asyncio.client as client

    async def one() -> Any:
        ws = await client.connect(f"ws://127.0.0.1:{port}/", compression=compression,
                                  ping_interval=None)
        await ws.send("hello, this is a message of a typical size: " + "x" * 64)
        await ws.recv()
        return ws

    warm = await one()
    await warm.close()
    await asyncio.sleep(0.3)
    before = rss_kib(pid)
    clients = [await one() for _ in range(connections)]
    await asyncio.sleep(0.5)
    after = rss_kib(pid)
    await asyncio.gather(*(ws.close() for ws in clients))
    return (after - before) / connections


def run_idle(library: str, scenario: str, env: dict[str, str]) -> dict[str, Any]:
    compression = "deflate" if scenario == "idle-mem-deflate" else None
    env = dict(env, BENCH_COMPRESSION=compression or "")
    connections = int(env.get("BENCH_IDLE_CONNECTIONS", "1000"))
    server, port = start_server(library, "rtt", env)
    try:
        kib = asyncio.run(idle_memory(port, server.pid, connections, compression))
    finally:
        stop(server)
    return {"value": kib, "unit": "KiB/connection"}


def run_one(library: str, scenario: str, env: dict[str, str]) -> dict[str, Any]:
    if scenario.startswith("idle-mem"):
        return run_idle(library, scenario, env)
    return run_client_server(library, scenario, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--uvloop", action="store_true", help="run every peer on uvloop")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    libraries = args.libraries.split(",")
    if "websockets" not in libraries:
        libraries.insert(0, "websockets")  # the reference of every ratio
    env = dict(os.environ)
    if args.quick:
        env.update(QUICK)
    if args.uvloop:
        env["BENCH_UVLOOP"] = "1"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    values: dict[tuple[str, str], list[float]] = {}
    extras: dict[tuple[str, str], list[dict[str, Any]]] = {}
    units: dict[str, str] = {}
    started = time.time()
    for run in range(args.runs):
        for scenario in scenarios:
            for library in libraries:  # interleaved: drift hits every library alike
                result = run_one(library, scenario, env)
                values.setdefault((scenario, library), []).append(result["value"])
                extras.setdefault((scenario, library), []).append(result)
                units[scenario] = result["unit"]
                print(f"run {run + 1}/{args.runs} {scenario:17} {library:16} "
                      f"{result['value']:12.1f} {result['unit']}", file=sys.stderr, flush=True)

    medians = {key: statistics.median(series) for key, series in values.items()}
    print()
    loop = ", uvloop" if args.uvloop else ""
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}{loop}; {args.runs} runs, medians; "
          f"{time.time() - started:.0f} s")
    others = [library for library in libraries if library != "websockets"]
    header = f"{'scenario':18} {'unit':16} {'websockets':>11} " + " ".join(
        f"{library:>16}" for library in others) + "  ratios to websockets"
    print(header)
    table: dict[str, Any] = {}
    for scenario in scenarios:
        reference = medians[(scenario, "websockets")]
        row = f"{scenario:18} {units[scenario]:16} {reference:11.1f} "
        row += " ".join(f"{medians[(scenario, library)]:16.1f}" for library in others)
        ratios = {library: medians[(scenario, library)] / reference for library in others}
        row += "  " + " ".join(f"{library}={ratio:.2f}x" for library, ratio in ratios.items())
        print(row)
        table[scenario] = {
            "unit": units[scenario], "lower_is_better": scenario in LOWER_IS_BETTER,
            "medians": {library: medians[(scenario, library)] for library in libraries},
            "ratios_to_websockets": ratios,
            "runs": {library: extras[(scenario, library)] for library in libraries},
        }
    if "websockets_lite" in libraries:
        print()
        print("websockets_lite against each peer (its value / the peer's; above 1 is better)")
        peers = [library for library in libraries if library != "websockets_lite"]
        print(f"{'scenario':18} " + " ".join(f"{library:>12}" for library in peers))
        for scenario in scenarios:
            ours = medians[(scenario, "websockets_lite")]
            cells = []
            for library in peers:
                theirs = medians[(scenario, library)]
                ratio = theirs / ours if scenario in LOWER_IS_BETTER else ours / theirs
                cells.append(f"{ratio:11.2f}x")
            print(f"{scenario:18} " + " ".join(cells))
            table[scenario]["websockets_lite_against"] = dict(
                zip(peers, (float(cell[:-1]) for cell in cells), strict=True))
    fanouts = [scenario for scenario in scenarios if scenario.startswith("fanout")]
    if fanouts:
        print()
        print("server CPU per delivery, µs (median; steadier than the rates on a shared machine)")
        print(f"{'scenario':18} " + " ".join(f"{library:>16}" for library in libraries))
        for scenario in fanouts:
            cells = []
            for library in libraries:
                costs = [run["server_us_per_delivery"] for run in extras[(scenario, library)]
                         if "server_us_per_delivery" in run]
                cells.append(f"{statistics.median(costs):16.2f}" if costs else f"{'-':>16}")
            print(f"{scenario:18} " + " ".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
