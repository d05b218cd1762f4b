"""The options assets on trading-day partitions (group `options`).

    option_contracts ──► option_quotes ──► option_daily ──► option_greeks ──► options_qa
            └──────────────────────────────────────────────────────┘ (T+1 open interest)

Each writes its cold table with the same partition replacement as the market data, after the row
rules of `options.rules` (bad rows to `quarantine`). `option_greeks` of a day also completes the
previous session's open interest (see `options.enrich`), so it rewrites that partition too.
"""

import datetime as dt

import dagster as dg
import pandas as pd

from quant_platform.assets import gate
from quant_platform.assets.common import STORE_RETRY, cold_table_metadata, table_metadata
from quant_platform.conventions import COLD_POOL
from quant_platform.core.calendar import get_calendar
from quant_platform.core.schema import (
    OPTION_CONTRACTS,
    OPTION_DAILY,
    OPTION_GREEKS,
    OPTION_QA,
    OPTION_QUOTES,
    QUARANTINE,
)
from quant_platform.options import chain, enrich, rules
from quant_platform.options.dagster.resources import OptionSourceResource
from quant_platform.options.rollup import daily_rollup
from quant_platform.partitions import calendar_name, daily_partitions, partition_days
from quant_platform.resources.clickhouse import ClickHouseResource

GROUP = "options"
TREND_DAYS = 60
_COMMON = {
    "partitions_def": daily_partitions,
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "retry_policy": STORE_RETRY,
    "pool": COLD_POOL,
    "group_name": GROUP,
    "kinds": {"clickhouse", "pandas"},
}


def _by_day(df: pd.DataFrame, days: list[dt.date]) -> dict[dt.date, pd.DataFrame]:
    return gate.by_day(df, days)


def next_session(day: dt.date) -> dt.date | None:
    later = get_calendar(calendar_name()).sessions(day + dt.timedelta(days=1), day + dt.timedelta(days=30))
    return later[0] if later else None


@dg.asset(
    **_COMMON,
    metadata=cold_table_metadata(OPTION_CONTRACTS),
    description="The listed option chain of each underlying (QP_OPTIONS_UNDERLYINGS) per trading day, "
    "with the open interest the day publishes (the previous close's). Cold tier `option_contracts`.",
)
def option_contracts(
    context: dg.AssetExecutionContext, options: OptionSourceResource, clickhouse: ClickHouseResource
) -> dg.MaterializeResult:
    days = partition_days(context)
    source = options.source()
    frames = {
        d: pd.concat([source.fetch_contracts(d, u) for u in source.underlyings()], ignore_index=True)
        for d in days
    }
    checked = rules.gate_days(rules.split_option_contracts, frames, OPTION_CONTRACTS)
    with clickhouse.open() as cold:
        gate.write(cold, OPTION_CONTRACTS, checked, days)
    context.log.info(f"{source.name}: {len(checked.clean)} contracts over {len(days)} day(s)")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(checked.clean, days, time_col=None),
            **checked.metadata,
            "source": source.name,
            "underlyings": ", ".join(source.underlyings()),
            "expiries": int(checked.clean["expiry"].nunique()) if len(checked.clean) else 0,
        }
    )


@dg.asset(
    **_COMMON,
    deps=[option_contracts],
    metadata=cold_table_metadata(OPTION_QUOTES),
    description="Option snapshots at fixed slots (every 30 minutes, the last at the close) with "
    "`delayed` and `snapshot_error` flags. A live source serves the slot due now; the day's other "
    "slots keep what earlier runs stored. Cold tier `option_quotes`.",
)
def option_quotes(
    context: dg.AssetExecutionContext, options: OptionSourceResource, clickhouse: ClickHouseResource
) -> dg.MaterializeResult:
    days = partition_days(context)
    source = options.source()
    with clickhouse.open() as cold:
        contracts = _by_day(cold.read_table(OPTION_CONTRACTS.name, days[0], days[-1]), days)
        stored = _by_day(cold.read_table(OPTION_QUOTES.name, days[0], days[-1]), days)
    frames = {}
    for d in days:
        slots = chain.slot_times(d, calendar=calendar_name())
        fresh = [source.fetch_quotes(d, u, contracts[d], slots) for u in source.underlyings()]
        fresh = (
            pd.concat([f for f in fresh if len(f)], ignore_index=True) if any(len(f) for f in fresh) else None
        )
        served = set(fresh["slot"].astype(str)) if fresh is not None else set()
        kept = stored[d][~stored[d]["slot"].isin(served)]
        frames[d] = (
            pd.concat([x for x in (kept, fresh) if x is not None and len(x)], ignore_index=True)
            if (len(kept) or fresh is not None)
            else OPTION_QUOTES.empty()
        )
        context.log.info(f"{d}: {len(served)} slot(s) from {source.name}, {kept['slot'].nunique()} kept")
    checked = rules.gate_days(
        rules.split_option_quotes,
        frames,
        OPTION_QUOTES,
        contracts=lambda d: set(contracts[d]["symbol"]),
    )
    with clickhouse.open() as cold:
        gate.write(cold, OPTION_QUOTES, checked, days)
    clean = checked.clean
    return dg.MaterializeResult(
        metadata={
            **table_metadata(clean, days),
            **checked.metadata,
            "delayed_snapshots": int(clean["delayed"].sum()),
            "failed_snapshots": int(clean["snapshot_error"].ne("").sum()),
            "source": source.name,
        }
    )


