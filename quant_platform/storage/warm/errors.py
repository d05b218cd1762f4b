"""Errors of the warm tier, and which database failures are worth a retry.

They live apart from the store so that callers (CLI, HTTP API, sensors) and every store section can
map and raise them without pulling in the engine or the ORM.
"""

from __future__ import annotations

from sqlalchemy import exc


class WarmStoreError(Exception):
    """Base of every error the warm store raises on purpose."""


class StoreUnavailable(WarmStoreError):
    """The database could not be reached or kept failing after retries; the message names the store."""


class NotFound(WarmStoreError, LookupError):
    pass


class AlreadyExists(WarmStoreError):
    pass


class IllegalTransition(WarmStoreError, ValueError):
    """A status change the run lifecycle does not allow (e.g. succeeded -> running)."""


class IdempotencyConflict(WarmStoreError):
    """The idempotency key was already used with a different request body."""


# ---------------------------------------------------------------------------------- transient errors

# MySQL/MariaDB client and server error codes that a retry can cure.
_MYSQL_TRANSIENT = {
    1040,  # too many connections
    1205,  # lock wait timeout exceeded
    1213,  # deadlock found
    2002,  # can't connect (socket)
    2003,  # can't connect (tcp)
    2006,  # server has gone away
    2013,  # lost connection during query
    2014,  # commands out of sync (connection left in a bad state)
    2055,  # lost connection (system error)
    4031,  # MariaDB: disconnected by the server because of inactivity
}


def is_transient(err: BaseException) -> bool:
    """True for database errors worth retrying: lost connections, deadlocks, lock waits, busy SQLite."""
    if not isinstance(err, exc.DBAPIError):
        return False
    if err.connection_invalidated:
        return True
    if not isinstance(err, (exc.OperationalError, exc.InterfaceError)):
        return False
    args = getattr(err.orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_TRANSIENT:
        return True
    message = str(err.orig).lower()
    return "database is locked" in message or "database is busy" in message


# CHECK constraint violations, which PyMySQL reports as OperationalError: bugs, not outages.
_MYSQL_CONSTRAINT = {3819, 4025}


def _is_constraint_violation(err: BaseException) -> bool:
    args = getattr(getattr(err, "orig", None), "args", ())
    return bool(args) and args[0] in _MYSQL_CONSTRAINT


def _is_missing_table(err: BaseException) -> bool:
    args = getattr(getattr(err, "orig", None), "args", ())
    return (bool(args) and args[0] == 1146) or "no such table" in str(getattr(err, "orig", err))


def _short(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


class CapitalExceeded(WarmStoreError, ValueError):
    """Allocations would exceed an account's current capital (or capital would drop below them)."""


class AccountNotActive(WarmStoreError, ValueError):
    """The account is inactive or suspended, and the operation needs an active one."""
