"""Activating a grid search's winner as the strategy's parameter version, with the diff it makes.

Activation is a decision (`decide`), not a side effect: with the default policy ``if-validated`` the
winner becomes active only when the search evaluated every planned combination, its objective is
finite and positive, and its deflated Sharpe ratio (over every trial evaluated) reaches
`DEFLATED_SHARPE_GATE`; ``best`` activates it whatever happened, ``never`` never does. A winner that
is not activated is saved as an inactive version with the reason (`save_inactive`) when the strategy
already has an active version.

Plain Python over the warm store (no Dagster import). A retried write finds its own version already
active and reports it instead of adding a second one.
"""

from __future__ import annotations

import math
from typing import Any

from quant_platform.grid.spec import GridSpec
from quant_platform.storage.warm import NotFound, WarmStore, diff_mappings

ACTIVATE_POLICIES = ("if-validated", "best", "never")
DEFAULT_ACTIVATE = "if-validated"
# Objectives whose best value must be > 0 to count as an edge (a Sharpe of -0.3 is not a winner).
POSITIVE_OBJECTIVES = {"sharpe": 0.0, "sortino": 0.0, "total_return": 0.0, "cagr": 0.0, "calmar": 0.0,
                       "profit_factor": 1.0}  # fmt: skip
COMPLETE = ("completed", "max_evals")  # every planned combination was evaluated
DEFLATED_SHARPE_GATE = 0.95  # the winner's deflated Sharpe ratio must reach this (when computed)


def decide(
    policy: str,
    *,
    stopped: str,
    objective: str,
    best: float | None,
    gates: dict[str, tuple[float | None, float]] | None = None,
) -> tuple[bool, str]:
    """(activate?, reason) for a finished search.

    `stopped` is the search's outcome (`progress.outcome`); `gates` maps a statistic's name to
    (its value, the minimum it needs), e.g. ``{"deflated_sharpe": (0.41, 0.95)}``; a gate whose value
    is None (not computed) does not block.
    """
    if policy not in ACTIVATE_POLICIES:
        raise ValueError(f"activate must be one of {ACTIVATE_POLICIES}, got {policy!r}")
    if best is None or not math.isfinite(best):
        return False, "no combination has a finite objective"
    if policy == "never":
        return False, "activation not requested (activate=never)"
    if policy == "best":
        return True, "activate=best"
    if stopped not in COMPLETE:
        return False, f"the search stopped early ({stopped}): not every planned combination was evaluated"
    floor = POSITIVE_OBJECTIVES.get(objective)
    if floor is not None and best <= floor:
        return False, f"best {objective} {best:.6g} is not above {floor:g}"
    for name, (value, minimum) in (gates or {}).items():
        if value is not None and not (math.isfinite(value) and value >= minimum):
            return False, f"{name} {value:.4g} is below the gate {minimum:g}"
    return True, "validated: every planned combination evaluated, objective and gates passed"


def save_inactive(
    warm: WarmStore, spec: GridSpec, request_id: str, best: dict[str, Any], value: float, reason: str
) -> dict:
    """Keep a winner that is not activated: an inactive version with the reason when the strategy
    already has an active version (a first version would become active by itself), else nothing."""
    out: dict[str, Any] = {"action": "not activated", "reason": reason, "version": None}
    warm.create_strategy(spec.strategy, exist_ok=True)
    try:
        active = warm.get_params(spec.strategy)
    except NotFound:
        out["note"] = "not saved: the strategy has no active version, a first version would become active"
        return out
    out["active_version"] = active.version
    note = f"grid search {request_id}: best {spec.objective} {value:.6g}, not activated: {reason}"
    saved = [
        v for v in warm.list_param_versions(spec.strategy) if v.note.startswith(f"grid search {request_id}:")
    ]
    if saved:  # a retried write
        out["version"] = saved[-1].version
    elif active.params != best:
        out["version"] = warm.add_params(spec.strategy, best, note=note, activate=False).version
    else:
        out["version"] = active.version
    return out


def activate_winner(
    warm: WarmStore, spec: GridSpec, request_id: str, best: dict[str, Any], value: float
) -> dict:
    """Store the winner as the strategy's new active parameter version, unless it already is active.

    Returns what happened (`activated` or `unchanged`), the version numbers and the diff against
    the previously active version.
    """
    warm.create_strategy(spec.strategy, exist_ok=True)
    try:
        previous = warm.get_params(spec.strategy)
    except NotFound:
        previous = None
    note = f"grid search {request_id}: best {spec.objective} {value:.6g}"
    if previous is not None and previous.note.startswith(f"grid search {request_id}:"):
        versions = [v for v in warm.list_param_versions(spec.strategy) if v.version < previous.version]
        before = max((v for v in versions if v.activated_at), key=lambda v: v.activated_at, default=None)
        current, previous, action = previous, before, "activated"  # a retried write: already saved
    elif previous is not None and previous.params == best:
        return {"action": "unchanged", "version": previous.version, "previous_version": previous.version,
                "added": {}, "removed": {}, "changed": {}}  # fmt: skip
    else:
        current, action = warm.add_params(spec.strategy, best, note=note, activate=True), "activated"
    diff = (
        warm.diff_params(spec.strategy, previous.version, current.version)
        if previous is not None
        else diff_mappings({}, current.params)
    )
    return {
        "action": action,
        "version": current.version,
        "previous_version": previous.version if previous is not None else None,
        "added": diff.added,
        "removed": diff.removed,
        "changed": {k: list(v) for k, v in diff.changed.items()},
    }
