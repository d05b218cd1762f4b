"""Every setting of quant-platform, read from the environment in one place.

`settings()` returns one frozen `Settings` read from the environment at the time of the call (cheap:
a handful of lookups), so a test or a CLI option that changes a variable is seen by the next call.
Nothing else in the package reads `os.environ`; the README's configuration table lists the same
variables in the same order as `ENVIRONMENT` below.

`QP_DEPLOYMENT=local` (default) uses embedded stores under `QP_HOME`: ClickHouse SQL in-process
through chdb, SQLite for the warm tier, an in-process cache for the hot tier. `QP_DEPLOYMENT=prod`
uses servers; their addresses and credentials come only from the environment (as `dg.EnvVar`s, so
they never enter the Dagster instance).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LOCAL = "local"
PROD = "prod"
DEPLOYMENTS = (LOCAL, PROD)
MARKET_SOURCES = ("synthetic", "akshare", "files")
GRID_EXECUTORS = ("in_process", "multiprocess", "celery")
OPTIONS_SOURCES = ("synthetic", "ib")
LOG_FORMATS = ("text", "json")
DUAL_WRITES = ("files",)
DEFAULT_CALENDAR = "XSHG"  # same value as core.calendar.DEFAULT_CALENDAR, without importing it

# (variable, default, meaning): the README's configuration table, in this order.
ENVIRONMENT: tuple[tuple[str, str, str], ...] = (
    ("QP_DEPLOYMENT", LOCAL, "`local` (embedded stores, in-process executor) or `prod` (servers)"),
    (
        "QP_HOME",
        "~/.quant-platform",
        "where embedded stores, the Dagster instance and drops live",
    ),
    ("DAGSTER_HOME", "$QP_HOME/dagster", "the Dagster instance (runs, events, schedules)"),
    (
        "QP_CLICKHOUSE_DSN",
        "chdb://$QP_HOME/chdb",
        "cold tier: `chdb://path` or `http(s)://user:pw@host:8123/db`",
    ),
    ("QP_WAREHOUSE_URL", "sqlite:///$QP_HOME/warehouse.sqlite", "warm tier: SQLite or `mysql+pymysql://...`"),
    ("QP_REDIS_URL", "memory://", "hot tier: `memory://` (in-process) or `redis://host:6379/0`"),
    ("QP_CALENDAR", DEFAULT_CALENDAR, "exchange calendar of partitions and schedules (XSHG, XNYS, 24/7)"),
    ("QP_MARKET_SOURCE", "synthetic", "market source: `synthetic`, `akshare` or `files`"),
    ("QP_SYNTHETIC_SYMBOLS", "50", "size of the synthetic universe"),
    ("QP_DROP_DIR", "$QP_HOME/drop", "file-drop folder watched by `file_drop_sensor`"),
    ("QP_AKSHARE_SYMBOLS", "(whole market)", "comma-separated AKShare universe"),
    ("QP_AKSHARE_ADJUST", "(none)", "AKShare price adjustment: empty, `qfq` or `hfq`"),
    ("QP_AKSHARE_RATE", "2", "AKShare calls per second"),
    ("QP_QA_MAX_QUARANTINED_SHARE", "0.01", "quarantined share of a day above which a quality gate blocks"),
    ("QP_QA_MAX_MISSING_SHARE", "0.05", "missing symbol-days share above which the klines gate blocks"),
    ("QP_MAX_RANGE_DAYS", "260", "trading days one `run` may materialize without `--allow-long-range`"),
    ("QP_GRID_EXECUTOR", "(deployment's)", "executor of grid runs: `in_process`, `multiprocess` or `celery`"),
    ("QP_CELERY_BROKER", "-", "Celery broker of grid runs, e.g. `redis://127.0.0.1:6379/2`"),
    ("QP_CELERY_BACKEND", "(the broker)", "Celery result backend of grid runs"),
    (
        "QP_OPTIONS_SOURCE",
        "synthetic",
        "option chains and snapshots: `synthetic` or `ib` (Interactive Brokers)",
    ),
    ("QP_OPTIONS_UNDERLYINGS", "510050.SH", "comma-separated underlyings of the options assets"),
    ("QP_IB_HOST", "127.0.0.1", "TWS / IB Gateway host (`QP_OPTIONS_SOURCE=ib`)"),
    ("QP_IB_PORT", "7497", "... its API port"),
    ("QP_IB_CLIENT_ID", "17", "... the API client id the options source connects with"),
    ("QP_DAGSTER_PG_HOST", "-", "prod Dagster instance (`dagster.prod.yaml`): PostgreSQL host"),
    ("QP_DAGSTER_PG_PORT", "-", "... its port"),
    ("QP_DAGSTER_PG_USER", "-", "... its user"),
    ("QP_DAGSTER_PG_PASSWORD", "-", "... its password"),
    ("QP_DAGSTER_PG_DB", "-", "... its database"),
    (
        "QP_API_SECRET",
        "(generated under $QP_HOME)",
        "HTTP API: HS256 signing key of access tokens; required in prod",
    ),
    ("QP_API_TOKEN_MINUTES", "15", "HTTP API: lifetime of an access token"),
    (
        "QP_API_RATE_LIMIT",
        "120/minute",
        "HTTP API: requests per user and `second`, `minute`, `hour` or `day`",
    ),
    (
        "QP_NOTIFY_URLS",
        "(none)",
        "notification channels: space/comma-separated apprise URLs (`slack://`, `mailto://`, `json://`)",
    ),
    ("QP_LOG_FORMAT", "text", "log lines of every process: `text` or `json` (JSON lines)"),
    (
        "QP_NOTIFY_COLLECTOR_SILENCE",
        "600",
        "seconds without a collector observation before a notification (0: never)",
    ),
    ("QP_DUAL_WRITE", "(none)", "`files`: every position and trade write also goes to the old file store"),
    (
        "QP_FILES_DIR",
        "$QP_HOME/files",
        "the old file store (JSON positions, CSV trades and klines) of `migrate`",
    ),
)
# The QP_DAGSTER_PG_* variables are read by Dagster itself, from dagster.prod.yaml.


# What the prod deployment cannot run without: it has no embedded defaults.
PROD_REQUIRED = ("QP_CLICKHOUSE_DSN", "QP_WAREHOUSE_URL", "QP_REDIS_URL")
# ... and what the HTTP API (`quant-platform serve`) needs on top: `settings().require(*API_REQUIRED)`.
API_REQUIRED = ("QP_API_SECRET",)
_RATE = re.compile(r"^\d+\s*/\s*(second|minute|hour|day)$")


class SettingsError(ValueError):
    """A variable holds a value the platform cannot use; the message names it and what it accepts."""


@dataclass(frozen=True)
class StoreSettings:
    """Where the three storage tiers are (the local deployment's embedded defaults filled in)."""

    clickhouse_dsn: str
    warehouse_url: str
    redis_url: str

    @classmethod
    def from_env(cls) -> StoreSettings:
        """The stores, or a SettingsError naming every variable prod is missing."""
        return settings().require().stores


@dataclass(frozen=True)
class Settings:
    """One reading of the environment; see `ENVIRONMENT` for each variable's meaning and default."""

    deployment: str
    home: Path
    dagster_home: Path
    stores: StoreSettings
    calendar: str
    market_source: str
    synthetic_symbols: int
    drop_dir: Path
    akshare_symbols: tuple[str, ...] | None
    akshare_adjust: str
    akshare_rate: float
    qa_max_quarantined_share: float
    qa_max_missing_share: float
    max_range_days: int
    grid_executor: str | None
    celery_broker: str | None
    celery_backend: str | None
    options_source: str = "synthetic"
    options_underlyings: tuple[str, ...] = ("510050.SH",)
    ib_host: str = "127.0.0.1"
    ib_port: int = 7497
    ib_client_id: int = 17
    api_secret: str | None = None
    api_token_minutes: float = 15.0
    api_rate_limit: str = "120/minute"
    notify_urls: tuple[str, ...] = ()  # secrets (tokens in URLs): never logged nor sent
    log_format: str = "text"
    notify_collector_silence: float = 600.0
    dual_write: str | None = None
    files_dir: Path | None = None
    given: frozenset[str] = frozenset()  # the variables that were set (not empty)

    @property
    def missing(self) -> tuple[str, ...]:
        """Variables the deployment needs that are not set (prod has no embedded defaults)."""
        if self.deployment != PROD:
            return ()
        return tuple(name for name in PROD_REQUIRED if name not in self.given)

    def require(self, *also: str) -> Settings:
        """These settings, or one SettingsError that lists every missing variable (and of `also`, in prod)."""
        missing = self.missing + tuple(
            name for name in also if self.deployment == PROD and name not in self.given
        )
        if missing:
            raise SettingsError(
                f"QP_DEPLOYMENT=prod needs {', '.join(missing)}: set them to your servers "
                "(see Configuration in the README), or use QP_DEPLOYMENT=local for embedded stores"
            )
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str:
            return (env.get(name) or "").strip()

        home = _path(get("QP_HOME")) or Path.home().joinpath(".quant-platform").resolve()
        kind = _choice("QP_DEPLOYMENT", get("QP_DEPLOYMENT").lower() or LOCAL, DEPLOYMENTS)
        embedded = kind == LOCAL  # prod never falls back to an embedded store
        symbols = [s.strip() for s in get("QP_AKSHARE_SYMBOLS").split(",") if s.strip()]
        return cls(
            deployment=kind,
            home=home,
            dagster_home=_path(get("DAGSTER_HOME")) or home / "dagster",
            stores=StoreSettings(
                clickhouse_dsn=get("QP_CLICKHOUSE_DSN") or (f"chdb://{home / 'chdb'}" if embedded else ""),
                warehouse_url=get("QP_WAREHOUSE_URL")
                or (f"sqlite:///{home / 'warehouse.sqlite'}" if embedded else ""),
                redis_url=get("QP_REDIS_URL") or ("memory://" if embedded else ""),
            ),
            calendar=get("QP_CALENDAR") or DEFAULT_CALENDAR,
            market_source=_choice(
                "QP_MARKET_SOURCE", get("QP_MARKET_SOURCE").lower() or "synthetic", MARKET_SOURCES
            ),
            synthetic_symbols=int(_number("QP_SYNTHETIC_SYMBOLS", get("QP_SYNTHETIC_SYMBOLS") or "50")),
            drop_dir=_path(get("QP_DROP_DIR")) or home / "drop",
            akshare_symbols=tuple(symbols) or None,
            akshare_adjust=get("QP_AKSHARE_ADJUST"),
            akshare_rate=_number("QP_AKSHARE_RATE", get("QP_AKSHARE_RATE") or "2"),
            qa_max_quarantined_share=_number(
                "QP_QA_MAX_QUARANTINED_SHARE", get("QP_QA_MAX_QUARANTINED_SHARE") or "0.01"
            ),
            qa_max_missing_share=_number("QP_QA_MAX_MISSING_SHARE", get("QP_QA_MAX_MISSING_SHARE") or "0.05"),
            max_range_days=int(_number("QP_MAX_RANGE_DAYS", get("QP_MAX_RANGE_DAYS") or "260")),
            grid_executor=_choice("QP_GRID_EXECUTOR", get("QP_GRID_EXECUTOR").lower(), GRID_EXECUTORS)
            or None,
            celery_broker=get("QP_CELERY_BROKER") or None,
            celery_backend=get("QP_CELERY_BACKEND") or None,
            options_source=_choice(
                "QP_OPTIONS_SOURCE", get("QP_OPTIONS_SOURCE").lower() or "synthetic", OPTIONS_SOURCES
            ),
            options_underlyings=tuple(
                u.strip() for u in (get("QP_OPTIONS_UNDERLYINGS") or "510050.SH").split(",") if u.strip()
            ),
            ib_host=get("QP_IB_HOST") or "127.0.0.1",
            ib_port=int(_number("QP_IB_PORT", get("QP_IB_PORT") or "7497")),
            ib_client_id=int(_number("QP_IB_CLIENT_ID", get("QP_IB_CLIENT_ID") or "17")),
            api_secret=get("QP_API_SECRET") or None,
            api_token_minutes=_positive("QP_API_TOKEN_MINUTES", get("QP_API_TOKEN_MINUTES") or "15"),
            api_rate_limit=_rate("QP_API_RATE_LIMIT", get("QP_API_RATE_LIMIT") or "120/minute"),
            notify_urls=tuple(u for u in re.split(r"[\s,]+", get("QP_NOTIFY_URLS")) if u),
            log_format=_choice("QP_LOG_FORMAT", get("QP_LOG_FORMAT").lower() or "text", LOG_FORMATS),
            notify_collector_silence=_number(
                "QP_NOTIFY_COLLECTOR_SILENCE", get("QP_NOTIFY_COLLECTOR_SILENCE") or "600"
            ),
            dual_write=_choice("QP_DUAL_WRITE", get("QP_DUAL_WRITE").lower(), DUAL_WRITES) or None,
            files_dir=_path(get("QP_FILES_DIR")) or home / "files",
            given=frozenset(name for name, _, _ in ENVIRONMENT if get(name)),
        )


def _path(value: str) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value and value not in allowed:
        raise SettingsError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {value!r}") from None


def _positive(name: str, value: str) -> float:
    number = _number(name, value)
    if not number > 0:
        raise SettingsError(f"{name} must be a positive number, got {value!r}")
    return number


def _rate(name: str, value: str) -> str:
    if not _RATE.match(value.lower()):
        raise SettingsError(
            f"{name} must look like 120/minute (per second, minute, hour or day), got {value!r}"
        )
    return value.lower().replace(" ", "")


def settings() -> Settings:
    """The settings as the environment says now."""
    return Settings.from_env()


def qp_home() -> Path:
    """Root of everything the embedded deployment writes (default ~/.quant-platform)."""
    return settings().home


def deployment() -> str:
    return settings().deployment


def ensure_dagster_home() -> Path:
    """Point Dagster at `$DAGSTER_HOME` (default `$QP_HOME/dagster`), creating the folder.

    Dagster reads the variable itself, so this is the one place that writes the environment.
    """
    home = settings().dagster_home
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    return home
