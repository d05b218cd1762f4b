"""What a finished grid search found, in one small JSON document stored with its request
(`grid_requests.summary`), so `grid status`, the API and notifications answer without the cold tier.

Plain Python (no Dagster import).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quant_platform.grid.spec import GridSpec

HOLDOUT_STATS = ("total_return", "sharpe", "max_drawdown")


def grid_summary(
    spec: GridSpec,
    stopped: str,
    counts: Mapping[str, int],
    best_params: Mapping[str, Any] | None,
    best_objective: float | None,
    overfit: Mapping[str, Any],
    holdout: list[dict[str, Any]],
    walk: Mapping[str, Any] | None,
    activation: Mapping[str, Any],
) -> dict[str, Any]:
    """Counts (evaluated / planned), the stop reason, PBO and deflated Sharpe with the trials they
    used, the winner's out-of-sample figures (holdout or stitched walk-forward) and the activation."""
    out: dict[str, Any] = {
        "stopped": stopped,
        "evaluated": counts.get("evaluated"),
        "planned": counts.get("planned"),
        "valid": counts.get("valid"),
        "frequency": spec.frequency,
        "objective": spec.objective,
        "best_objective": best_objective,
        "best_params": dict(best_params) if best_params is not None else None,
        "pbo": overfit.get("pbo"),
        "deflated_sharpe": overfit.get("deflated_sharpe"),
        "n_trials": overfit.get("n_trials"),
        "trials_used": overfit.get("trials_used"),
        "activation": {
            "action": activation.get("action"),
            "reason": activation.get("reason"),
            "policy": activation.get("policy"),
            "version": activation.get("version"),
        },
    }
    if overfit.get("note"):
        out["overfitting_note"] = overfit["note"]
    if holdout:
        top = holdout[0]
        out["holdout"] = {
            "window": [d.isoformat() for d in spec.holdout] if spec.holdout else None,
            **{f"is_{k}": top.get(f"is_{k}") for k in HOLDOUT_STATS},
            **{f"oos_{k}": top.get(f"oos_{k}") for k in HOLDOUT_STATS},
        }
    if walk:
        out["walk_forward"] = {
            "folds": walk.get("folds_n"),
            "oos": dict(walk.get("oos") or {}),
            "per_fold": [
                {
                    "fold": f["fold"],
                    "out_of_sample": f["out_of_sample"],
                    "params": f["params"],
                    "is_sharpe": f.get("is_sharpe"),
                    "oos_sharpe": f.get("oos_sharpe"),
                }
                for f in walk.get("folds", [])
            ],
        }
    return out


def _num(value: Any, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def summary_rows(summary: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, text) lines of a summary for `grid status`; nothing before the search ended."""
    if not summary:
        return []
    act = summary.get("activation") or {}
    rows = [
        ("stopped", str(summary.get("stopped"))),
        ("evaluated / planned", f"{summary.get('evaluated')} / {summary.get('planned')}"),
        ("PBO", _num(summary.get("pbo"))),
        ("deflated Sharpe", f"{_num(summary.get('deflated_sharpe'))} (n_trials {summary.get('n_trials')})"),
    ]
    if summary.get("frequency", "1d") != "1d":
        rows.append(("frequency", str(summary["frequency"])))
    if summary.get("holdout"):
        h = summary["holdout"]
        text = f"sharpe in-sample {_num(h.get('is_sharpe'))}, out-of-sample {_num(h.get('oos_sharpe'))}"
        rows.append(("holdout", text))
    if summary.get("walk_forward"):
        w = summary["walk_forward"]
        oos = w.get("oos") or {}
        sharpe, ret = _num(oos.get("sharpe")), _num(oos.get("total_return"), ".2%")
        rows.append(
            ("walk-forward", f"{w.get('folds')} folds, stitched out-of-sample sharpe {sharpe}, return {ret}")
        )
        for f in w.get("per_fold", []):
            ins, out = _num(f.get("is_sharpe")), _num(f.get("oos_sharpe"))
            rows.append(
                (f"  fold {f['fold']}", f"{f['params']}: sharpe in-sample {ins}, out-of-sample {out}")
            )
    rows.append(("activation", f"{act.get('action')} ({act.get('policy')}): {act.get('reason')}"))
    return rows
