"""What the per-connection counters cost per message, against the time a
message takes in bench/run.py's results.

    python bench/run.py --scenarios rtt,fanout-tick --runs 5 --json results.json
    python bench/counters.py results.json

``server.stats`` adds up each connection's counters when asked: per
message, the only cost is the counter updates themselves (slot attributes
of the connection). This times those updates (in a loop over a slotted
object shaped like a connection, on the same Python) and divides by the
time per message that websockets_lite took in the benchmark: a round trip
updates 8 counters (``bytes_in``, ``messages_in``, ``messages_out`` and
``bytes_out`` on each side), a broadcast delivery 3 (``messages_out``,
``broadcasts_sent``, ``bytes_out``).
"""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path

UPDATES = {"rtt": 8, "fanout-tick": 3}


class Counted:
    __slots__ = ("broadcasts_sent", "bytes_in", "bytes_out", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self.broadcasts_sent = 0


def update_cost_ns() -> float:
    """Nanoseconds for one ``self.x += n`` on a slot, the loop's own cost removed."""
    counted = Counted()
    loops = 1_000_000
    updated = min(timeit.repeat(
        "c.bytes_out += n", globals={"c": counted, "n": 100}, number=loops, repeat=7))
    empty = min(timeit.repeat("n", globals={"n": 100}, number=loops, repeat=7))
    return (updated - empty) / loops * 1e9


def main() -> None:
    results = json.loads(Path(sys.argv[1]).read_text())
    cost = update_cost_ns()
    print(f"one counter update: {cost:.1f} ns")
    for scenario, updates in UPDATES.items():
        rate = results[scenario]["medians"]["websockets_lite"]  # per second
        per_message_ns = 1e9 / rate
        share = updates * cost / per_message_ns
        print(f"{scenario}: {updates} updates = {updates * cost:.0f} ns of "
              f"{per_message_ns:,.0f} ns per message: {share:.2%}")


if __name__ == "__main__":
    main()
