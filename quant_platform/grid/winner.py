"""Activating a grid search's winner as the strategy's parameter version, with the diff it makes.

Plain Python over the warm store (no Dagster import). A retried write finds its own version already
active and reports it instead of adding a second one.
"""

from __future__ import annotations

from typing import Any

from quant_platform.grid.spec import GridSpec
from quant_platform.storage.warm import NotFound, WarmStore, diff_mappings


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
