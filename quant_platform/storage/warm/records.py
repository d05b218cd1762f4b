"""What the warm store hands out: frozen records (never ORM objects), plus the JSON and validation
helpers that make stored values identical on SQLite and MySQL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quant_platform.storage.warm.lifecycle import Status


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    broker: str | None
    currency: str
    initial_cash: float
    meta: dict[str, Any]
    created_at: dt.datetime
    current_capital: float = 0.0
    status: str = "active"
    allocated_capital: float = 0.0  # sum over the account's strategy allocations

    @property
    def free_capital(self) -> float:
        """Current capital not allocated to a strategy."""
        return self.current_capital - self.allocated_capital


@dataclass(frozen=True)
class CapitalChange:
    """One entry of an account's capital history (newest last)."""

    account: str
    previous: float
    capital: float
    reason: str
    created_at: dt.datetime

    @property
    def delta(self) -> float:
        return self.capital - self.previous


@dataclass(frozen=True)
class Allocation:
    """Capital of `account` given to `strategy`; `risk_limit` is the largest loss, as a share of it."""

    account: str
    strategy: str
    allocated_capital: float
    risk_limit: float
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class Strategy:
    id: int
    name: str
    description: str
    created_at: dt.datetime
    active_version: int | None


@dataclass(frozen=True)
class ParamVersion:
    strategy: str
    version: int
    params: dict[str, Any]
    note: str
    active: bool
    created_at: dt.datetime
    activated_at: dt.datetime | None


@dataclass(frozen=True)
class ParamDiff:
    """Differences between two parameter versions. Nested dicts are compared by dotted key (`risk.stop`)."""

    added: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class Backtest:
    id: int
    name: str
    strategy: str
    config: dict[str, Any]
    created_at: dt.datetime


@dataclass(frozen=True)
class BacktestRun:
    id: str
    strategy: str
    backtest_id: int | None
    grid_request_id: str | None
    param_version: int | None
    params: dict[str, Any]
    status: Status
    stats: dict[str, Any] | None
    data_version: str | None
    code_version: str | None
    result_hash: str | None
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


@dataclass(frozen=True)
class GridRequest:
    id: str
    idempotency_key: str
    body: dict[str, Any]
    body_hash: str
    status: Status
    progress: float
    best_params: dict[str, Any] | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    # Written when the search ends (`set_grid_summary`): counts, stop reason, PBO, deflated Sharpe,
    # out-of-sample figures and the activation decision; None before.
    summary: dict[str, Any] | None = None


@dataclass(frozen=True)
class PingResult:
    """What `quant-platform selfcheck` prints for the warm tier."""

    url: str
    backend: str
    server_version: str
    latency_ms: float
    schema_version: str | None
    head_version: str | None

    @property
    def up_to_date(self) -> bool:
        return self.schema_version is not None and self.schema_version == self.head_version


# ------------------------------------------------------------------------------------- JSON helpers


def json_safe(value: Any) -> Any:
    """Make `value` storable as strict JSON, with identical results on every engine.

    NaN and infinities become None, because MySQL rejects them and SQLite would store them as
    non-standard JSON. Numpy scalars become Python numbers and tuples/sets become lists. Datetimes
    become ISO strings, and dict keys become strings.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=repr)
    if isinstance(value, decimal.Decimal):
        return json_safe(float(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy / pandas scalars
        return json_safe(value.item())
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")


def _dumps(value: Any) -> str:
    return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False)


def body_hash(body: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no whitespace) of a request body."""
    canonical = json.dumps(json_safe(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def diff_mappings(old: Mapping[str, Any], new: Mapping[str, Any]) -> ParamDiff:
    a, b = _flatten(old), _flatten(new)
    return ParamDiff(
        added={k: b[k] for k in b.keys() - a.keys()},
        removed={k: a[k] for k in a.keys() - b.keys()},
        changed={k: (a[k], b[k]) for k in a.keys() & b.keys() if a[k] != b[k]},
    )


# ------------------------------------------------------------------------------------- validation

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _check_text(what: str, value: str, max_len: int) -> str:
    """Lengths are checked here because SQLite ignores VARCHAR limits that MySQL enforces.

    Edge whitespace is rejected because MySQL compares `'a' = 'a '` as equal, while SQLite does not.
    """
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > max_len:
        raise ValueError(f"{what} must be 1..{max_len} characters without edge whitespace, got {value!r}")
    return value


def _check_id(what: str, value: str) -> str:
    """Run ids end up in Redis channel names and URLs, so only a safe alphabet is allowed."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValueError(f"{what} must match {_ID_RE.pattern}, got {value!r}")
    return value


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class User:
    """A user of the HTTP API, without the password hash."""

    id: int
    username: str
    email: str | None
    role: str
    status: str
    failed_logins: int
    locked_until: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ApiKey:
    """An API key's public part: the secret is shown once at creation and stored only as a hash."""

    id: str
    username: str
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class BacktestRequest:
    """A run requested through the API and not yet launched (or launched at `launched_at`)."""

    run_id: str
    backtest_id: int
    requested_at: dt.datetime
    launched_at: dt.datetime | None


@dataclass(frozen=True)
class StoredResponse:
    """The first response to an idempotent POST."""

    request_hash: str
    status_code: int
    body: Any
    created_at: dt.datetime


@dataclass(frozen=True)
class ShareLink:
    """A read-only link to a run's report; valid until `expires_at` unless revoked."""

    id: str
    run_id: str
    user_id: int
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None

    def valid_at(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now
