"""`backtest_runs`: the configured strategy over the latest klines of the universe.

Each materialization is one recorded run: the warm tier holds its record (strategy, params, data and
code versions, status, stats, result hash), the cold tier its equity curves and trades, and the UI
shows a stats table, an equity + drawdown plot and a trades preview.
"""

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from quant_platform import __version__
from quant_platform.assets.common import STORE_RETRY, cold_table_metadata, preview, store_step
from quant_platform.conventions import COLD_POOL
from quant_platform.core.plots import drawdown, equity_drawdown_png, markdown_image
from quant_platform.core.schema import BACKTEST_EQUITY, BACKTEST_TRADES
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.warehouse import WarehouseResource

PORTFOLIO = "*"


class BacktestRunsConfig(dg.Config):
    """Which strategy, on which data, with which market rules (A-share defaults)."""

    strategy: str = "sma_cross"
    # None: the strategy's active parameter version (warm tier), else its registered defaults
    params: dict[str, float] | None = None
    lookback_days: int = 250
    symbols: list[str] = []  # empty: every symbol with klines in the window
    cash: float = 1_000_000.0  # split equally between the symbols
    commission: float = 0.00025
    min_commission: float = 5.0
    stamp_duty: float = 0.0005
    lot_size: float = 100.0
    t_plus_1: bool = True
    price_limit: bool = True  # use klines' limit_up / limit_down
    direction: str = "long_only"
    frequency: str = "1d"  # 1d: klines_daily; 5m / 15m: bars_5m / bars_15m (no price limits)


FREQUENCY_TABLES = {"1d": "klines_daily", "5m": "bars_5m", "15m": "bars_15m"}
TRADING_DAYS_PER_YEAR = 252.0


def bars_table(frequency: str) -> str:
    """The cold table a backtest of `frequency` reads; ValueError for an unknown frequency."""
    if frequency not in FREQUENCY_TABLES:
        raise ValueError(f"frequency must be one of {sorted(FREQUENCY_TABLES)}, got {frequency!r}")
    return FREQUENCY_TABLES[frequency]


def periods_per_year(bars: pd.DataFrame) -> float:
    """252 trading days times the median number of bars a symbol has per trading day (1 for klines,
    48 for 5-minute A-share bars): annualisation follows the frequency and the exchange's sessions."""
    if "ts" not in bars.columns or bars.empty:
        return TRADING_DAYS_PER_YEAR
    per_day = bars.groupby(["symbol", "trade_date"]).size()
    return TRADING_DAYS_PER_YEAR * float(max(1.0, per_day.median()))


def data_version(klines: pd.DataFrame) -> str:
    """sha256 of the klines (or bars) a run read: same data, same version, whatever the row order."""
    time = ["trade_date", "ts"] if "ts" in klines.columns else ["trade_date"]
    cols = ["symbol", *time, "open", "high", "low", "close", "volume"]
    frame = klines[cols].sort_values(["symbol", time[-1]]).reset_index(drop=True)
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes()).hexdigest()


def _ohlcv(frame: pd.DataFrame) -> pd.DataFrame:
    time = "ts" if "ts" in frame.columns else "trade_date"  # intraday bars: the bar's own timestamp
    cols = [c for c in ("open", "high", "low", "close", "volume", "limit_up", "limit_down") if c in frame]
    out = frame.set_index(pd.DatetimeIndex(frame[time]))[cols]
    return out.rename(columns={c: c.capitalize() for c in ["open", "high", "low", "close", "volume"]})


def _settings(cfg: BacktestRunsConfig, cash: float, bars: pd.DataFrame) -> dict[str, Any]:
    intraday = "ts" in bars.columns
    return dict(
        periods_per_year=periods_per_year(bars),
        cash=cash,
        commission=cfg.commission,
        min_commission=cfg.min_commission,
        stamp_duty=cfg.stamp_duty,
        lot_size=cfg.lot_size,
        t_plus_1=cfg.t_plus_1,
        price_limit=cfg.price_limit and not intraday,  # bars carry no limit prices
        direction=cfg.direction,
    )


