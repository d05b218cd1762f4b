"""Every plot of the platform: PNG bytes rendered off-screen, embedded in Markdown as data URIs.

matplotlib is imported inside the functions: code locations are re-imported often and must not pay
for it unless a plot is really drawn. Two renderers, as the plots were written:

- pyplot on the Agg backend (`_pyplot`, `_pyplot_png`): the backtest equity/drawdown plot and the
  grid-search heatmap;
- a bare `matplotlib.figure.Figure` (`_figure`, `_figure_png`; no pyplot, no global state, safe in
  worker threads): the QA report's trend, completeness and quarantine plots.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from quant_platform.grid.spec import GridSpec


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pyplot_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _figure(width: float = 8.0, height: float = 4.0):
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in worker threads

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def markdown_image(png: bytes, alt: str = "plot") -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


# --------------------------------------------------------------------------------------------------
# backtests


def drawdown(equity: pd.Series) -> pd.Series:
    """Fractional drawdown from the running peak (0 at a new high, -0.2 = 20% below it)."""
    return equity / equity.cummax() - 1.0


def equity_drawdown_png(equity: pd.Series, title: str = "") -> bytes:
    fig, axes = _pyplot().subplots(2, 1, figsize=(8, 2.6 * 2), sharex=True, squeeze=False)
    ax_eq, ax_dd = axes[0][0], axes[1][0]
    ax_eq.plot(equity.index, equity.values, color="#1f77b4", lw=1.4)
    ax_eq.set_ylabel("equity")
    ax_eq.set_title(title, fontsize=10)
    ax_eq.grid(alpha=0.3)
    dd = drawdown(equity)
    ax_dd.fill_between(dd.index, dd.values, 0.0, color="#d62728", alpha=0.4)
    ax_dd.set_ylabel("drawdown")
    ax_dd.grid(alpha=0.3)
    return _pyplot_png(fig)


def compare_png(growth: pd.DataFrame, drawdowns: pd.DataFrame, title: str = "") -> bytes:
    """Several runs overlaid on one time axis: growth of 1 above, drawdown below (one colour per run).
    Columns are the runs' labels; gaps (NaN) are where a run has no data."""
    from matplotlib.figure import Figure  # no pyplot: no global state

    fig = Figure(figsize=(9.0, 6.0))
    ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    for i, label in enumerate(growth.columns):
        color = f"C{i % 10}"
        ax_eq.plot(growth.index, growth[label].to_numpy(float), color=color, lw=1.3, label=label)
        ax_dd.plot(drawdowns.index, drawdowns[label].to_numpy(float), color=color, lw=1.0)
    ax_eq.axhline(1.0, color="#888888", lw=0.7, ls="--")
    ax_eq.set_ylabel("growth of 1")
    ax_eq.set_title(title, fontsize=10)
    ax_eq.legend(loc="best", fontsize=7)
    ax_eq.grid(alpha=0.3)
    ax_dd.set_ylabel("drawdown")
    ax_dd.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _figure_png(fig)


# --------------------------------------------------------------------------------------------------
# grid search


def heatmap_axes(spec: GridSpec) -> list[str]:
    """The (up to) two grid parameters a heatmap shows: the first ones with more than one value."""
    return [k for k, v in spec.grid.items() if len(v) > 1][:2]


def heatmap_png(ranked: pd.DataFrame, spec: GridSpec, title: str = "") -> bytes | None:
    """Objective over two grid parameters (best over the others), or over one as a line; None if the
    grid has no varying parameter or nothing was evaluated."""
    axes = heatmap_axes(spec)
    if not axes or ranked.empty:
        return None
    plt = _pyplot()

    frame = pd.DataFrame([dict(p) for p in ranked["params"]])
    frame["objective"] = ranked["objective"].astype(float).to_numpy()
    reducer = "max" if spec.direction == "max" else "min"
    label = f"{spec.objective} (mean over symbols)"
    if len(axes) == 1:
        x = axes[0]
        line = frame.groupby(x)["objective"].agg(reducer).reindex(spec.grid[x])
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.plot([str(v) for v in line.index], line.to_numpy(), marker="o")
        ax.set_xlabel(x)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    else:
        y, x = axes
        table = frame.pivot_table(index=y, columns=x, values="objective", aggfunc=reducer)
        table = table.reindex(index=spec.grid[y], columns=spec.grid[x])
        values = table.to_numpy(dtype=float)
        width = min(12.0, max(6.0, 2.5 + 0.45 * len(table.columns)))
        fig, ax = plt.subplots(figsize=(width, min(9.0, max(4.0, 2 + 0.35 * len(table)))))
        cmap = plt.get_cmap("viridis" if spec.direction == "max" else "viridis_r").with_extremes(
            bad="#dddddd"
        )
        image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", origin="lower", cmap=cmap)
        fig.colorbar(image, ax=ax, label=label)
        ax.set_xticks(range(len(table.columns)), [str(v) for v in table.columns], rotation=90, fontsize=7)
        ax.set_yticks(range(len(table.index)), [str(v) for v in table.index], fontsize=7)
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if np.isfinite(values).any():
            flat = np.nanargmax(values) if spec.direction == "max" else np.nanargmin(values)
            r, c = np.unravel_index(flat, values.shape)
            ax.scatter([c], [r], marker="*", s=160, color="#d62728", label="best")
            ax.legend(loc="upper right", fontsize=7)
        if values.size <= 144:
            for (r, c), v in np.ndenumerate(values):
                if np.isfinite(v):
                    ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white")
    ax.set_title(title or f"{spec.strategy}: {label}", fontsize=10)
    return _pyplot_png(fig)


