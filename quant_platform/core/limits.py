"""Bounds on what a user can ask for: how many symbols, which days, how long a range.

One home, so the CLI, the client, grid search (and later the API) refuse the same requests with
the same words. A request outside a bound is a `ValueError` that says the bound and how to pass it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from quant_platform.core.calendar import DateLike, get_calendar, to_date

# Trading-day partitions start here (or at the calendar's first session, if later).
FIRST_PARTITION_DAY = dt.date(2020, 1, 2)
# Symbols in one request (a client read, a grid search): more is a whole-market job, not a request.
MAX_SYMBOLS = 10_000


class BoundsError(ValueError):
    """A request outside a bound; the message names the bound."""


def check_symbol_count(count: int, limit: int = MAX_SYMBOLS) -> None:
    if count > limit:
        raise BoundsError(f"at most {limit:,} symbols per request, got {count:,}")


def partition_span(calendar: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """First and last trading-day partition of `calendar`: from FIRST_PARTITION_DAY to today's session."""
    cal = get_calendar(calendar)
    first = max(FIRST_PARTITION_DAY, cal.first_session)
    return first, today or dt.date.today()


def check_window(
    start: DateLike, end: DateLike, calendar: str, *, today: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """(start, end) as dates, inside the calendar's partitions; BoundsError otherwise."""
    s, e = to_date(start), to_date(end)
    if e < s:
        raise BoundsError(f"end {e} is before start {s}")
    first, last = partition_span(calendar, today)
    if s < first:
        raise BoundsError(f"start {s} is before the first {calendar} trading-day partition {first}")
    if e > last:
        raise BoundsError(f"end {e} is after the last {calendar} trading-day partition {last} (today)")
    return s, e


def check_range_length(days: Sequence[dt.date], limit: int, *, flag: str = "--allow-long-range") -> None:
    """A range of more than `limit` trading days needs an explicit `flag`."""
    if len(days) > limit:
        raise BoundsError(
            f"{len(days):,} trading days ({days[0]} .. {days[-1]}) is more than {limit:,} "
            f"(QP_MAX_RANGE_DAYS); pass {flag} if you mean it"
        )


# Trade records (`Client.record_trades`, `trades`, `trade_stats`): a batch is a day's or an import's
# fills, not a whole history at once; a query names a handful of accounts and at most ten years.
MAX_TRADES_PER_BATCH = 1_000_000
MAX_ACCOUNTS = 100
MAX_TRADE_RANGE_DAYS = 3660


def check_count(what: str, count: int, limit: int) -> None:
    """At most `limit` items of `what` in one request; BoundsError otherwise."""
    if count > limit:
        raise BoundsError(f"at most {limit:,} {what} per request, got {count:,}")


def check_calendar_range(start: DateLike, end: DateLike, limit_days: int) -> tuple[dt.date, dt.date]:
    """(start, end) as dates, end not before start and at most `limit_days` calendar days apart."""
    s, e = to_date(start), to_date(end)
    if e < s:
        raise BoundsError(f"end {e} is before start {s}")
    if (e - s).days + 1 > limit_days:
        raise BoundsError(f"{s} .. {e} is longer than {limit_days:,} days; split the request")
    return s, e
