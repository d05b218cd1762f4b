"""`backtest_runs`: the configured strategy over the latest klines of the universe.

Each materialization is one recorded run: the warm tier holds its record (strategy, params, data and
code versions, status, stats, result hash), the cold tier its equity curves and trades, and the UI
shows a stats table, an equity + drawdown plot and a trades preview.
"""

import hashlib
import json
from typing import Any

import dagster as dg
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
    params: dict[str, float] = {"fast": 5, "slow": 20}
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


def data_version(klines: pd.DataFrame) -> str:
    """sha256 of the klines a run read: same data, same version, whatever the row order."""
    cols = ["symbol", "trade_date", "open", "high", "low", "close", "volume"]
    frame = klines[cols].sort_values(["symbol", "trade_date"]).reset_index(drop=True)
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes()).hexdigest()


def _ohlcv(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.set_index(pd.DatetimeIndex(frame["trade_date"]))[
        ["open", "high", "low", "close", "volume", "limit_up", "limit_down"]
    ]
    return out.rename(columns={c: c.capitalize() for c in ["open", "high", "low", "close", "volume"]})


def run_universe(klines: pd.DataFrame, cfg: BacktestRunsConfig) -> dict[str, Any]:
    """Backtest every symbol with an equal share of the cash; return per-symbol results and the total."""
    from quant_platform import backtest  # numba compiles on first use: keep code-location loads light

    symbols = sorted(klines["symbol"].unique())
    if not symbols:
        raise ValueError("no klines in the backtest window: materialize klines_daily first")
    settings = dict(
        cash=cfg.cash / len(symbols),
        commission=cfg.commission,
        min_commission=cfg.min_commission,
        stamp_duty=cfg.stamp_duty,
        lot_size=cfg.lot_size,
        t_plus_1=cfg.t_plus_1,
        price_limit=cfg.price_limit,
        direction=cfg.direction,
    )
    params = backtest.validate_params(cfg.strategy, cfg.params)
    results = {
        sym: backtest.run(_ohlcv(frame), cfg.strategy, params, **settings)
        for sym, frame in klines.groupby("symbol", sort=True)
    }
    equity = pd.concat({s: r.equity for s, r in results.items()}, axis=1).ffill().sum(axis=1)
    per_symbol = pd.DataFrame({s: r.stats for s, r in results.items()}).T
    trades = [r.trades.assign(symbol=s) for s, r in results.items() if len(r.trades)]
    total = {
        "symbols": len(symbols),
        "total_return": float(equity.iloc[-1] / cfg.cash - 1.0),
        "max_drawdown": float(drawdown(equity).min()),
        "num_trades": int(per_symbol["num_trades"].sum()),
        "mean_sharpe": float(per_symbol["sharpe"].astype(float).mean()),
        "median_total_return": float(per_symbol["total_return"].astype(float).median()),
        "final_equity": float(equity.iloc[-1]),
        "commissions": float(per_symbol["commissions"].astype(float).sum()),
        "open_positions_marked_to_close": True,
    }
    digest = hashlib.sha256("".join(results[s].result_hash for s in symbols).encode()).hexdigest()
    return {
        "params": params,
        "settings": settings,
        "per_symbol": per_symbol,
        "equity": equity,
        "results": results,
        "trades": pd.concat(trades, ignore_index=True) if trades else pd.DataFrame(),
        "stats": total,
        "result_hash": digest,
    }


def _utc(index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    return (idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")).as_unit("ms")


def _equity_rows(run_id: str, out: dict[str, Any]) -> pd.DataFrame:
    curves = {PORTFOLIO: out["equity"], **{s: r.equity for s, r in out["results"].items()}}
    frames = [
        pd.DataFrame(
            {
                "run_id": run_id,
                "symbol": sym,
                "ts": _utc(eq.index),
                "equity": eq.to_numpy(),
                "drawdown": drawdown(eq).to_numpy(),
            }
        )
        for sym, eq in curves.items()
    ]
    return pd.concat(frames, ignore_index=True)


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

        backtest.validate_params(config.strategy, config.params)
    except ValueError as exc:
        raise dg.Failure(f"invalid backtest configuration: {exc}", allow_retries=False) from exc
    with clickhouse.open() as cold:
        window = cold.kline_days(config.lookback_days)
        if window.empty:
            raise dg.Failure(
                "klines_daily is empty: materialize the market data first (quant-platform run)",
                allow_retries=False,
            )
        start, end = window["trade_date"].min(), window["trade_date"].max()
        klines = cold.read_table("klines_daily", start, end, symbols=config.symbols or None)
    version = data_version(klines)
    with warehouse.open() as warm:
        warm.create_strategy(config.strategy, exist_ok=True)
        warm.create_run(
            config.strategy,
            dict(config.params),
            run_id=run_id,
            data_version=version,
            code_version=__version__,
        )
        warm.start_run(run_id)
        try:
            out = run_universe(klines, config)
            with clickhouse.open() as cold:
                cold.append(BACKTEST_EQUITY, _equity_rows(run_id, out))
                cold.append(BACKTEST_TRADES, _trade_rows(run_id, out["trades"]))
        except Exception as exc:
            warm.fail_run(run_id, f"{type(exc).__name__}: {exc}")
            with clickhouse.open() as cold:
                cold.delete_run(run_id)
            raise
        warm.finish_run(
            run_id,
            stats={**out["stats"], "window": [str(start.date()), str(end.date())]},
            result_hash=out["result_hash"],
        )
    per_symbol = out["per_symbol"][["total_return", "sharpe", "max_drawdown", "num_trades", "win_rate"]]
    png = equity_drawdown_png(out["equity"], f"{config.strategy} {json.dumps(out['params'])}")
    return dg.MaterializeResult(
        metadata={
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
