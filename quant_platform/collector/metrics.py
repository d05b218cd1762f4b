"""Prometheus metrics of the collector and its small HTTP endpoint (`/metrics`, `/healthz`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class CollectorMetrics:
    """One registry per collector (tests run several in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.messages = Counter(
            "qp_collector_messages",
            "Feed items by outcome (tick, duplicate, control, malformed, rejected)",
            ["kind"],
            registry=r,
        )
        self.latency = Histogram(
            "qp_collector_update_latency_seconds",
            "Receive -> latest quote and change rates visible in the hot tier",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter("qp_collector_errors", "Errors by kind", ["kind"], registry=r)
        self.reconnects = Counter("qp_collector_reconnects", "Reconnections to the feed", registry=r)
        self.replays = Counter("qp_collector_replay_requests", "Replay (resync) requests sent", registry=r)
        self.lost = Counter(
            "qp_collector_lost_seqs", "Sequence numbers given up after replays failed", registry=r
        )
        self.rows_written = Counter("qp_collector_rows_written", "Ticks written to the cold tier", registry=r)
        self.buffered = Gauge(
            "qp_collector_buffered_rows", "Ticks waiting for the next cold flush", registry=r
        )
        self.connected = Gauge("qp_collector_connected", "1 while connected to the feed", registry=r)
        self.last_message = Gauge(
            "qp_collector_last_message_timestamp_seconds", "Unix time of the last feed message", registry=r
        )


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, status, ctype = generate_latest(self.server.registry), 200, CONTENT_TYPE_LATEST
        elif path == "/healthz":
            ok, detail = self.server.health()
            body, status, ctype = json.dumps(detail).encode(), 200 if ok else 503, "application/json"
        else:
            body, status, ctype = b"not found\n", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:  # keep scrapes out of the logs
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    health: Callable[[], tuple[bool, dict]]


class MetricsServer:
    """`/metrics` (Prometheus text format) and `/healthz` (200 or 503 with a JSON body) on
    `host:port` in a background thread; port 0 picks a free port (see `.port`)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: Callable[[], tuple[bool, dict]],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.registry = registry
        self._server.health = health
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="collector-metrics", daemon=True
        )

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