@dg.asset(
    **_COMMON,
    deps=[option_quotes],
    metadata=cold_table_metadata(OPTION_DAILY),
    description="One row per option and trading day: the close slot, or the last good slot with "
    "`rollup_fallback` set. Cold tier `option_daily`.",
)
def option_daily(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource) -> dg.MaterializeResult:
    days = partition_days(context)
    with clickhouse.open() as cold:
        quotes = _by_day(cold.read_table(OPTION_QUOTES.name, days[0], days[-1]), days)
        contracts = _by_day(cold.read_table(OPTION_CONTRACTS.name, days[0], days[-1]), days)
        rows = [
            daily_rollup(quotes[d], contracts[d], chain.close_slot(d, calendar=calendar_name())) for d in days
        ]
        daily = OPTION_DAILY.conform(pd.concat(rows, ignore_index=True)) if rows else OPTION_DAILY.empty()
        cold.replace_partitions(OPTION_DAILY, daily, days)
    without = sum(max(len(contracts[d]) - len(r), 0) for d, r in zip(days, rows, strict=True))
    return dg.MaterializeResult(
        metadata={
            **table_metadata(daily, days),
            "rollup_fallback_rows": int(daily["rollup_fallback"].sum()),
            "rollup_fallback_rate": round(float(daily["rollup_fallback"].mean()), 6) if len(daily) else 0.0,
            "contracts_without_quote": int(without),
        }
    )


@dg.asset(
    **_COMMON,
    deps=[option_daily, option_contracts],
    metadata=cold_table_metadata(OPTION_GREEKS),
    description="Implied vol and BSM greeks from the daily mid and the underlying's price, put-call "
    "parity breaks flagged; open_interest filled when the next session publishes it (T+1: a day's "
    "run also completes the previous session's rows). Cold tier `option_greeks`.",
)
def option_greeks(
    context: dg.AssetExecutionContext, options: OptionSourceResource, clickhouse: ClickHouseResource
) -> dg.MaterializeResult:
    days = partition_days(context)
    source = options.source()
    cal = get_calendar(calendar_name())
    prev, nxt = cal.previous_session(days[0]), next_session(days[-1])
    with clickhouse.open() as cold:
        daily = _by_day(cold.read_table(OPTION_DAILY.name, days[0], days[-1]), days)
        contracts = cold.read_table(OPTION_CONTRACTS.name, prev or days[0], nxt or days[-1])
        prev_rows = cold.read_table(OPTION_GREEKS.name, prev, prev) if prev else OPTION_GREEKS.empty()
    contract_days = (
        {d: g for d, g in contracts.groupby(contracts["trade_date"].dt.date)} if len(contracts) else {}
    )
    frames = {}
    for d in days:
        rates = {u: source.rates(d, u) for u in daily[d]["underlying"].unique()}
        g = enrich.compute_greeks(daily[d], rates, calendar_name())
        following = next_session(d)
        frames[d] = enrich.fill_open_interest(g, contract_days.get(following, OPTION_CONTRACTS.empty()))
    checked = rules.gate_days(rules.split_option_greeks, frames, OPTION_GREEKS)
    written_days = list(days)
    out = checked.clean
    filled_prev = 0
    if prev is not None and len(prev_rows):
        prev_filled = enrich.fill_open_interest(
            prev_rows, contract_days.get(days[0], OPTION_CONTRACTS.empty())
        )
        filled_prev = int(prev_filled["open_interest"].notna().sum())
        out = OPTION_GREEKS.conform(pd.concat([prev_filled, out], ignore_index=True))
        written_days = [prev, *days]
    with clickhouse.open() as cold:
        cold.replace_partitions(OPTION_GREEKS, out, written_days)
        cold.replace_partitions(QUARANTINE, checked.quarantine, days, scope=OPTION_GREEKS.name)
    clean = checked.clean
    return dg.MaterializeResult(
        metadata={
            **table_metadata(clean, days, time_col=None),
            **checked.metadata,
            "parity_breaks": int(clean["parity_break"].sum()),
            "open_interest_filled": int(clean["open_interest"].notna().sum()),
            "previous_session": str(prev) if prev else "",
            "previous_session_open_interest_filled": filled_prev,
        }
    )


