"""Hot-store exceptions.

Their own module so that every store and the resilient wrapper can raise and catch them without
importing one another.
"""

from __future__ import annotations


class HotStoreError(Exception):
    """The hot store rejected an operation (e.g. out of memory, read-only replica)."""


class HotStoreUnavailable(HotStoreError):
    """The hot store could not be reached; the message names it (password masked)."""
