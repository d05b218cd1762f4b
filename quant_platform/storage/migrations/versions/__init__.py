"""Warm-tier schema revisions, applied in order by `WarmStore.migrate()`."""
