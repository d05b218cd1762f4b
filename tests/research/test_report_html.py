"""The report's HTML is built from values a user chose (strategy names, parameters, symbols): they are
escaped everywhere, and the embedded trades cannot end their script element early."""

from __future__ import annotations

import datetime as dt
import html
import json

import pandas as pd

from quant_platform.research.report import render_report
from quant_platform.research.runs import RunResult
from quant_platform.storage.warm import BacktestRun, Status

EVIL = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'


def result(n_trades: int) -> RunResult:
    ts = pd.date_range("2024-01-02", periods=30, freq="D", tz="UTC")
    now = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    run = BacktestRun(
        id="r1", strategy=EVIL, backtest_id=None, grid_request_id=None, param_version=None,
        params={"fast": 5, EVIL: 1}, status=Status.SUCCEEDED,
        stats={"total_return": 0.1, "warnings": [EVIL], "window": ["2024-01-02", "2024-01-31"], "note": EVIL},
        data_version=EVIL, code_version="0.1.0", result_hash="h", error=None,
        created_at=now, started_at=now, finished_at=now,
    )  # fmt: skip
    trades = pd.DataFrame(
        {
            "symbol": [EVIL] * n_trades,
            "entry_time": ts[:n_trades],
            "exit_time": ts[:n_trades],
            "entry_price": 1.0,
            "exit_price": 1.1,
            "size": 100.0,
            "pnl": 10.0,
            "commission": 0.5,
            "is_open": False,
        }
    )
    return RunResult(run, pd.Series([1e6 + i for i in range(30)], index=ts), trades)


def test_user_values_are_escaped_and_trades_stay_inside_their_script():
    page = render_report(result(7), page_size=3)
    assert EVIL not in page and "<img src=x" not in page  # nowhere raw: not in HTML, not in scripts
    assert html.escape(EVIL, quote=True) in page
    payload = page.split('id="trades-data">', 1)[1].split("</script>", 1)[0]
    data = json.loads(payload)
    assert len(data["rows"]) == 7 and data["rows"][0][0] == EVIL  # intact once parsed
    assert page.count("<tbody>") == 1 and page.split("<tbody>")[1].split("</tbody>")[0].count("<tr>") == 3


def test_a_run_without_trades_still_renders():
    page = render_report(result(0))
    assert "Trades (0)" in page and '"rows": []' in page
