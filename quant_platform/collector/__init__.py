"""Streaming collector: a long-running WebSocket client feeding the hot and cold tiers.

`Collector(CollectorConfig(url, pairs), sink=ColdSink(dsn), hot=hot_store)`; `await collector.run()`.
The command line is `quant-platform collect` (`collector.cli.collect`). `collector.testing` has a
local fake feed for tests and benchmarks.
"""

from quant_platform.collector.metrics import CollectorMetrics, MetricsServer
from quant_platform.collector.service import Collector, CollectorConfig, CollectorStats, FeedStalled
from quant_platform.collector.sink import CRYPTO_TICKS, ColdSink, ticks_frame
from quant_platform.collector.state import ChangeTracker, PairState

__all__ = [
    "CRYPTO_TICKS",
    "ChangeTracker",
    "ColdSink",
    "Collector",
    "CollectorConfig",
    "CollectorMetrics",
    "CollectorStats",
    "FeedStalled",
    "MetricsServer",
    "PairState",
    "ticks_frame",
]
