"""Store addresses as resources receive them: an `EnvVar` when set in the environment, else the default.

A resource's config is stored in the Dagster instance (run config, job snapshots); an `EnvVar` is
stored as the variable's name and read when a run starts, so a password in a URL never lands there.
"""

from __future__ import annotations

import dagster as dg

from quant_platform.settings import settings


def store_address(variable: str, embedded_default: str) -> str | dg.EnvVar:
    """`dg.EnvVar(variable)` when the variable is set, else the embedded default (no secret in it)."""
    return dg.EnvVar(variable) if variable in settings().given else embedded_default
