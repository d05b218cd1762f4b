"""file_drop_sensor with real files in temp folders, evaluated with dg.build_sensor_context."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from quant_platform.assets.market_data import raw_quotes
from quant_platform.conventions import DROP_NAME_TAG
from quant_platform.resources.clickhouse import ClickHouseResource
from quant_platform.resources.hot import HotCacheResource
from quant_platform.resources.sources import MARKET_SOURCE_TAG, SelectableMarketResource
from quant_platform.sensors.file_drop import DROP_FILE_TAG, build_file_drop_sensor, file_drop_sensor
from quant_platform.sources.files import DropFolder
from quant_platform.sources.symbols import record_universe
from quant_platform.storage.cold import ColdStore


def write_quotes(path, days=("2024-10-08",), symbols=("600000", "000001")) -> None:
    rows = [
        {
            "symbol": s,
            "ts": f"{d} {t}",
            "price": 10.0 + i,
            "open": 10.0 + i,
            "high": 10.0 + i,
            "low": 10.0 + i,
            "prev_close": 10.0 + i,
            "bid": 9.99 + i,
            "ask": 10.01 + i,
            "volume": 100 * (k + 1),
            "amount": 1000.0 * (k + 1),
        }
        for d in days
        for i, s in enumerate(symbols)
        for k, t in enumerate(("09:31:00", "11:00:00", "14:59:00"))
    ]
    pd.DataFrame(rows).to_csv(path, index=False)


@pytest.fixture
def drop(tmp_path):
    folder = DropFolder(tmp_path / "drop")
    folder.ensure()
    return folder


def tick(sensor, instance):
    return sensor(dg.build_sensor_context(instance=instance))


def test_default_sensor_targets_the_market_data_job():
    assert file_drop_sensor.name == "file_drop_sensor"
    assert file_drop_sensor.job_name == "market_data_daily"


def test_new_files_launch_one_run_per_day_and_unparseable_files_are_rejected(drop):
    write_quotes(drop.root / "two_days.csv", days=("2024-10-08", "2024-10-09"))
    (drop.root / "bad_value.csv").write_text("symbol,ts,price\n600000,2024-10-08 10:00,oops\n")
    (drop.root / "holiday.csv").write_text("symbol,ts,price\n600000,2024-10-01 10:00,10\n")
    (drop.root / "no_symbol.csv").write_text("ts,price\n2024-10-08 10:00,10\n")
    (drop.root / "notes.txt").write_text("ignored: not csv/parquet")
    (drop.root / ".partial.csv").write_text("still being written")
    sensor = build_file_drop_sensor(drop_dir=drop.root, min_age_seconds=0)

    with dg.instance_for_test() as instance:
        result = tick(sensor, instance)
    requests = result.run_requests
    by_name = {}
    for r in requests:
        by_name.setdefault(r.tags[DROP_NAME_TAG], []).append(r.partition_key)
    # a bad value does not reject its file: the row rules of the run quarantine the row
    assert by_name == {"two_days.csv": ["2024-10-08", "2024-10-09"], "bad_value.csv": ["2024-10-08"]}
    file_id = next(r.tags[DROP_FILE_TAG] for r in requests if r.tags[DROP_NAME_TAG] == "two_days.csv")
    assert {r.run_key for r in requests if r.tags[DROP_FILE_TAG] == file_id} == {
        f"two_days.csv@{file_id}/2024-10-08",
        f"two_days.csv@{file_id}/2024-10-09",
    }
    assert all(r.tags[MARKET_SOURCE_TAG] == "files" for r in requests)

    staged = sorted(p.name for p in (drop.root / "staged").iterdir())
    assert f"{file_id}__two_days.csv" in staged and f"{file_id}__two_days.csv.json" in staged
    assert len(staged) == 4
    rejected = drop.root / "rejected"
    assert "2024-10-01 is not a XSHG trading day" in (rejected / "holiday.csv.reason.txt").read_text()
    assert "no symbol column" in (rejected / "no_symbol.csv.reason.txt").read_text()
    assert sorted(p.name for p in drop.root.iterdir() if p.is_file()) == [".partial.csv", "notes.txt"]


def test_files_still_being_written_wait_for_the_settle_time(drop):
    write_quotes(drop.root / "fresh.csv")
    sensor = build_file_drop_sensor(drop_dir=drop.root, min_age_seconds=3600)
    with dg.instance_for_test() as instance:
        result = tick(sensor, instance)
    assert not result.run_requests and (drop.root / "fresh.csv").exists()


def test_runs_ingest_the_drop_and_success_archives_the_file(drop, chdb_dsn):
    write_quotes(drop.root / "day.csv")
    sensor = build_file_drop_sensor(drop_dir=drop.root, min_age_seconds=0)
    market = SelectableMarketResource(kind="synthetic", drop_dir=str(drop.root))  # the run tag picks files
    with ColdStore(chdb_dsn) as cold:  # the universe the rows are checked against
        record_universe(cold, "import", "2024-10-01", ["600000.SH", "000001.SZ"])
    with dg.instance_for_test() as instance:
        (request,) = tick(sensor, instance).run_requests
        # The next tick, before any run exists, re-requests the same run key (Dagster launches it once).
        again = tick(sensor, instance)
        assert [r.run_key for r in again.run_requests] == [request.run_key]

        result = dg.materialize(
            [raw_quotes],
            partition_key=request.partition_key,
            tags=request.tags,
            instance=instance,
            resources={
                "market": market,
                "clickhouse": ClickHouseResource(dsn=chdb_dsn),
                "hot": HotCacheResource(),
            },
        )
        assert result.success
        with ColdStore(chdb_dsn) as cold:
            stored = cold.read_table("raw_quotes", "2024-10-08", "2024-10-08")
        assert len(stored) == 6 and sorted(stored["symbol"].unique()) == ["000001.SZ", "600000.SH"]

        after = tick(sensor, instance)
        assert not after.run_requests and "archived day.csv" in after.skip_reason.skip_message
        file_id = request.tags[DROP_FILE_TAG]
        assert (drop.root / "archive" / f"{file_id}__day.csv").exists()
        assert not list((drop.root / "staged").iterdir())

        # Dropping the same file again is a new content-addressed arrival of known content: no new run key.
        write_quotes(drop.root / "day.csv")
        (req2,) = tick(sensor, instance).run_requests
        assert req2.run_key == request.run_key


def test_failed_runs_keep_the_file_staged(drop):
    write_quotes(drop.root / "day.csv")
    sensor = build_file_drop_sensor(drop_dir=drop.root, min_age_seconds=0)

    @dg.asset(partitions_def=dg.DailyPartitionsDefinition("2024-10-01"))
    def boom() -> None:
        raise RuntimeError("ingestion failed")

    with dg.instance_for_test() as instance:
        (request,) = tick(sensor, instance).run_requests
        result = dg.materialize(
            [boom],
            partition_key=request.partition_key,
            tags=request.tags,
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        after = tick(sensor, instance)
        assert not after.run_requests and "failed" in after.skip_reason.skip_message
        assert (drop.root / "staged" / f"{request.tags[DROP_FILE_TAG]}__day.csv").exists()


def test_poison_files_never_stop_the_tick(drop):
    """Files that used to raise out of the tick (OverflowError on a 400-digit price) or be rejected whole
    for one value are staged for the row rules; only unparseable ones are rejected; good ones go on."""
    write_quotes(drop.root / "good.csv")
    (drop.root / "huge_price.csv").write_text(f"symbol,ts,price\n600000,2024-10-08 10:00,{'1' * 400}\n")
    (drop.root / "overflow.csv").write_text("symbol,ts,price,volume\n600000,2024-10-08 10:00,1e400,1e400\n")
    (drop.root / "nul.csv").write_bytes(b"symbol,ts,price\n600\x0000,2024-10-08 10:00,10\n")
    (drop.root / "bad_utf8.csv").write_bytes(b"symbol,ts,price\n600000,2024-10-08 10:00,1\xff\xfe0\n")
    (drop.root / "binary.csv").write_bytes(bytes(range(256)) * 64)
    (drop.root / "broken.parquet").write_bytes(b"PAR1 not really a parquet file PAR1")
    sensor = build_file_drop_sensor(drop_dir=drop.root, min_age_seconds=0)
    with dg.instance_for_test() as instance:
        result = tick(sensor, instance)
        again = tick(sensor, instance)  # the next tick is just as fine
    staged = {r.tags[DROP_NAME_TAG] for r in result.run_requests}
    assert staged == {"good.csv", "huge_price.csv", "overflow.csv", "nul.csv", "bad_utf8.csv"}
    assert {r.run_key for r in again.run_requests} == {r.run_key for r in result.run_requests}
    rejected = drop.root / "rejected"
    assert "not UTF-8" in (rejected / "binary.csv.reason.txt").read_text()
    assert "cannot read broken.parquet as parquet" in (rejected / "broken.parquet.reason.txt").read_text()
    assert not [p for p in drop.root.iterdir() if p.is_file()]


def test_any_exception_while_reading_rejects_only_that_file(drop, monkeypatch):
    from quant_platform.sensors import file_drop

    real = file_drop.read_drop_file

    def flaky(path, calendar="XSHG"):
        if path.name == "explodes.csv":
            raise KeyError("something nobody expected")
        return real(path, calendar)

    monkeypatch.setattr(file_drop, "read_drop_file", flaky)
    write_quotes(drop.root / "explodes.csv")
    write_quotes(drop.root / "good.csv", symbols=("600519",))
    sensor = build_file_drop_sensor(drop_dir=drop.root, min_age_seconds=0)
    with dg.instance_for_test() as instance:
        result = tick(sensor, instance)
    assert [r.tags[DROP_NAME_TAG] for r in result.run_requests] == ["good.csv"]
    reason = (drop.root / "rejected" / "explodes.csv.reason.txt").read_text()
    assert reason.startswith("KeyError: ") and "something nobody expected" in reason


def test_a_file_that_cannot_be_moved_aside_is_skipped(drop, monkeypatch):
    def no_rejects(self, path, reason):
        raise PermissionError(f"read-only folder: {path.name}")

    monkeypatch.setattr(DropFolder, "reject", no_rejects)
    (drop.root / "binary.csv").write_bytes(b"\x00\xff" * 100)
    write_quotes(drop.root / "good.csv")
    sensor = build_file_drop_sensor(drop_dir=drop.root, min_age_seconds=0)
    with dg.instance_for_test() as instance:
        result = tick(sensor, instance)
        later = tick(sensor, instance)  # tried again, skipped again, the tick still succeeds
    assert [r.tags[DROP_NAME_TAG] for r in result.run_requests] == ["good.csv"]
    assert [r.run_key for r in later.run_requests] == [r.run_key for r in result.run_requests]
    assert (drop.root / "binary.csv").exists() and not list((drop.root / "rejected").iterdir())
