"""Accounts and trade records of live and paper trading (no Dagster here).

- `records`: the trade-record contract of callers (columns, validation, bounds) -> `TRADES` rows;
- `files`: the old file store (JSON positions and CSV trades per account), read and written;
- `service`: `TradingService`, recording trades in the cold tier and positions in the hot tier in
  one call, reads, statistics and summaries (what `Client` exposes);
- `migrate`: `quant-platform migrate import | verify | export` between the file store and the tiers;
- `cli`: `quant-platform accounts ...`, `trades ...`, `migrate ...`.

Accounts, capital and allocations are in the warm tier (`storage/warm/accounts.py`); trades in the
cold table `trades` (`core/schema.TRADES`); positions in the hot tier.
"""
