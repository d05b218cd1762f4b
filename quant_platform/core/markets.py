"""Market conventions that depend on the symbol: board price limits and limit prices."""

from __future__ import annotations

import numpy as np

MAIN_BOARD_LIMIT = 0.10
GROWTH_BOARD_LIMIT = 0.20  # ChiNext (300/301) and STAR (688/689)
ST_LIMIT = 0.05


def price_limit(symbol: str) -> float:
    """Daily price-limit fraction of an A-share symbol ('600000.SH' -> 0.10, '300750.SZ' -> 0.20).

    Symbols of other markets (no '.SH'/'.SZ'/'.BJ' suffix) are unlimited: returns inf.
    """
    code, _, exchange = symbol.partition(".")
    if exchange not in ("SH", "SZ", "BJ"):
        return float("inf")
    if exchange == "BJ":
        return 0.30
    if code.startswith(("300", "301", "688", "689")):
        return GROWTH_BOARD_LIMIT
    return MAIN_BOARD_LIMIT


def limit_prices(prev_close: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exchange limit-up / limit-down prices: prev_close * (1 +- limit), rounded half-up to the cent.

    Unlimited symbols (limit = inf) get (inf, 0).
    """
    prev_close = np.asarray(prev_close, dtype=float)
    limits = np.asarray(limits, dtype=float)
    finite = np.isfinite(limits)
    safe = np.where(finite, limits, 0.0)
    up = np.floor(prev_close * (1 + safe) * 100 + 0.5 + 1e-6) / 100
    down = np.floor(prev_close * (1 - safe) * 100 + 0.5 + 1e-6) / 100
    return np.where(finite, up, np.inf), np.where(finite, down, 0.0)
