"""Research results people can compare and hand on: recorded runs side by side (`compare`), one
self-contained HTML report per run (`report`) and the signed tokens of its read-only share links
(`share`). Plain Python: no Dagster; plotly and matplotlib are imported inside the functions."""
