"""Software-defined assets, one module per kind of data: market_data, bars, klines, qa, backtests."""

import warnings

import dagster as dg

# backfill_policy and pools are stable in practice; keep code-location loads quiet about their beta tag.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
