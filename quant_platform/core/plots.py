"""Plots for asset metadata: PNG bytes rendered off-screen, embedded in Markdown as data URIs.

matplotlib is imported inside the functions: code locations are re-imported often and must not pay
for it unless a plot is really drawn.
"""

from __future__ import annotations

import base64
import io

import pandas as pd


def _figure(rows: int = 1, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, 1, figsize=(8, height * rows), sharex=True, squeeze=False)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def drawdown(equity: pd.Series) -> pd.Series:
    """Fractional drawdown from the running peak (0 at a new high, -0.2 = 20% below it)."""
    return equity / equity.cummax() - 1.0


def equity_drawdown_png(equity: pd.Series, title: str = "") -> bytes:
    fig, axes = _figure(2, 2.6)
    ax_eq, ax_dd = axes[0][0], axes[1][0]
    ax_eq.plot(equity.index, equity.values, color="#1f77b4", lw=1.4)
    ax_eq.set_ylabel("equity")
    ax_eq.set_title(title, fontsize=10)
    ax_eq.grid(alpha=0.3)
    dd = drawdown(equity)
    ax_dd.fill_between(dd.index, dd.values, 0.0, color="#d62728", alpha=0.4)
    ax_dd.set_ylabel("drawdown")
    ax_dd.grid(alpha=0.3)
    return _png(fig)


def markdown_image(png: bytes, alt: str = "plot") -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