def portfolio_equity(curves: dict[str, pd.Series], cash_each: float) -> pd.Series:
    """Sum of per-symbol equity curves on the union of their timestamps.

    A symbol without a bar (suspended) counts with its last equity, or with its untouched cash before
    its first bar, so the total never dips because a symbol is missing on a day."""
    indexes = [c.index for c in curves.values()]
    first = indexes[0]
    aligned = all(
        isinstance(i, pd.DatetimeIndex)
        and i.dtype == first.dtype
        and i.is_monotonic_increasing
        and i.is_unique
        for i in indexes
    )
    if aligned:
        # what concat + sort_index build, without aligning 100 Series one by one: the sorted union of
        # the timestamps (its frequency inferred, as pandas does), each curve placed by position, NaN
        # where a symbol has no bar
        stamps = np.unique(np.concatenate([i.asi8 for i in indexes]))
        if all(len(i) == len(stamps) for i in indexes):
            union = first
        else:
            name = first.name if all(i.name == first.name for i in indexes) else None
            union = pd.DatetimeIndex(stamps.view(f"M8[{first.unit}]"), name=name)
            if first.tz is not None:  # asi8 counts from the UTC epoch
                union = union.tz_localize("UTC").tz_convert(first.tz)
            union = pd.DatetimeIndex(union, freq="infer")
        values = np.full((len(union), len(curves)), np.nan)
        for j, (curve, index) in enumerate(zip(curves.values(), indexes, strict=True)):
            at = slice(None) if len(index) == len(stamps) else np.searchsorted(stamps, index.asi8)
            values[at, j] = curve.to_numpy(dtype=np.float64)
        filled = pd.DataFrame(values, index=union).ffill().fillna(cash_each).to_numpy()
        # curve after curve, as the sum over concat's one block per curve adds (not numpy's pairwise
        # sum along a row), so the total is the same to the last bit
        total = np.add.reduce(np.ascontiguousarray(filled.T), axis=0)
        return pd.Series(total, index=union, name="equity")
    frame = pd.concat(curves, axis=1).sort_index()
    return frame.ffill().fillna(cash_each).sum(axis=1).rename("equity")


