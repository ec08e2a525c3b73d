"""Pure tests of close codes, exceptions and HTTP headers."""

from __future__ import annotations

import pytest

from websockets_lite import (
    Close,
    CloseCode,
    ConcurrencyError,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectTimeout,
    Headers,
    Response,
    WebSocketError,
)
from websockets_lite.exceptions import closed_exception


def test_close_str():
    assert str(Close(1000)) == "1000 (OK)"
    assert str(Close(1011, "oops")) == "1011 (internal error) oops"
    assert str(Close(3001, "x")) == "3001 (registered) x"
    assert str(Close(4000)) == "4000 (private use)"
    assert CloseCode.GOING_AWAY == 1001


@pytest.mark.parametrize(
    "rcvd, sent, ok",
    [
        (Close(1000), Close(1000), True),
        (Close(1001), Close(1001), True),
        (Close(1005), Close(1005), True),
        (Close(1000), None, False),
        (None, Close(1000), False),
        (Close(4000), Close(4000), False),
        (Close(1000), Close(1011), False),
    ],
)
def test_ok_or_error(rcvd, sent, ok):
    exc = closed_exception(rcvd, sent, True)
    assert isinstance(exc, ConnectionClosedOK if ok else ConnectionClosedError)


def test_code_and_reason_come_from_the_close_frame_received():
    exc = closed_exception(Close(4000, "why"), Close(4000, "why"), False)
    assert (exc.code, exc.reason) == (4000, "why")
    exc = closed_exception(None, Close(1011, "keepalive ping timeout"), None)
    assert (exc.code, exc.reason) == (1006, "")
    assert str(exc) == "sent 1011 (internal error) keepalive ping timeout; no close frame received"
    assert str(closed_exception(None, None, None)) == "no close frame received or sent"
    assert "hint" in str(closed_exception(None, None, None, "hint"))


def test_exception_tree():
    assert issubclass(ConnectTimeout, TimeoutError) and issubclass(ConnectTimeout, WebSocketError)
    assert issubclass(ConcurrencyError, RuntimeError)


def test_headers_are_case_insensitive_and_keep_repeats():
    headers = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X", "y")])
    assert headers["SET-COOKIE"] == "a=1"
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert "x" in headers and "z" not in headers
    assert list(headers) == ["Set-Cookie", "X"] and len(headers) == 2
    headers["set-cookie"] = "c=3"
    assert headers.raw_items() == [("X", "y"), ("set-cookie", "c=3")]
    with pytest.raises(KeyError):
        headers["missing"]
    assert Headers({"A": "b"}) == Headers([("A", "b")])


def test_response_body_from_text():
    response = Response(200, body="hé")
    assert response.body == "hé".encode()
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert Response(404, {"Content-Type": "text/html"}, "x").headers["content-type"] == "text/html"
