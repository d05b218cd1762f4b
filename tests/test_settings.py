"""settings.py is the one reader of the environment, and the README's configuration table is its mirror."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quant_platform import settings as settings_module
from quant_platform.settings import ENVIRONMENT, Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "quant_platform"


def test_readme_configuration_table_lists_the_settings_line_for_line():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    names = re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.M)
    assert names == [name for name, _, _ in ENVIRONMENT]


def test_every_variable_read_is_documented():
    source = Path(settings_module.__file__).read_text()
    read = set(re.findall(r'get\("([A-Z_]+)"\)', source))
    assert read and read <= {name for name, _, _ in ENVIRONMENT}


def test_only_settings_reads_the_environment():
    readers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"os\.environ|os\.getenv", path.read_text())
    )
    assert readers == ["settings.py"]


def test_defaults_and_clear_errors(tmp_path):
    current = Settings.from_env({"QP_HOME": str(tmp_path)})
    assert current.deployment == "local" and current.calendar == "XSHG"
    assert current.stores.clickhouse_dsn == f"chdb://{tmp_path / 'chdb'}"
    assert current.stores.redis_url == "memory://" and current.drop_dir == tmp_path / "drop"
    assert current.dagster_home == tmp_path / "dagster" and current.grid_executor is None
    assert current.akshare_symbols is None and current.qa_max_quarantined_share == 0.01
    parsed = Settings.from_env({"QP_AKSHARE_SYMBOLS": " 600000, ,000001.SZ", "QP_GRID_EXECUTOR": "Celery"})
    assert parsed.akshare_symbols == ("600000", "000001.SZ") and parsed.grid_executor == "celery"
    with pytest.raises(SettingsError, match="QP_DEPLOYMENT must be one of"):
        Settings.from_env({"QP_DEPLOYMENT": "staging"})
    with pytest.raises(SettingsError, match="QP_QA_MAX_MISSING_SHARE must be a number, got 'lots'"):
        Settings.from_env({"QP_QA_MAX_MISSING_SHARE": "lots"})
