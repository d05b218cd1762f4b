"""QA report metrics: the numbers behind the daily data-quality report.

`partition_metrics` turns one partition (clean rows, plus the quarantined rows from the split) into
tidy QA_METRICS rows (trade_date, table_name, metric, value). The detail functions it is built from
(`completeness_by_symbol`, `return_outliers`, `stale_runs`, `calendar_gaps`) return per-symbol frames
for drill-down. `qa_trend` pivots many partitions for trend tables and plots; the plots themselves
(PNG bytes, matplotlib imported only when one is drawn) are in `quant_platform.core.plots`.

Metric names (value is float64; counts are whole numbers):

| metric | meaning |
|---|---|
| rows, symbols | rows and distinct symbols in the partition |
| symbols_expected, symbols_missing | universe size and universe symbols without rows (with a universe) |
| completeness_mean, completeness_min | per-symbol rows present / expected (capped at 1) |
| symbols_incomplete | symbols with completeness below `incomplete_below` (0.95) |
| duplicates | rows whose key (symbol+ts or symbol+trade_date) repeats an earlier row |
| quarantined_rows, quarantined_share, quarantined.RULE | from the quarantined frame |
| return_outliers, return_outlier_max_abs_z | robust z-score (median/MAD) of change_rate above `outlier_z` |
| stale_runs, stale_symbols, stale_max_run | price (bars: close) unchanged for >= `stale_n` rows in a row |
| calendar_gaps, calendar_gap_max_seconds | trading-time holes longer than `gap_factor` x the interval |
| completeness[SYMBOL] | per symbol, only with `per_symbol=True` |
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from quant_platform.core.calendar import DateLike, get_calendar, to_date
from quant_platform.core.quality.kinds import KLINES, QUOTES, bar_freq, freq_minutes, key_columns, resolve
from quant_platform.core.schema import QA_METRICS

MAD_SCALE = 0.6744897501960817  # Phi^-1(0.75): makes MAD comparable to a standard deviation
MEAN_AD_SCALE = 1.2533141373155001  # sqrt(pi / 2), for the mean absolute deviation fallback


# --------------------------------------------------------------------------------------------------
# building blocks


def robust_zscore(values: Iterable[float]) -> np.ndarray:
    """(x - median) / (MAD / 0.6745); when MAD is 0 the mean absolute deviation * 1.2533 is used,
    and when that is 0 too (all values equal) every z is 0. NaN stays NaN."""
    x = np.asarray(values, dtype=float)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if not ok.any():
        return out
    med = np.median(x[ok])
    dev = np.abs(x[ok] - med)
    mad = np.median(dev)
    if mad > 0:
        out[ok] = MAD_SCALE * (x[ok] - med) / mad
        return out
    mean_ad = dev.mean()
    out[ok] = (x[ok] - med) / (MEAN_AD_SCALE * mean_ad) if mean_ad > 0 else 0.0
    return out


def _sorted_intraday(df: pd.DataFrame) -> pd.DataFrame:
    """`df` sorted by (symbol, ts) with a fresh index; a no-op check when it already is (clean rows
    from a split are). Sorts integer codes, not strings: much faster on millions of rows."""
    if len(df) < 2:
        return df.reset_index(drop=True)
    codes = pd.factorize(df["symbol"], sort=True)[0]
    t = pd.DatetimeIndex(df["ts"]).asi8
    dc, dt_ = np.diff(codes), np.diff(t)
    if ((dc > 0) | ((dc == 0) & (dt_ >= 0))).all():
        return df.reset_index(drop=True)
    return df.iloc[np.lexsort((t, codes))].reset_index(drop=True)


def _trading_seconds(
    ts: pd.Series, trade_date: DateLike, calendar: str
) -> tuple[np.ndarray, float, np.ndarray]:
    """Trading time elapsed since the open for each ts (lunch break collapsed), the session's total
    trading seconds, and whether each ts lies inside the session."""
    cal = get_calendar(calendar)
    intervals = cal.session(trade_date).intervals
    t = pd.DatetimeIndex(ts).as_unit("ms").asi8.astype(float) / 1000.0 if len(ts) else np.zeros(0)
    pos = np.zeros(len(t))
    inside = np.zeros(len(t), dtype=bool)
    total = 0.0
    for a, b in intervals:
        a_s, b_s = a.timestamp(), b.timestamp()
        pos += np.clip(t - a_s, 0.0, b_s - a_s)
        inside |= (t >= a_s) & (t <= b_s)
        total += b_s - a_s
    return pos, total, inside


def _infer_interval(pos: np.ndarray, symbols: np.ndarray) -> float:
    if len(pos) < 2:
        return 0.0
    same = symbols[1:] == symbols[:-1]
    diffs = np.diff(pos)[same]
    diffs = diffs[diffs > 0]
    return float(np.median(diffs)) if diffs.size else 0.0


def completeness_by_symbol(
    df: pd.DataFrame,
    kind: str,
    *,
    trade_date: DateLike,
    freq: str | None = None,
    universe: Iterable[str] | None = None,
    calendar: str = "XSHG",
    snapshot_seconds: float | None = None,
) -> pd.DataFrame:
    """Per symbol: rows present (distinct times inside the session), rows expected, completeness.

    Expected = session seconds / bar size for bars, / `snapshot_seconds` for quotes (inferred as the
    median spacing when None), 1 for klines. Universe symbols without rows appear with 0 present.
    """
    schema = resolve(kind, freq)
    cal = get_calendar(calendar)
    columns = ["symbol", "present", "expected", "completeness"]
    symbols = sorted(set(universe)) if universe is not None else []
    if not cal.is_session(trade_date):
        present = df.groupby("symbol").size() if len(df) else pd.Series(dtype="int64")
        out = pd.DataFrame(
            {"symbol": present.index.astype(str), "present": present.to_numpy(), "expected": 0}
        )
        out["completeness"] = np.where(out["present"] > 0, 1.0, np.nan)
        return out[columns]
    if schema.name == KLINES:
        present = df.groupby("symbol").size().clip(upper=1) if len(df) else pd.Series(dtype="int64")
        expected = 1.0
    else:
        d = _sorted_intraday(df)
        pos, total, inside = (
            _trading_seconds(d["ts"], trade_date, calendar) if len(d) else (np.zeros(0), 0.0, [])
        )
        bar = bar_freq(schema)
        if bar is not None:
            step = freq_minutes(bar) * 60.0
        elif snapshot_seconds:
            step = float(snapshot_seconds)
        else:
            step = _infer_interval(pos, d["symbol"].to_numpy()) if len(d) else 0.0
        if not len(d):
            total = sum((b - a).total_seconds() for a, b in cal.session(trade_date).intervals)
        expected = float(total // step) if step else np.nan
        inner = d.loc[np.asarray(inside, dtype=bool), ["symbol", "ts"]] if len(d) else d
        present = inner.drop_duplicates().groupby("symbol").size() if len(inner) else pd.Series(dtype="int64")
    present.index = present.index.astype(str)
    all_symbols = sorted(set(present.index) | set(symbols))
    present = present.reindex(all_symbols, fill_value=0).astype("int64")
    out = pd.DataFrame({"symbol": all_symbols, "present": present.to_numpy(), "expected": expected})
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.minimum(out["present"] / out["expected"], 1.0)
    out["completeness"] = np.where(out["present"] == 0, 0.0, ratio)  # no rows: 0 even if spacing unknown
    return out[columns].reset_index(drop=True)


def return_outliers(df: pd.DataFrame, kind: str, *, freq: str | None = None, z: float = 5.0) -> pd.DataFrame:
    """Rows whose change_rate has |robust z| > `z`.

    klines: cross-section of the day's change_rate; quotes: cross-section of each symbol's last
    price / prev_close - 1; bars: within each symbol's day, excluding its first bar (which carries the
    overnight gap). Returns symbol, ts (bars only), change_rate, z.
    """
    schema = resolve(kind, freq)
    cols = ["symbol", "ts", "change_rate", "z"]
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("symbol", "ts") else float) for c in cols})
    if schema.name == KLINES:
        frame = df[["symbol", "change_rate"]].assign(ts=pd.NaT)
        frame["z"] = robust_zscore(frame["change_rate"])
    elif schema.name == QUOTES:
        last = _sorted_intraday(df).groupby("symbol", sort=True).tail(1)
        frame = pd.DataFrame(
            {
                "symbol": last["symbol"],
                "ts": last["ts"],
                "change_rate": last["price"] / last["prev_close"] - 1,
            }
        )
        frame["z"] = robust_zscore(frame["change_rate"])
    else:
        d = _sorted_intraday(df)
        first = ~d["symbol"].duplicated()
        frame = d.loc[~first, ["symbol", "ts", "change_rate"]].copy()
        frame["z"] = frame.groupby("symbol", sort=False)["change_rate"].transform(robust_zscore)
    hits = frame.loc[np.abs(frame["z"]) > z, cols]
    return hits.sort_values("z", key=np.abs, ascending=False).reset_index(drop=True)


def stale_runs(df: pd.DataFrame, kind: str, *, freq: str | None = None, n: int = 20) -> pd.DataFrame:
    """Runs of >= `n` consecutive rows with an unchanged price (quotes: price, bars: close).

    Returns symbol, start, end, length, price; empty for klines (one row per symbol and day).
    """
    schema = resolve(kind, freq)
    cols = ["symbol", "start", "end", "length", "price"]
    if df.empty or schema.name == KLINES:
        return pd.DataFrame(columns=cols)
    col = "price" if schema.name == QUOTES else "close"
    d = _sorted_intraday(df)
    sym = d["symbol"].to_numpy()
    px = d[col].to_numpy(dtype=float)
    new_run = np.ones(len(d), dtype=bool)
    new_run[1:] = (sym[1:] != sym[:-1]) | (px[1:] != px[:-1])
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    lengths = np.bincount(run_id)
    long = np.flatnonzero(lengths >= n)
    if long.size == 0:
        return pd.DataFrame(columns=cols)
    s = starts[long]
    e = s + lengths[long] - 1
    return pd.DataFrame(
        {
            "symbol": sym[s],
            "start": d["ts"].iloc[s].reset_index(drop=True),
            "end": d["ts"].iloc[e].reset_index(drop=True),
            "length": lengths[long],
            "price": px[s],
        }
    )


def calendar_gaps(
    df: pd.DataFrame,
    kind: str,
    *,
    trade_date: DateLike,
    freq: str | None = None,
    calendar: str = "XSHG",
    snapshot_seconds: float | None = None,
    gap_factor: float | None = None,
) -> pd.DataFrame:
    """Holes in each symbol's intraday series, measured in trading time (the lunch break does not count).

    A hole is a stretch between consecutive rows, or between the open and the first row, or the last
    row and the close, longer than `gap_factor` x the interval (bars: bar size, default factor 1.5 so
    one missing bar counts; quotes: `snapshot_seconds` or the inferred spacing, default factor 5).
    Returns symbol, after (ts before the hole, NaT at the open), before (ts after it, NaT at the
    close), seconds (trading seconds).
    """
    schema = resolve(kind, freq)
    cols = ["symbol", "after", "before", "seconds"]
    if df.empty or schema.name == KLINES or not get_calendar(calendar).is_session(trade_date):
        return pd.DataFrame(columns=cols)
    d = _sorted_intraday(df)
    pos, total, inside = _trading_seconds(d["ts"], trade_date, calendar)
    d, pos = d.loc[inside].reset_index(drop=True), pos[inside]
    if d.empty:
        return pd.DataFrame(columns=cols)
    sym = d["symbol"].to_numpy()
    bar = bar_freq(schema)
    step = freq_minutes(bar) * 60.0 if bar else (snapshot_seconds or _infer_interval(pos, sym))
    factor = gap_factor if gap_factor is not None else (1.5 if bar else 5.0)
    limit = factor * step if step else np.inf
    ts = d["ts"]
    rows = []
    first = np.flatnonzero(np.r_[True, sym[1:] != sym[:-1]])
    last = np.r_[first[1:] - 1, len(d) - 1]
    for a, b in zip(first, last, strict=True):
        p = pos[a : b + 1]
        edges = np.concatenate([[0.0], p, [total]])
        diffs = np.diff(edges)
        for k in np.flatnonzero(diffs > limit):
            after = ts.iloc[a + k - 1] if k > 0 else pd.NaT
            before = ts.iloc[a + k] if k <= b - a else pd.NaT
            rows.append((sym[a], after, before, float(diffs[k])))
    return pd.DataFrame(rows, columns=cols)


def kline_calendar_gaps(
    klines: pd.DataFrame, *, start: DateLike, end: DateLike, calendar: str = "XSHG", table_name: str = KLINES
) -> pd.DataFrame:
    """QA_METRICS rows `calendar_gaps` per session of [start, end]: symbols listed before and after that
    session but missing on it (a hole in the daily series, e.g. a suspension or a lost partition)."""
    cal = get_calendar(calendar)
    sessions = cal.sessions(start, end)
    if not sessions:
        return QA_METRICS.empty()
    days = pd.to_datetime(klines["trade_date"]).dt.date if len(klines) else pd.Series(dtype=object)
    by_symbol: dict[str, set] = {}
    for s, d in zip(klines["symbol"].astype(str) if len(klines) else [], days, strict=True):
        by_symbol.setdefault(s, set()).add(d)
    counts = dict.fromkeys(sessions, 0)
    for present in by_symbol.values():
        lo, hi = min(present), max(present)
        for d in sessions:
            if lo < d < hi and d not in present:
                counts[d] += 1
    return _tidy([(d, table_name, "calendar_gaps", float(v)) for d, v in counts.items()])


def _tidy(rows: Sequence[tuple]) -> pd.DataFrame:
    if not rows:
        return QA_METRICS.empty()
    out = pd.DataFrame(rows, columns=["trade_date", "table_name", "metric", "value"])
    out["trade_date"] = pd.to_datetime([pd.Timestamp(to_date(d)) for d in out["trade_date"]]).astype(
        "datetime64[s]"
    )
    out["value"] = out["value"].astype(float)
    return QA_METRICS.conform(out)


# --------------------------------------------------------------------------------------------------
# one partition


def partition_metrics(
    df: pd.DataFrame,
    kind: str,
    *,
    trade_date: DateLike,
    freq: str | None = None,
    quarantined: pd.DataFrame | None = None,
    universe: Iterable[str] | None = None,
    calendar: str = "XSHG",
    snapshot_seconds: float | None = None,
    stale_n: int = 20,
    outlier_z: float = 5.0,
    gap_factor: float | None = None,
    incomplete_below: float = 0.95,
    per_symbol: bool = False,
) -> pd.DataFrame:
    """QA_METRICS rows for one partition. Pass the clean rows as `df` and the split's quarantined rows
    as `quarantined` (duplicates are then counted in `quarantined.duplicate`; `duplicates` counts the
    ones still in `df`)."""
    schema = resolve(kind, freq)
    table = schema.name
    day = to_date(trade_date)
    uni = sorted(set(universe)) if universe is not None else None
    if table != KLINES:
        df = _sorted_intraday(df)  # once, so the detail functions below find it sorted
    symbols = [str(s) for s in pd.unique(df["symbol"].dropna())] if len(df) else []
    m: list[tuple[str, float]] = [("rows", len(df)), ("symbols", len(symbols))]
    if uni is not None:
        present = set(symbols)
        m += [("symbols_expected", len(uni)), ("symbols_missing", sum(s not in present for s in uni))]

    comp = completeness_by_symbol(
        df, table, trade_date=day, universe=uni, calendar=calendar, snapshot_seconds=snapshot_seconds
    )
    c = comp["completeness"]
    m += [
        ("completeness_mean", float(c.mean()) if c.notna().any() else np.nan),
        ("completeness_min", float(c.min()) if c.notna().any() else np.nan),
        ("symbols_incomplete", int((c < incomplete_below).sum())),
    ]
    keys = key_columns(schema)
    m.append(("duplicates", int(df.duplicated(keys).sum()) if len(df) else 0))

    nq = 0 if quarantined is None else len(quarantined)
    total = len(df) + nq
    m += [("quarantined_rows", nq), ("quarantined_share", nq / total if total else 0.0)]
    if nq and "rule" in quarantined:
        m += [
            (f"quarantined.{r}", int(v)) for r, v in quarantined["rule"].value_counts().sort_index().items()
        ]

    out = return_outliers(df, table, z=outlier_z)
    m += [
        ("return_outliers", len(out)),
        ("return_outlier_max_abs_z", float(out["z"].abs().max()) if len(out) else 0.0),
    ]
    if table != KLINES:
        runs = stale_runs(df, table, n=stale_n)
        m += [
            ("stale_runs", len(runs)),
            ("stale_symbols", runs["symbol"].nunique() if len(runs) else 0),
            ("stale_max_run", int(runs["length"].max()) if len(runs) else 0),
        ]
        gaps = calendar_gaps(
            df,
            table,
            trade_date=day,
            calendar=calendar,
            snapshot_seconds=snapshot_seconds,
            gap_factor=gap_factor,
        )
        m += [
            ("calendar_gaps", len(gaps)),
            ("calendar_gap_max_seconds", float(gaps["seconds"].max()) if len(gaps) else 0.0),
        ]
    if per_symbol:
        m += [(f"completeness[{s}]", v) for s, v in zip(comp["symbol"], comp["completeness"], strict=True)]
    return _tidy([(day, table, name, float(v)) for name, v in m])


# --------------------------------------------------------------------------------------------------
# rendering


def _fmt_value(v: float) -> str:
    if pd.isna(v):
        return ""
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


def markdown_table(frame: pd.DataFrame, *, index: bool = True) -> str:
    """A GitHub markdown table of `frame` (numbers formatted compactly; no extra dependency)."""
    f = frame.reset_index() if index else frame
    header = [str(c) for c in f.columns]
    numeric = [pd.api.types.is_numeric_dtype(f[c]) for c in f.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in f.itertuples(index=False, name=None):
        cells = [
            _fmt_value(v) if n and not isinstance(v, str) else str(v)
            for v, n in zip(row, numeric, strict=True)
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def summary_markdown(metrics: pd.DataFrame, *, include_per_symbol: bool = False) -> str:
    """Markdown summary of QA_METRICS rows: one row per metric, one column per (table, trade_date)."""
    if metrics.empty:
        return "_no QA metrics_"
    m = metrics if include_per_symbol else metrics[~metrics["metric"].str.contains("[", regex=False)]
    m = m.assign(column=m["table_name"] + " " + pd.to_datetime(m["trade_date"]).dt.strftime("%Y-%m-%d"))
    order = list(dict.fromkeys(m["metric"]))
    wide = m.pivot_table(index="metric", columns="column", values="value", aggfunc="last", dropna=False)
    wide = wide.reindex([o for o in order if o in wide.index])
    wide.columns.name = None
    return markdown_table(wide)


def qa_trend(
    metrics: pd.DataFrame, *, table_name: str | None = None, metric_names: Iterable[str] | None = None
) -> pd.DataFrame:
    """QA_METRICS rows across partitions -> one row per trade_date, one column per metric (prefixed
    with 'table.' when several tables are included)."""
    m = metrics
    names = list(metric_names) if metric_names is not None else None
    if table_name is not None:
        m = m[m["table_name"] == table_name]
    if names is not None:
        m = m[m["metric"].isin(names)]
    m = m[~m["metric"].str.contains("[", regex=False)]
    if m.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="trade_date"))
    several = m["table_name"].nunique() > 1
    col = m["table_name"] + "." + m["metric"] if several else m["metric"]
    wide = m.assign(column=col).pivot_table(
        index="trade_date", columns="column", values="value", aggfunc="last"
    )
    wide.columns.name = None
    wide.index = pd.DatetimeIndex(wide.index, name="trade_date")
    order = list(dict.fromkeys(col))  # first appearance: the order partition_metrics writes them in
    if names is not None:
        order = sorted(order, key=lambda c: names.index(c.split(".", 1)[1] if several else c))
    return wide[order].sort_index()


def trend_markdown(trend: pd.DataFrame, *, columns: Sequence[str] | None = None) -> str:
    if trend.empty:
        return "_no QA trend_"
    t = trend[list(columns)] if columns else trend
    t = t.copy()
    t.index = t.index.strftime("%Y-%m-%d")
    return markdown_table(t)
