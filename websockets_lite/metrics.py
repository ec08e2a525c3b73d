"""Prometheus metrics of a server (and of a Hub), through the well-kept
``prometheus_client`` (``pip install websockets_lite[metrics]``).

::

    metrics = Metrics(hub=hub)
    async with serve(handler, host, port, process_request=metrics.process_request):
        ...  # GET /metrics on the same port answers with the exposition

Nothing is counted per message for this: at each scrape, the metrics are
read from :attr:`Server.stats <websockets_lite.Server.stats>` and
:attr:`Hub.stats <websockets_lite.Hub.stats>`, which add up what every
connection counts anyway. Names and labels follow Prometheus' conventions
(``_total`` counters, ``_bytes`` units, one ``cause`` label for closes and a
``status`` label for handshakes).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .http import Request, Response
from .server import ProcessRequest, Server, ServerProtocol

if TYPE_CHECKING:
    from .pubsub import Hub

__all__ = ["Metrics"]

PREFIX = "websockets_lite"


class Metrics:
    """A Prometheus collector of server and hub stats, and the
    ``process_request`` that serves it at ``path``.

    The servers are found through the connections that ask for ``path``
    (``ws.server``), so one object serves as many servers as share it;
    :meth:`add_server` adds one ahead of its first scrape. Other requests go
    to ``fallback`` (another ``process_request``) or on to the handshake.
    Raises ``ImportError`` with the install command when prometheus_client
    is missing.
    """

    def __init__(
        self,
        *,
        hub: Hub | None = None,
        registry: Any = None,
        path: str = "/metrics",
        fallback: ProcessRequest | None = None,
    ) -> None:
        try:
            import prometheus_client
        except ImportError:
            raise ImportError(
                "Prometheus metrics need prometheus_client: pip install websockets_lite[metrics]"
            ) from None
        self._client = prometheus_client
        self.hub = hub
        self.path = path
        self.fallback = fallback
        self.servers: weakref.WeakSet[Server] = weakref.WeakSet()
        self.registry = registry if registry is not None else prometheus_client.CollectorRegistry()
        self.registry.register(self)

    def add_server(self, server: Server) -> None:
        """Collect this server's stats from now on."""
        self.servers.add(server)

    def process_request(self, ws: ServerProtocol, request: Request) -> Any:
        """Answer ``GET path`` with the exposition; hand anything else on."""
        if request.path.split("?", 1)[0] == self.path:
            if ws.server is not None:
                self.servers.add(ws.server)
            body = self._client.generate_latest(self.registry)
            return Response(200, {"Content-Type": self._client.CONTENT_TYPE_LATEST}, body)
        if self.fallback is not None:
            return self.fallback(ws, request)
        return None

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only

    def collect(self) -> Iterator[Any]:
        """The metric families, from the servers' and the hub's stats."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        if self.servers:
            stats = [server.stats for server in list(self.servers)]

            def total(name: str) -> int:
                return sum(getattr(one, name) for one in stats)

            def gauge(name: str, help_: str, value: float) -> Any:
                return GaugeMetricFamily(f"{PREFIX}_{name}", help_, value=value)

            def counter(name: str, help_: str, value: float) -> Any:
                return CounterMetricFamily(f"{PREFIX}_{name}", help_, value=value)

            yield gauge("connections", "Open WebSocket connections.", total("connections"))
            handshakes = CounterMetricFamily(
                f"{PREFIX}_handshakes", "Opening handshakes answered, by HTTP status.",
                labels=["status"],
            )
            handshakes.add_metric(["101"], total("handshakes_accepted"))
            statuses: dict[int, int] = {}
            for one in stats:
                for status, count in one.handshakes_rejected.items():
                    statuses[status] = statuses.get(status, 0) + count
            for status, count in sorted(statuses.items()):
                handshakes.add_metric([str(status)], count)
            yield handshakes
            yield counter("messages_received", "Messages received.", total("messages_in"))
            yield counter("messages_sent", "Messages sent.", total("messages_out"))
            yield counter("received_bytes", "Bytes received.", total("bytes_in"))
            yield counter("sent_bytes", "Bytes sent.", total("bytes_out"))
            yield counter("broadcast_deliveries", "Messages delivered by broadcast().",
                          total("broadcasts_delivered"))
            yield counter("broadcast_skipped", "Deliveries broadcast() skipped as too slow.",
                          total("broadcasts_skipped"))
            closes = CounterMetricFamily(
                f"{PREFIX}_closes", "Connections ended, by cause.", labels=["cause"]
            )
            causes: dict[str, int] = {}
            for one in stats:
                for cause, count in one.closes.items():
                    causes[cause] = causes.get(cause, 0) + count
            for cause, count in sorted(causes.items()):
                closes.add_metric([cause], count)
            yield closes
            yield gauge("read_buffer_bytes", "Bytes held for reading.", total("read_buffer_bytes"))
            yield gauge("read_buffer_peak_bytes", "Peak of the bytes held for reading.",
                        total("read_buffer_peak"))
            yield gauge("write_buffer_bytes", "Bytes waiting to be written.",
                        total("write_buffer_bytes"))
            yield gauge("write_buffer_peak_bytes", "Peak of the bytes waiting to be written.",
                        total("write_buffer_peak"))
            yield gauge("paused_connections", "Connections whose reading is paused.",
                        total("paused_connections"))
        if self.hub is not None:
            hub = self.hub.stats
            for name, help_, value in [
                ("hub_publishes", "Messages published through the hub.", hub.publishes),
                ("hub_deliveries", "Messages the hub delivered to local subscribers.",
                 hub.deliveries),
                ("hub_catch_ups", "Slow subscribers caught up from the history.", hub.catch_ups),
                ("hub_backend_reconnects", "Times the backend came back.",
                 hub.backend_reconnects),
                ("hub_refills", "Times a topic refilled what its feed missed.", hub.refills),
            ]:
                yield CounterMetricFamily(f"{PREFIX}_{name}", help_, value=value)
            yield GaugeMetricFamily(
                f"{PREFIX}_hub_subscriptions", "Local subscriptions.", value=hub.subscriptions
            )
