"""The quality gate in the real graph: quarantine with reasons, blocking checks, blocked automation."""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from quant_platform.definitions import build_definitions
from quant_platform.resources import MarketDataResource
from quant_platform.sources.synthetic import SyntheticMarket
from quant_platform.storage.cold import ColdStore

DAYS = ["2024-10-08", "2024-10-09"]
TAGS = {ASSET_PARTITION_RANGE_START_TAG: DAYS[0], ASSET_PARTITION_RANGE_END_TAG: DAYS[-1]}


class FaultySource(SyntheticMarket):
    """The synthetic market with known bad rows mixed in (a test source, like a misbehaving vendor)."""

    def __init__(self, bad_share: float, drop_symbols: int = 0, **kw):
        super().__init__(**kw)
        object.__setattr__(self, "bad_share", bad_share)
        object.__setattr__(self, "drop_symbols", drop_symbols)

    def fetch_quotes(self, day, symbols=None):
        q = super().fetch_quotes(day, symbols)
        if self.drop_symbols:
            q = q[~q["symbol"].isin(sorted(q["symbol"].unique())[: self.drop_symbols])]
        if not self.bad_share:
            return q
        rng = np.random.default_rng(day.toordinal())
        n = max(4, int(len(q) * self.bad_share))
        idx = rng.choice(q.index.to_numpy(), size=n, replace=False)
        a, b, c, d = np.array_split(idx, 4)
        q = q.copy()
        q.loc[a, "price"] = np.nan
        q.loc[b, "price"] = -1.0
        q.loc[c, "ts"] = q.loc[c, "ts"] - pd.Timedelta(hours=6)  # before the open, never on another snapshot
        return pd.concat([q, q.loc[d]], ignore_index=True)  # duplicated snapshots


class FaultyMarketResource(MarketDataResource):
    bad_share: float = 0.002
    drop_symbols: int = 0

    def source(self):
        return FaultySource(self.bad_share, self.drop_symbols, n_symbols=8, snapshot_seconds=60)


def _run(qp_home, **faults):
    defs = build_definitions(resources={"market": FaultyMarketResource(**faults)})
    instance = dg.DagsterInstance.ephemeral()
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the tick before the run
    assert before.get_num_requested(dg.AssetKey("backtest_runs")) == 0
    result = defs.resolve_job_def("market_data_daily").execute_in_process(
        tags=TAGS, instance=instance, raise_on_error=False
    )
    checks = {
        e.event_specific_data.asset_key.to_user_string(): e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    materialized = {
        e.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()
    }
    return defs, instance, result, checks, materialized, before.cursor


def test_bad_rows_are_quarantined_with_reasons_and_clean_rows_flow(qp_home, chdb_dsn):
    _, _, result, checks, materialized, _ = _run(qp_home, bad_share=0.002)
    assert result.success
    assert {"raw_quotes", "bars_1m", "klines_daily", "qa_report"} <= materialized
    raw = checks["raw_quotes"]
    assert not raw.passed and raw.severity == dg.AssetCheckSeverity.WARN  # below the threshold: warn only
    with ColdStore(chdb_dsn) as cold:
        q = cold.read_table("quarantine", DAYS[0], DAYS[-1])
        clean = cold.count_by_day("raw_quotes", [dt.date(2024, 10, 8), dt.date(2024, 10, 9)])
        klines = cold.read_table("klines_daily", DAYS[0], DAYS[-1])
    rules = set(q["rule"])
    assert {"missing_value", "non_positive_price", "outside_session", "duplicate"} <= rules
    assert q["reason"].str.len().min() > 10 and q["payload"].str.startswith("{").all()
    good = {d: 8 * 240 for d in clean}  # 8 symbols x 240 one-minute snapshots, minus the bad ones
    for day, n in clean.items():
        bad_that_day = int(((q["trade_date"] == pd.Timestamp(day)) & (q["rule"] != "duplicate")).sum())
        assert n == good[day] - bad_that_day  # every good row kept, every bad row quarantined
    assert len(klines) == 16


def test_over_threshold_blocks_downstream_in_the_run(qp_home):
    _, _, result, checks, materialized, _ = _run(qp_home, bad_share=0.05)
    assert not result.success
    assert checks["raw_quotes"].severity == dg.AssetCheckSeverity.ERROR and not checks["raw_quotes"].passed
    assert "raw_quotes" in materialized
    assert not {"bars_1m", "klines_daily", "qa_report"} & materialized


def test_failed_klines_check_blocks_backtest_automation(qp_home):
    defs, instance, result, checks, materialized, cursor = _run(qp_home, bad_share=0.0, drop_symbols=2)
    assert checks["klines_daily"].severity == dg.AssetCheckSeverity.ERROR  # 25% of symbol-days missing
    assert "klines_daily" in materialized and "qa_report" not in materialized
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert evaluation.get_num_requested(dg.AssetKey("backtest_runs")) == 0


def test_passing_checks_let_backtest_automation_run(qp_home):
    defs, instance, result, checks, _, cursor = _run(qp_home, bad_share=0.0)
    assert result.success and all(
        c.passed or c.severity == dg.AssetCheckSeverity.WARN for c in checks.values()
    )
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    assert evaluation.get_num_requested(dg.AssetKey("backtest_runs")) == 1


def test_clean_synthetic_data_passes_every_check(qp_home):
    _, _, result, checks, _, _ = _run(qp_home, bad_share=0.0)
    assert result.success
    assert {k: c.passed for k, c in checks.items()} == dict.fromkeys(
        ["raw_quotes", "bars_1m", "bars_5m", "bars_15m", "klines_daily"], True
    )


def test_qa_command_reports_and_fails_on_blocked_days(qp_home):
    from typer.testing import CliRunner

    from quant_platform.cli import app

    defs = build_definitions(resources={"market": FaultyMarketResource(bad_share=0.0)})
    instance = dg.DagsterInstance.get()
    day1 = {ASSET_PARTITION_RANGE_START_TAG: DAYS[0], ASSET_PARTITION_RANGE_END_TAG: DAYS[0]}
    assert defs.resolve_job_def("market_data_daily").execute_in_process(tags=day1, instance=instance).success
    ok = CliRunner().invoke(app, ["qa", "--start", DAYS[0], "--end", DAYS[0]])
    assert ok.exit_code == 0, ok.output
    assert "passed" in ok.output and "1,920" in ok.output  # 8 symbols x 240 snapshots

    bad = build_definitions(resources={"market": FaultyMarketResource(bad_share=0.05)})
    day2 = {ASSET_PARTITION_RANGE_START_TAG: DAYS[1], ASSET_PARTITION_RANGE_END_TAG: DAYS[1]}
    bad.resolve_job_def("market_data_daily").execute_in_process(
        tags=day2, instance=instance, raise_on_error=False
    )
    failed = CliRunner().invoke(app, ["qa", "--start", DAYS[0], "--end", DAYS[1]])
    assert failed.exit_code == 1, failed.output
    assert "FAILED" in failed.output and "1 trading day(s) failed" in failed.output