def ohlcv_frames(klines: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The per-symbol OHLCV frames `run_universe` runs on; callers running many backtests on the same
    klines (API batches) build them once."""
    return {sym: _ohlcv(frame) for sym, frame in klines.groupby("symbol", sort=True)}


def prepared_bars(frames: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """The validated `Bars` of each frame, what a single-asset strategy runs on: callers running
    many backtests on the same frames (API batches) validate them once instead of once per run."""
    from quant_platform.core.backtest.data import prepare_bars

    return {sym: prepare_bars(frame) for sym, frame in frames.items()}


def run_universe(
    klines: pd.DataFrame,
    cfg: BacktestRunsConfig,
    frames: dict[str, pd.DataFrame] | None = None,
    prepared: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Backtest the universe: a portfolio strategy (``universe="multi"``) once on the whole universe
    with all the cash, exactly as `backtest.run` on the long frame; a single-asset strategy on every
    symbol with an equal share of the cash. Returns the results, the total and any warnings.
    `frames`: `ohlcv_frames(klines)` when the caller has them already; `prepared`: `prepared_bars(frames)`
    likewise (validated once, not once per backtest)."""
    from quant_platform import backtest  # numba compiles on first use: keep code-location loads light

    symbols = sorted(klines["symbol"].unique())
    if not symbols:
        raise ValueError("no klines in the backtest window: materialize klines_daily first")
    spec = backtest.get_strategy(cfg.strategy)
    params = backtest.validate_params(cfg.strategy, cfg.params)
    frames = dict(frames) if frames is not None else ohlcv_frames(klines)
    bars = max(len(f) for f in frames.values())
    warning = spec.window_warning(params, bars)
    warnings = [warning] if warning else []
    if spec.universe == "multi":
        settings = _settings(cfg, cfg.cash, klines)
        res = backtest.run(frames, cfg.strategy, params, **settings)
        equity = res.equity
        trades = res.trades
        per_symbol = _per_symbol_trades(trades, symbols)
        results: dict[str, Any] = {}
        num_trades, commissions = int(res.stats["num_trades"]), float(res.stats["commissions"])
        mean_sharpe, median_return = float(res.stats["sharpe"]), float(res.stats["total_return"])
        digest = res.result_hash
        extra = {"portfolio": True, "sharpe": float(res.stats["sharpe"])}
    else:
        settings = _settings(cfg, cfg.cash / len(symbols), klines)
        inputs = prepared if prepared is not None else frames
        results = {sym: backtest.run(inputs[sym], cfg.strategy, params, **settings) for sym in frames}
        equity = portfolio_equity({s: r.equity for s, r in results.items()}, settings["cash"])
        per_symbol = pd.DataFrame({s: r.stats for s, r in results.items()}).T
        from quant_platform.core.backtest.engine import symbol_trades_frame

        trades = symbol_trades_frame([(s, r.trade_records, r.index) for s, r in results.items()])
        num_trades = int(per_symbol["num_trades"].sum())
        commissions = float(per_symbol["commissions"].astype(float).sum())
        mean_sharpe = float(per_symbol["sharpe"].astype(float).mean())
        median_return = float(per_symbol["total_return"].astype(float).median())
        digest = hashlib.sha256("".join(results[s].result_hash for s in symbols).encode()).hexdigest()
        extra = {"portfolio": False}
    total = {
        "symbols": len(symbols),
        "bars": bars,
        "frequency": cfg.frequency,
        "periods_per_year": settings["periods_per_year"],
        "total_return": float(equity.iloc[-1] / cfg.cash - 1.0),
        "max_drawdown": float(drawdown(equity).min()),
        "num_trades": num_trades,
        "mean_sharpe": mean_sharpe,
        "median_total_return": median_return,
        "final_equity": float(equity.iloc[-1]),
        "commissions": commissions,
        "open_positions_marked_to_close": True,
        **extra,
        "warnings": warnings,
    }
    return {
        "params": params,
        "settings": settings,
        "per_symbol": per_symbol,
        "equity": equity,
        "results": results,
        "trades": trades,
        "stats": total,
        "result_hash": digest,
        "warnings": warnings,
    }


def _per_symbol_trades(trades: pd.DataFrame, symbols: list[str]) -> pd.DataFrame:
    """A portfolio run's per-symbol view: closed trades, their pnl and win rate."""
    closed = trades[~trades["is_open"]] if len(trades) else trades
    rows = {}
    for sym in symbols:
        t = closed[closed["symbol"] == sym] if len(closed) else closed
        n = len(t)
        rows[sym] = {
            "total_return": np.nan,
            "sharpe": np.nan,
            "max_drawdown": np.nan,
            "num_trades": n,
            "win_rate": float((t["pnl"] > 0).mean()) if n else np.nan,
            "pnl": float(t["pnl"].sum()) if n else 0.0,
        }
    return pd.DataFrame(rows).T


def record_run(
    warm: Any,
    open_cold: Callable[[], Any],
    klines: pd.DataFrame,
    cfg: BacktestRunsConfig,
    run_id: str,
    *,
    window: tuple[Any, Any],
    params_source: str,
) -> dict[str, Any]:
    """Run `cfg` on `klines` as one recorded run: the record in the warm tier (running -> succeeded
    with its stats, or failed with the reason), equity and trades in the cold tier (`open_cold()`
    opens it). Returns `run_universe`'s output. Used by `backtest_runs` and `backtest run`."""
    start, end = (pd.Timestamp(w) for w in window)
    warm.create_strategy(cfg.strategy, exist_ok=True)
    warm.create_run(
        cfg.strategy,
        dict(cfg.params or {}),
        run_id=run_id,
        data_version=data_version(klines),
        code_version=__version__,
    )
    warm.start_run(run_id)
    try:
        out = run_universe(klines, cfg)
        with open_cold() as cold:
            cold.append_arrow(BACKTEST_EQUITY, _equity_rows(run_id, out))
            cold.append_arrow(BACKTEST_TRADES, _trade_rows(run_id, out["trades"]))
    except Exception as exc:
        warm.fail_run(run_id, f"{type(exc).__name__}: {exc}")
        with open_cold() as cold:
            cold.delete_run(run_id)
        raise
    stats = {
        **out["stats"],
        "window": [str(start.date()), str(end.date())],
        "params_source": params_source,
    }
    warm.finish_run(run_id, stats=stats, result_hash=out["result_hash"])
    return out


def resolve_params(warm: Any, strategy: str, params: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The parameters a run uses and where they come from: the config's, else the strategy's active
    parameter version, else its registered defaults."""
    from quant_platform.storage.warm import NotFound

    if params is not None:
        return dict(params), "config"
    try:
        active = warm.get_params(strategy)
    except NotFound:
        from quant_platform import backtest

        return backtest.get_strategy(strategy).defaults(), "defaults"
    return dict(active.params), f"active version {active.version}"


def _utc(index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    return (idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")).as_unit("ms")


def _equity_rows(run_id: str, out: dict[str, Any]) -> pd.DataFrame:
    """The portfolio's curve (symbol '*') then each symbol's, with drawdowns, as one frame built from
    arrays (a frame per curve made this the costliest part of a run after the strategy)."""
    portfolio = out["equity"]
    curves = [(PORTFOLIO, portfolio.index, portfolio.to_numpy())]
    curves += [(s, r.index, r.equity_values) for s, r in out["results"].items()]
    indexes = [pd.DatetimeIndex(c[1]) for c in curves]
    if all(i.dtype == indexes[0].dtype for i in indexes):  # one conversion (asi8 counts from UTC)
        stamps = np.concatenate([i.asi8 for i in indexes]).view(f"M8[{indexes[0].unit}]")
        ts = pd.DatetimeIndex(stamps).tz_localize("UTC").as_unit("ms")
    else:
        ts = pd.DatetimeIndex(np.concatenate([_utc(i).values for i in indexes])).tz_localize("UTC")
    values = [np.asarray(v, dtype=np.float64) for _, _, v in curves]
    equity = np.concatenate(values)
    peaks = np.concatenate([np.fmax.accumulate(v) for v in values])  # = Series.cummax (NaNs skipped)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "symbol": np.repeat(np.array([c[0] for c in curves], dtype=object), [len(v) for v in values]),
            "ts": ts,
            "equity": equity,
            "drawdown": equity / peaks - 1.0,
        }
    )


def _trade_rows(run_id: str, trades: pd.DataFrame) -> pd.DataFrame:
    if trades.empty:
        return BACKTEST_TRADES.empty()
    df = trades.assign(run_id=run_id)
    df["entry_time"], df["exit_time"] = _utc(df["entry_time"]), _utc(df["exit_time"])
    return df


# Re-run when new klines land, but only once their blocking quality checks have passed. (eager()
# would also demand that no klines partition is missing: history always has gaps.)
BACKTEST_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("new klines whose blocking checks passed")


@dg.asset(
    deps=["klines_daily"],
    automation_condition=BACKTEST_AUTOMATION,
    retry_policy=STORE_RETRY,
    pool=COLD_POOL,
    group_name="research",
    kinds={"clickhouse", "sqlite", "numba"},
    metadata=cold_table_metadata(BACKTEST_EQUITY),
    description="A backtest of the configured strategy over the latest `lookback_days` of klines. "
    "Run record in the warm tier (backtest_runs), equity and trades in the cold tier "
    "(backtest_equity, backtest_trades). The table shown is backtest_equity; the run's trades are "
    "in backtest_trades under the same run_id.",
)
@store_step
def backtest_runs(
    context: dg.AssetExecutionContext,
    config: BacktestRunsConfig,
    clickhouse: ClickHouseResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    run_id = f"{context.run_id}-{context.retry_number}"
    try:  # a bad strategy or parameter is not transient: fail at once, without retries
        from quant_platform import backtest

        with warehouse.open() as warm:
            params, source = resolve_params(warm, config.strategy, config.params)
        params = backtest.validate_params(config.strategy, params)
        table = bars_table(config.frequency)
    except ValueError as exc:
        raise dg.Failure(f"invalid backtest configuration: {exc}", allow_retries=False) from exc
    config = config.model_copy(update={"params": params})
    with clickhouse.open() as cold:
        window = cold.kline_days(config.lookback_days)
        if window.empty:
            raise dg.Failure(
                "klines_daily is empty: materialize the market data first (quant-platform run)",
                allow_retries=False,
            )
        start, end = window["trade_date"].min(), window["trade_date"].max()
        klines = cold.read_table(table, start, end, symbols=config.symbols or None)
        if klines.empty:
            raise dg.Failure(f"no {table} between {start.date()} and {end.date()}", allow_retries=False)
    version = data_version(klines)
    with warehouse.open() as warm:
        out = record_run(
            warm, clickhouse.open, klines, config, run_id, window=(start, end), params_source=source
        )
    per_symbol = out["per_symbol"][["total_return", "sharpe", "max_drawdown", "num_trades", "win_rate"]]
    png = equity_drawdown_png(out["equity"], f"{config.strategy} {json.dumps(out['params'])}")
    warned: dict[str, Any] = {}
    for warning in out["warnings"]:
        context.log.warning(f"backtest run {run_id}: {warning}")
    if out["warnings"]:
        warned["warning"] = dg.MetadataValue.md("**Warning:** " + " ".join(out["warnings"]))
    return dg.MaterializeResult(
        metadata={
            **warned,
            "params_source": source,
            "run_id": run_id,
            "strategy": config.strategy,
            "params": out["params"],
            "window": f"{start.date()} .. {end.date()}",
            "data_version": version,
            "result_hash": out["result_hash"],
            "stats": dg.MetadataValue.json(out["stats"]),
            "total_return": out["stats"]["total_return"],
            "max_drawdown": out["stats"]["max_drawdown"],
            "per_symbol": dg.MetadataValue.md(per_symbol.astype(float).round(4).head(20).to_markdown()),
            "equity_and_drawdown": dg.MetadataValue.md(markdown_image(png, "equity and drawdown")),
            "trades_preview": preview(out["trades"]),
        }
    )
