"""Progress, early stop and the outcome of a grid search, as arithmetic on finished batches.

Plain Python (no Dagster import) so it has unit tests of its own; the ops in `grid.dagster.ops`
feed it what the run's event log says about finished batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from quant_platform.grid.evaluate import better, stalled_batches

# Evaluations take progress to 95; writing the results and activating the winner to 100.
EVALUATED_PROGRESS = 95.0


def batch_progress(batches_done: int, batches: int) -> float:
    """Progress (0..EVALUATED_PROGRESS) after `batches_done` of `batches` evaluated."""
    return round(EVALUATED_PROGRESS * min(1.0, batches_done / max(1, batches)), 2)


def best_so_far(
    history: Iterable[tuple[float | None, dict[str, Any] | None]],
    current: tuple[dict[str, Any] | None, float | None],
    direction: str,
) -> tuple[dict[str, Any] | None, float | None]:
    """(params, objective) of the best of `current` and the finished batches' (objective, params)."""
    best = current
    for value, params in history:
        if value is not None and better(value, best[1], direction):
            best = (params, value)
    return best


def should_stop_early(
    objectives: Sequence[float | None], early_stop: int | None, direction: str
) -> int | None:
    """The number of batches without improvement when that reaches `early_stop`, else None."""
    if early_stop is None:
        return None
    stalled = stalled_batches(objectives, direction)
    return stalled if stalled >= early_stop else None


def outcome(stop_reasons: Sequence[str | None], planned: int, valid: int) -> str:
    """Why a search ended: the first batch's stop reason, else `max_evals` or `completed`."""
    reasons = [r for r in stop_reasons if r]
    if reasons:
        return reasons[0]
    return "max_evals" if planned < valid else "completed"