# --------------------------------------------------------------------------------------------------
# QA report (`core.quality.report` computes the frames these draw)


def plot_trend(
    trend: pd.DataFrame, columns: Sequence[str] | None = None, *, title: str = "QA trend"
) -> bytes:
    """Line plot of trend columns over trade_date, PNG bytes."""
    fig, ax = _figure()
    cols = list(columns) if columns else list(trend.columns)
    for c in cols:
        ax.plot(trend.index, trend[c], marker="o", label=c)
    ax.set_title(title)
    ax.set_xlabel("trade_date")
    if cols:
        ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    return _figure_png(fig)


def plot_completeness(
    by_symbol: pd.DataFrame, *, lowest: int = 30, title: str = "Completeness by symbol"
) -> bytes:
    """Horizontal bars of the `lowest` completeness values from `completeness_by_symbol`, PNG bytes."""
    d = by_symbol.sort_values("completeness", na_position="first").head(lowest)
    fig, ax = _figure(8.0, max(2.0, 0.25 * len(d) + 1))
    ax.barh(d["symbol"].astype(str), d["completeness"].fillna(0.0))
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title(title)
    return _figure_png(fig)


def plot_quarantine(metrics: pd.DataFrame, *, title: str = "Quarantined rows by rule") -> bytes:
    """Bar chart of the `quarantined.RULE` metrics (summed over the given partitions), PNG bytes."""
    q = metrics[metrics["metric"].str.startswith("quarantined.")]
    counts = q.groupby("metric")["value"].sum().sort_values(ascending=False)
    fig, ax = _figure()
    ax.bar([m.removeprefix("quarantined.") for m in counts.index], counts.to_numpy())
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=45)
    return _figure_png(fig)


# --------------------------------------------------------------------------------------------------
# options (`quant_platform.options.qa` computes what these draw)


def iv_surface_png(greeks: pd.DataFrame, title: str = "Implied volatility") -> bytes | None:
    """The day's smiles (IV by strike, one line per expiry) next to the surface (strike x expiry heatmap),
    from the out-of-the-money leg of each strike (puts below the underlying, calls above). None when
    no row has an IV."""
    from matplotlib.figure import Figure

    g = greeks[np.isfinite(greeks["iv"].to_numpy(float))]
    if g.empty:
        return None
    otm = g[(g["kind"] == "put") == (g["strike"] < g["underlying_price"])]
    otm = otm if len(otm) else g
    fig = Figure(figsize=(11, 4))
    ax_smile, ax_surface = fig.subplots(1, 2)
    expiries = sorted(otm["expiry"].unique())
    for expiry in expiries:
        smile = otm[otm["expiry"] == expiry].sort_values("strike")
        ax_smile.plot(
            smile["strike"], smile["iv"], marker=".", lw=1.2, label=f"{pd.Timestamp(expiry):%Y-%m-%d}"
        )
    spot = float(otm["underlying_price"].median())
    ax_smile.axvline(spot, color="#888888", lw=0.8, ls="--")
    ax_smile.set_xlabel("strike")
    ax_smile.set_ylabel("implied vol")
    ax_smile.legend(fontsize=7, title="expiry", title_fontsize=7)
    ax_smile.grid(alpha=0.3)
    table = otm.pivot_table(index="expiry", columns="strike", values="iv", aggfunc="mean")
    image = ax_surface.imshow(
        np.ma.masked_invalid(table.to_numpy(float)), aspect="auto", origin="lower", cmap="viridis"
    )
    fig.colorbar(image, ax=ax_surface, label="implied vol")
    step = max(1, len(table.columns) // 12)
    ax_surface.set_xticks(
        range(0, len(table.columns), step), [f"{k:g}" for k in table.columns[::step]], fontsize=7
    )
    ax_surface.set_yticks(
        range(len(table.index)), [f"{pd.Timestamp(e):%Y-%m-%d}" for e in table.index], fontsize=7
    )
    ax_surface.set_xlabel("strike")
    ax_surface.set_ylabel("expiry")
    fig.suptitle(title, fontsize=10)
    return _figure_png(fig)