@dg.asset(
    **_COMMON,
    deps=[option_greeks, option_quotes, option_daily, option_contracts],
    metadata=cold_table_metadata(OPTION_QA),
    description="Options QA per day and underlying: slot coverage, delayed and failed snapshots, rollup "
    "fallbacks, T+1 open-interest fill, IV/greeks outliers, parity breaks; trend over days and the IV "
    "smile/surface plot. Cold tier `option_qa_metrics`.",
)
def options_qa(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource) -> dg.MaterializeResult:
    from quant_platform.core.plots import iv_surface_png, markdown_image, plot_trend
    from quant_platform.core.quality.report import markdown_table
    from quant_platform.options import qa

    days = partition_days(context)
    prev = get_calendar(calendar_name()).previous_session(days[0])
    with clickhouse.open() as cold:
        tables = {
            s.name: _by_day(
                cold.read_table(s.name, prev or days[0], days[-1]), [*([prev] if prev else []), *days]
            )
            for s in (OPTION_CONTRACTS, OPTION_QUOTES, OPTION_DAILY, OPTION_GREEKS)
        }
        quarantine = cold.read_table(QUARANTINE.name, days[0], days[-1])
        frames = []
        for i, d in enumerate(days):
            before = days[i - 1] if i else prev
            q_day = quarantine[quarantine["trade_date"].dt.date == d]
            for u in sorted(set(tables["option_contracts"][d]["underlying"])):
                pick = {name: f[d][f[d]["underlying"] == u] for name, f in tables.items()}
                prev_g = (
                    tables["option_greeks"].get(before, OPTION_GREEKS.empty())
                    if before
                    else OPTION_GREEKS.empty()
                )
                frames.append(
                    qa.day_metrics(
                        d,
                        u,
                        contracts=pick["option_contracts"],
                        quotes=pick["option_quotes"],
                        daily=pick["option_daily"],
                        greeks=pick["option_greeks"],
                        prev_greeks=prev_g[prev_g["underlying"] == u],
                        slots=len(chain.slot_times(d, calendar=calendar_name())),
                        quarantined=q_day["table_name"].value_counts().to_dict(),
                    )
                )
        metrics = OPTION_QA.conform(pd.concat(frames, ignore_index=True)) if frames else OPTION_QA.empty()
        cold.replace_partitions(OPTION_QA, metrics, days)
        history = cold.read_table(OPTION_QA.name, days[-1] - dt.timedelta(days=TREND_DAYS * 2), days[-1])
    meta: dict = {"dagster/row_count": len(metrics), "trading_days": len(days), "last_day": str(days[-1])}
    last = metrics[metrics["trade_date"] == pd.Timestamp(days[-1])]
    if len(last):
        wide = last.pivot_table(index="metric", columns="underlying", values="value", aggfunc="last")
        meta["summary"] = dg.MetadataValue.md(markdown_table(wide.reset_index(), index=False))
    greeks_last = tables["option_greeks"][days[-1]]
    for u in sorted(set(last["underlying"])):
        trend = qa.trend(history, u).tail(TREND_DAYS)
        if len(trend):
            meta[f"trend/{u}"] = dg.MetadataValue.md(markdown_table(trend.tail(10), index=False))
        if len(trend) > 1:
            shares = [c for c in trend.columns if c not in ("trade_date", "atm_iv")]
            png = plot_trend(trend.set_index("trade_date"), shares, title=f"{u} options QA trend")
            meta[f"trend_plot/{u}"] = dg.MetadataValue.md(markdown_image(png, f"{u} options QA trend"))
        png = iv_surface_png(
            greeks_last[greeks_last["underlying"] == u], f"{u} implied volatility {days[-1]}"
        )
        if png:
            meta[f"iv_surface/{u}"] = dg.MetadataValue.md(markdown_image(png, f"{u} IV smile and surface"))
    return dg.MaterializeResult(metadata=meta)


OPTIONS_ASSETS = [option_contracts, option_quotes, option_daily, option_greeks, options_qa]
