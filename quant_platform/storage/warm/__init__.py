"""Warm tier: the relational store for the research workflow (accounts, strategies, parameters, runs).

One code path covers SQLite (embedded, `sqlite:///path`) and MySQL/MariaDB (`mysql+pymysql://...`).
The schema belongs to the Alembic revisions in `storage/migrations`, and `WarmStore.migrate()` applies
them, so both engines get the same DDL and a deployed database can always say which schema version
it holds.

Every public method is one short transaction. Transient failures (lost connection, deadlock, lock
wait timeout, a locked SQLite file) make the whole transaction retry with exponential backoff and
jitter. If the retries run out, or the failure is not transient, the error surfaces as
`StoreUnavailable` with the store's URL (password masked), so the operator sees which database is
the problem. Domain errors have their own types (`NotFound`, `AlreadyExists`, `IllegalTransition`,
`IdempotencyConflict`) so that the CLI and the HTTP API can map them to clear messages or status codes.

Every query binds its values as parameters. Values are never formatted into SQL.

Supported servers: MySQL 8+ and MariaDB 10.6+, because claiming grid requests uses
`FOR UPDATE SKIP LOCKED`.

The package is split along those concerns: `errors` (error types, transient-failure
classification), `lifecycle` (statuses, the one transition helper and its sibling for
accounts), `records` (frozen records, JSON and validation helpers), `engine` (URLs, engines,
Alembic config), `rows` (row lookups and conversions), the `WarmStore` sections `accounts`,
`strategies`, `runs`, `grid_requests`, `identity` (users, API keys, ownership), `api_requests`
(backtest requests, idempotent responses) and `share_links` (read-only links to run reports),
mixins on `section.StoreSection`, and `store` (the `WarmStore` class that composes them).
Everything public is re-exported here.
"""

from quant_platform.storage.warm.engine import (
    MIGRATIONS_LOCATION,
    SUPPORTED_BACKENDS,
    alembic_config,
    mask_url,
    normalize_url,
)
from quant_platform.storage.warm.errors import (
    AccountNotActive,
    AlreadyExists,
    CapitalExceeded,
    IdempotencyConflict,
    IllegalTransition,
    NotFound,
    StoreUnavailable,
    WarmStoreError,
    is_transient,
)
from quant_platform.storage.warm.lifecycle import (
    ACCOUNT_TRANSITIONS,
    TRANSITIONS,
    AccountStatus,
    Status,
    check_transition,
)
from quant_platform.storage.warm.records import (
    Account,
    Allocation,
    ApiKey,
    Backtest,
    BacktestRequest,
    BacktestRun,
    CapitalChange,
    GridRequest,
    ParamDiff,
    ParamVersion,
    PingResult,
    ShareLink,
    StoredResponse,
    Strategy,
    User,
    body_hash,
    diff_mappings,
    json_safe,
)
from quant_platform.storage.warm.store import WarmStore

__all__ = [
    "ACCOUNT_TRANSITIONS",
    "MIGRATIONS_LOCATION",
    "SUPPORTED_BACKENDS",
    "TRANSITIONS",
    "Account",
    "AccountNotActive",
    "AccountStatus",
    "Allocation",
    "ApiKey",
    "AlreadyExists",
    "Backtest",
    "BacktestRequest",
    "BacktestRun",
    "CapitalChange",
    "CapitalExceeded",
    "GridRequest",
    "IdempotencyConflict",
    "IllegalTransition",
    "NotFound",
    "ParamDiff",
    "ParamVersion",
    "PingResult",
    "ShareLink",
    "Status",
    "StoreUnavailable",
    "StoredResponse",
    "Strategy",
    "User",
    "WarmStore",
    "WarmStoreError",
    "alembic_config",
    "body_hash",
    "check_transition",
    "diff_mappings",
    "is_transient",
    "json_safe",
    "mask_url",
    "normalize_url",
]
