"""What the WarmStore section mixins rely on, declared once so each section module stands on its own.

WarmStore (store.py) composes the sections and implements these transaction helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")


class StoreSection:
    """Base of the WarmStore sections (accounts, strategies, runs, grid requests).

    The declarations below exist for type checkers only; at runtime WarmStore provides them.
    """

    if TYPE_CHECKING:

        def _run(self, fn: Callable[[Session], T], *, write: bool = True) -> T: ...

        def _create(
            self, create: Callable[[Session], T], get: Callable[[], T], exist_ok: bool, what: str
        ) -> T: ...
