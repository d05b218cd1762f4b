"""`quant-platform collect`: run the streaming collector until SIGTERM/SIGINT.

Mounted on the main CLI with `app.command("collect")(collect)`; also `python -m quant_platform.collector`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer


def _pairs(pairs: str | None, pairs_file: Path | None) -> list[str]:
    out = [p.strip() for p in (pairs or "").split(",") if p.strip()]
    if pairs_file is not None:
        out += [
            line.strip()
            for line in pairs_file.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
    return list(dict.fromkeys(out))


def collect(
    url: str = typer.Option("", "--url", envvar="QP_COLLECTOR_URL", help="WebSocket feed URL"),
    pairs: str = typer.Option("", "--pairs", envvar="QP_COLLECTOR_PAIRS", help="Comma-separated pairs"),
    pairs_file: Path | None = typer.Option(None, "--pairs-file", help="File with one pair per line"),
    metrics_port: int = typer.Option(
        9108,
        "--metrics-port",
        envvar="QP_COLLECTOR_METRICS_PORT",
        help="Port of /metrics and /healthz on 127.0.0.1 (0: any free port, -1: none)",
    ),
    flush_interval: float = typer.Option(2.0, "--flush-interval", help="Seconds between cold-tier writes"),
    flush_rows: int = typer.Option(
        20_000, "--flush-rows", help="Write early when this many ticks are buffered"
    ),
    subscribe_chunk: int = typer.Option(200, "--subscribe-chunk", help="Pairs per subscribe message"),
    stall_timeout: float = typer.Option(
        15.0, "--stall-timeout", help="Reconnect after this many silent seconds"
    ),
    no_cold: bool = typer.Option(False, "--no-cold", help="Do not write ticks to the cold tier"),
    no_observe: bool = typer.Option(False, "--no-observe", help="Do not report observations to Dagster"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Stream ticks from a WebSocket feed into the hot tier (latest quotes, 1m/5m/15m change rates) and
    the cold tier (`crypto_ticks`), with Prometheus metrics; stops cleanly on SIGTERM."""
    from quant_platform.collector.service import Collector, CollectorConfig
    from quant_platform.collector.sink import ColdSink
    from quant_platform.core.calendar import ALWAYS_OPEN
    from quant_platform.settings import StoreSettings
    from quant_platform.storage.hot import TTLPolicy, hot_store_from_url

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    wanted = _pairs(pairs, pairs_file)
    if not url or not wanted:
        typer.echo("error: --url and --pairs (or --pairs-file) are required", err=True)
        raise typer.Exit(2)
    stores = StoreSettings.from_env()
    config = CollectorConfig(
        url=url,
        pairs=wanted,
        subscribe_chunk=subscribe_chunk,
        stall_timeout=stall_timeout,
        flush_interval=flush_interval,
        flush_rows=flush_rows,
        metrics_port=None if metrics_port < 0 else metrics_port,
    )
    instance = None
    if not no_observe:
        import dagster as dg

        from quant_platform.settings import ensure_dagster_home

        ensure_dagster_home()
        instance = dg.DagsterInstance.get()
    collector = Collector(
        config,
        sink=None if no_cold else ColdSink(stores.clickhouse_dsn),
        hot=hot_store_from_url(stores.redis_url, ttl=TTLPolicy(ALWAYS_OPEN)),
        instance=instance,
    )

    async def main() -> None:
        collector.install_signal_handlers()
        if collector.cfg.metrics_port is not None:
            typer.echo(f"collector: {len(wanted)} pairs from {url}; metrics on 127.0.0.1:{metrics_port}")
        await collector.run()

    asyncio.run(main())
    s = collector.stats
    typer.echo(
        f"collector stopped: {s.accepted} ticks accepted, {s.rows_written} written, "
        f"{s.duplicates} duplicates, {s.malformed} malformed, {s.rejected} quarantined, "
        f"{s.reconnects} reconnects"
    )


def main() -> None:  # pragma: no cover
    typer.run(collect)
