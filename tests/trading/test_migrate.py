"""Migration from the old file store: dual write, import, verify, export (round trip) and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quant_platform.cli import app
from quant_platform.client import Client
from quant_platform.trading.files import FileStore
from quant_platform.trading.migrate import export_files, export_klines, import_files, verify
from quant_platform.trading.service import TradingService

from .conftest import trade


def service(qp: Client) -> TradingService:
    return TradingService(qp.cold, qp.warm, qp.hot, calendar="XSHG")


def fills(account: str, n: int, first: int = 0) -> pd.DataFrame:
    rows = []
    for i in range(first, first + n):
        symbol = ["600000.SH", "000001.SZ", "600519.SH"][i % 3]
        side = "buy" if i % 4 != 3 else "sell"
        ts = f"2024-0{1 + i % 6}-1{i % 10} 02:{i % 60:02d}"
        price = 10 + (i % 7) * 0.37
        extra = {"commission": round(0.1 * i, 2), "realized_pnl": (i % 5) - 2.5}
        rows.append(trade(account, f"T{i:05d}", symbol, side, 100 + i, price, ts, **extra))
    return pd.DataFrame(rows)


def test_dual_write_then_import_verify_export_round_trip(qp_home: Path, monkeypatch, tmp_path: Path) -> None:
    old = tmp_path / "old-files"
    monkeypatch.setenv("QP_DUAL_WRITE", "files")
    monkeypatch.setenv("QP_FILES_DIR", str(old))
    with Client(clickhouse_dsn=f"chdb://{qp_home / 'chdb-a'}") as qp:
        for account in ("acc-a", "acc-b"):
            qp.warm.create_account(account, initial_cash=1e6)
            qp.record_trades(fills(account, 30))
            qp.record_trades(fills(account, 20, first=25))  # overlapping replay: 15 new
        qp.trading.roll_day(None, "2024-07-01")
        assert len(qp.trades("acc-a", "2024-01-01", "2024-12-31")) == 45
        assert all(c.ok for c in verify(FileStore(old), service(qp))), verify(FileStore(old), service(qp))
    monkeypatch.delenv("QP_DUAL_WRITE")
    files = FileStore(old)
    assert files.accounts() == ["acc-a", "acc-b"]
    held = json.loads(files.positions_path("acc-a").read_text())["held_days"]
    assert set(held.values()) == {1}

    # A fresh platform: import, verify, import again (idempotent), export, compare the bytes.
    with Client(
        clickhouse_dsn=f"chdb://{qp_home / 'chdb-b'}", warehouse_url=f"sqlite:///{qp_home / 'b.sqlite'}"
    ) as qp:
        done = import_files(files, service(qp))
        assert done["acc-a"]["trades"] == 45 and done["acc-a"]["positions"] == 3
        assert import_files(files, service(qp))["acc-a"] == {"trades": 0, "duplicates": 45, "positions": 3}
        assert all(c.ok for c in verify(files, service(qp)))
        out = FileStore(tmp_path / "exported")
        export_files(out, service(qp))
    for account in ("acc-a", "acc-b"):
        assert out.positions_path(account).read_bytes() == files.positions_path(account).read_bytes()
        before = files.trades_path(account).read_text().splitlines()
        after = out.trades_path(account).read_text().splitlines()
        assert before[0] == after[0] and sorted(before[1:]) == sorted(after[1:])


def test_verify_reports_differences_and_the_cli_exits_1(qp_home: Path, monkeypatch, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    files.write_trades("legacy", fills("legacy", 5))
    # An older positions file without entry prices: the entry is taken as the minimum price.
    files.positions_path("legacy").parent.mkdir(parents=True)
    files.positions_path("legacy").write_text(
        json.dumps(
            {
                "held_days": {"600000.SH": 3},
                "max_prices": {"600000.SH": 12.5},
                "min_prices": {"600000.SH": 9.0},
            }
        )
    )
    monkeypatch.setenv("QP_FILES_DIR", str(files.root))
    monkeypatch.setenv("QP_REDIS_URL", "memory://")
    runner = CliRunner()
    result = runner.invoke(app, ["migrate", "verify"])
    assert result.exit_code == 1, result.output  # nothing imported yet
    with Client() as qp:
        import_files(files, service(qp))
        p = qp.positions("legacy")["600000.SH"]
        assert (p.held_days, p.entry_price, p.max_price, p.min_price) == (3, 9.0, 12.5, 9.0)
        checks = {c.table: c for c in verify(files, service(qp))}
        assert checks["trades"].ok and checks["positions"].ok
        files.write_trades("legacy", fills("legacy", 4))  # the files lose a trade
        bad = {c.table: c for c in verify(files, service(qp))}
        assert not bad["trades"].ok and (bad["trades"].file_rows, bad["trades"].store_rows) == (4, 5)


def test_cli_accounts_and_trades(qp_home: Path, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    run("accounts", "create", "cli-acc", "--capital", "1000", "--broker", "sim")
    run("accounts", "create", "cli-acc", code=2)
    run("accounts", "capital", "cli-acc", "--delta", "500", "--reason", "deposit")
    with Client() as qp:
        qp.warm.create_strategy("momo")
    assert "1,200.00" in run("accounts", "allocate", "cli-acc", "momo", "1200", "--risk-limit", "0.05")
    assert "above its current capital" in run("accounts", "allocate", "cli-acc", "momo", "1600", code=2)
    assert "deposit" in run("accounts", "show", "cli-acc")
    run("accounts", "status", "cli-acc", "suspended")
    assert "cannot go from suspended to suspended" not in run("accounts", "status", "cli-acc", "suspended")
    run("accounts", "status", "cli-acc", "active")
    assert "does not exist" in run("accounts", "show", "nobody", code=1)

    csv = tmp_path / "fills.csv"
    FileStore(tmp_path / "x").write_trades("cli-acc", fills("cli-acc", 8))
    csv.write_text((tmp_path / "x" / "trades" / "cli-acc.csv").read_text())
    assert "8 trades recorded" in run("trades", "record", str(csv))
    assert "0 trades recorded, 8 already stored" in run("trades", "record", str(csv))
    assert "T00007" in run(
        "trades", "list", "cli-acc", "--start", "2024-01-01", "--end", "2024-12-31", "--csv"
    )
    assert "600519.SH" in run(
        "trades", "stats", "cli-acc", "--start", "2024-01-01", "--end", "2024-12-31", "--by", "symbol"
    )
    assert "cli-acc" in run("trades", "summary")
    assert "by must be" in run(
        "trades", "stats", "cli-acc", "--start", "2024-01-01", "--end", "2024-12-31", "--by", "x", code=2
    )
    assert "exported" not in run("migrate", "export", "--dir", str(tmp_path / "exp"))
    assert (tmp_path / "exp" / "trades" / "cli-acc.csv").exists()


def klines_frame(symbol: str, days: int, first_prev: float | None) -> pd.DataFrame:
    dates = pd.bdate_range("2024-03-01", periods=days)
    close = [10 + 0.37 * i for i in range(days)]
    return pd.DataFrame(
        {
            "symbol": symbol,
            "trade_date": dates,
            "open": [c - 0.1 for c in close],
            "high": [c + 0.25 for c in close],
            "low": [c - 0.3 for c in close],
            "close": close,
            "prev_close": [first_prev, *close[:-1]],
            "volume": [1000 * (i + 1) for i in range(days)],
            "amount": [c * 1000 * (i + 1) for i, c in enumerate(close)],
        }
    )


def test_klines_import_verify_export_round_trip(qp_home: Path, monkeypatch, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    files.write_klines("600000.SH", klines_frame("600000.SH", 12, None))  # first day: prev_close unknown
    files.write_klines("300750.SZ", klines_frame("300750.SZ", 5, 9.5))
    original = {s: files.klines_path(s).read_bytes() for s in files.kline_symbols()}
    monkeypatch.setenv("QP_FILES_DIR", str(files.root))
    monkeypatch.setenv("QP_REDIS_URL", "memory://")
    runner = CliRunner()
    assert runner.invoke(app, ["migrate", "verify"]).exit_code == 1  # nothing imported yet
    result = runner.invoke(app, ["migrate", "import"])
    assert result.exit_code == 0 and "klines: 17 new days of 2 symbols" in result.output, result.output
    again = runner.invoke(app, ["migrate", "import"])
    assert "klines: 0 new days of 2 symbols (17 already stored)" in again.output, again.output
    result = runner.invoke(app, ["migrate", "verify"])
    assert result.exit_code == 0 and result.output.count("klines") == 2, result.output
    with Client() as qp:
        k = qp.klines(["300750.SZ"], "2024-03-01", "2024-03-31")
        assert k["limit_up"].iloc[0] == 11.4 and k["change_rate"].iloc[0] == pytest.approx(10 / 9.5 - 1)
        out = FileStore(tmp_path / "exported")
        assert export_klines(out, qp.cold, files.kline_symbols()) == {"300750.SZ": 5, "600000.SH": 12}
    for symbol, raw in original.items():
        assert out.klines_path(symbol).read_bytes() == raw
    # A file that lost a day is a difference; the CLI export (a rollback) writes it back as it was.
    lines = files.klines_path("600000.SH").read_text().splitlines()
    files.klines_path("600000.SH").write_text("\n".join(lines[:-1]) + "\n")
    assert runner.invoke(app, ["migrate", "verify"]).exit_code == 1
    assert runner.invoke(app, ["migrate", "export"]).exit_code == 0
    assert files.klines_path("600000.SH").read_bytes() == original["600000.SH"]
    # A file that is not a klines file: one line and exit code 2.
    files.klines_path("BAD.SH").write_text("date,price\n2024-03-01,1\n")
    bad = runner.invoke(app, ["migrate", "import"])
    assert bad.exit_code == 2 and "missing columns" in bad.output and "Traceback" not in bad.output
