"""Operations: notifications (`notify.py`), structured logs and their scan (`logs.py`), pipeline
metrics read from the Dagster instance (`metrics.py`), the daily report (`report.py`) and the
`quant-platform metrics | logscan | report` commands (`cli.py`); sensors in `ops/dagster/`."""
