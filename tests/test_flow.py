"""Pure unit tests of the backpressure objects. No event loop, no sockets."""

from __future__ import annotations

import math

import pytest

from websockets_lite.flow import READ_CHUNK, ReadFlow, WriteFlow, memory_bound


class Calls:
    def __init__(self) -> None:
        self.pauses = self.resumes = 0
        self.now = 0.0

    def pause(self) -> None:
        self.pauses += 1

    def resume(self) -> None:
        self.resumes += 1

    def clock(self) -> float:
        return self.now


class FakeWaiter:
    def __init__(self) -> None:
        self.result: object = "pending"

    def done(self) -> bool:
        return self.result != "pending"

    def set_result(self, result: None) -> None:
        assert not self.done()
        self.result = result

    def set_exception(self, exception: BaseException) -> None:
        assert not self.done()
        self.result = exception


class TestReadFlow:
    @pytest.mark.parametrize("size, capacity", [(0, 1), (1, 2), (4, 5)])
    def test_full_after_size_plus_one_messages(self, size, capacity):
        calls = Calls()
        flow = ReadFlow(size, calls.pause, calls.resume, calls.clock)
        for _ in range(capacity - 1):
            flow.messages.append("m")
            assert not flow.full
        flow.messages.append("m")
        assert flow.full
        assert flow.take() == "m"
        assert not flow.full

    @pytest.mark.parametrize("size", [1, 64, 65, math.inf])
    def test_take_is_first_in_first_out(self, size):
        calls = Calls()
        flow = ReadFlow(size, calls.pause, calls.resume, calls.clock)
        flow.messages.extend(["a", "b", "c"])
        assert [flow.take(), flow.take(), flow.take()] == ["a", "b", "c"]

    def test_unbounded(self):
        calls = Calls()
        flow = ReadFlow(math.inf, calls.pause, calls.resume, calls.clock)
        flow.messages.extend(["m"] * 10_000)
        assert not flow.full

    def test_negative_size_is_refused(self):
        calls = Calls()
        with pytest.raises(ValueError):
            ReadFlow(-1, calls.pause, calls.resume, calls.clock)

    def test_pause_and_resume_call_through_once_and_account_time(self):
        calls = Calls()
        flow = ReadFlow(1, calls.pause, calls.resume, calls.clock)
        flow.resume_reading()
        assert calls.resumes == 0
        calls.now = 10.0
        flow.pause_reading()
        flow.pause_reading()
        assert (calls.pauses, flow.paused) == (1, True)
        calls.now = 12.5
        assert flow.paused_seconds() == 2.5
        flow.resume_reading()
        flow.resume_reading()
        assert (calls.resumes, flow.paused) == (1, False)
        calls.now = 20.0
        assert flow.paused_seconds() == 2.5


class TestWriteFlow:
    def test_resume_wakes_every_waiter(self):
        flow = WriteFlow()
        flow.pause()
        waiters = [FakeWaiter() for _ in range(3)]
        flow.waiters.extend(waiters)
        flow.resume()
        assert not flow.paused
        assert [w.result for w in waiters] == [None, None, None]
        assert not flow.waiters

    def test_lost_fails_every_waiter(self):
        flow = WriteFlow()
        flow.pause()
        waiters = [FakeWaiter() for _ in range(2)]
        flow.waiters.extend(waiters)
        exc = ConnectionError("gone")
        flow.lost(exc)
        assert [w.result for w in waiters] == [exc, exc]

    def test_done_waiters_are_skipped(self):
        # A sender cancelled while waiting leaves a done future behind.
        flow = WriteFlow()
        done = FakeWaiter()
        done.set_result(None)
        flow.waiters.append(done)
        flow.resume()
        flow.waiters.append(done)
        flow.lost(ConnectionError())


def test_memory_bound_numbers():
    # The docs state: queue 1, max size 1 MiB, write limit 64 KiB.
    assert memory_bound(1, 2**20, 2**16) == 3 * 2**20 + READ_CHUNK + 2**16
    assert memory_bound(0, 2**20, 2**16) == 2 * 2**20 + READ_CHUNK + 2**16
    assert memory_bound(math.inf, 2**20, 2**16) == math.inf
