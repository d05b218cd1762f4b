"""The symbol master helpers: recording a source's universe, importing a list, reading it back."""

from __future__ import annotations

import datetime as dt

import pytest

from quant_platform.sources.files import FileDropSource
from quant_platform.sources.symbols import (
    cold_symbol_master,
    import_symbols,
    read_symbols_file,
    record_source_universe,
    record_universe,
)
from quant_platform.sources.synthetic import SyntheticMarket
from quant_platform.storage.cold import ColdStore

D1, D2 = dt.date(2024, 10, 8), dt.date(2024, 10, 9)


def test_a_source_records_its_universe_and_the_file_source_reads_it(chdb_dsn, tmp_path):
    market = SyntheticMarket(n_symbols=3)
    with ColdStore(chdb_dsn) as cold:
        assert record_source_universe(cold, market, [D1, D2]) == 6
        assert record_source_universe(cold, market, [D1]) == 3  # idempotent: replaced, not added
        files = FileDropSource(tmp_path / "drop", symbol_master=cold_symbol_master(chdb_dsn))
        assert record_source_universe(cold, files, [D1]) == 0  # its universe *is* the master
        assert len(cold.read_table("symbol_master")) == 6
    assert files.universe(D2) == sorted(market.universe(D2))
    assert FileDropSource(tmp_path / "drop").universe(D1) == sorted(market.universe(D1))  # QP_HOME's store


def test_import_a_symbols_file(chdb_dsn, tmp_path):
    path = tmp_path / "master.csv"
    path.write_text("code,trade_date\n600000,2024-10-08\nsh600519,2024-10-08\n000001,\nAAPL,2024-10-09\n")
    assert read_symbols_file(path) == {
        D1: ["600000.SH", "600519.SH"],
        None: ["000001.SZ"],
        D2: ["AAPL"],
    }
    with ColdStore(chdb_dsn) as cold:
        with pytest.raises(ValueError, match="need a day"):
            import_symbols(cold, path)
        assert import_symbols(cold, path, day=D1) == {D1: 3, D2: 1}
        assert cold.symbol_master(D1) == ["000001.SZ", "600000.SH", "600519.SH"]
        assert cold.symbol_master(D2 + dt.timedelta(days=7)) == ["AAPL"]
        record_universe(cold, "import", D2, ["AAPL", "MSFT"])
        assert cold.symbol_master(D2) == ["AAPL", "MSFT"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name\nfoo\n", "no symbol column"),
        ("symbol,name\n600000,a\n ,b\n", "line 3: empty symbol"),
        ("symbol,date\n600000,someday\n", "is not a date"),
    ],
)
def test_bad_symbols_files(tmp_path, content, message):
    path = tmp_path / "m.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_symbols_file(path)


def test_symbols_import_command(qp_home, chdb_dsn, tmp_path):
    from typer.testing import CliRunner

    from quant_platform.cli import app

    path = tmp_path / "listed.csv"
    path.write_text("symbol\n600000\n000001.SZ\n")
    result = CliRunner().invoke(app, ["symbols", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "2020-01-02: 2 symbols recorded for source 'import'" in result.output
    with ColdStore(chdb_dsn) as cold:
        assert cold.symbol_master(D1) == ["000001.SZ", "600000.SH"]
    path.write_text("ticker,date\n600519,someday\n")
    bad = CliRunner().invoke(app, ["symbols", "import", str(path), "--day", "2024-10-08"])
    assert bad.exit_code == 2 and "is not a date" in bad.output and "Traceback" not in bad.output
