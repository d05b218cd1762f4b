"""Structured logs: `QP_LOG_FORMAT=json` turns every process's log lines into JSON lines, and `scan`
summarises errors and warnings of log files (`quant-platform logscan`).

One JSON object per line, always with these keys (then any extras):
`time` (ISO 8601, UTC), `level`, `logger`, `run_id`, `partition`, `message`; Dagster's own records
add `step` and `event` (the Dagster event type), exceptions `exception` (the formatted traceback).

`configure(fmt)` installs it on the root logger and on Dagster's `dagster` logger (which has its own
coloured handler); `ops/dagster/loggers.py` gives runs the same format through the job loggers.
Rendering is structlog's (`ProcessorFormatter` over standard `logging` records), so libraries that
log through `logging` (uvicorn, Dagster, apprise) come out in the same shape. No Dagster import.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

TEXT, JSON = "text", "json"
FIELDS = ("time", "level", "logger", "run_id", "partition", "message")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers whose INFO lines are ours to show; everything else (alembic, great_expectations, httpx...)
# speaks from WARNING up.
OWN_LOGGERS = ("quant_platform", "dagster", "uvicorn")

_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("qp_run_id", default=None)
_partition: contextvars.ContextVar[str | None] = contextvars.ContextVar("qp_partition", default=None)


@contextlib.contextmanager
def log_context(run_id: str | None = None, partition: str | None = None) -> Iterator[None]:
    """Lines logged inside carry this run id / partition (when the record has none of its own)."""
    tokens = (_run_id.set(run_id), _partition.set(partition))
    try:
        yield
    finally:
        _run_id.reset(tokens[0])
        _partition.reset(tokens[1])


def _partition_of(tags) -> str | None:
    start = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_end")
    if not start:
        return None
    return start if start == end or not end else f"{start} .. {end}"


def _fields(logger, method, event_dict: dict) -> dict:
    """structlog processor: the record -> our keys, in our order."""
    record: logging.LogRecord | None = event_dict.get("_record")
    meta = getattr(record, "dagster_meta", None) or {}
    message = meta.get("orig_message") if meta else None
    if message is None:
        message = event_dict.get("event")
    out = {
        "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        if record is not None
        else dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "level": (record.levelname if record is not None else event_dict.get("level", "info")).lower(),
        "logger": record.name if record is not None else event_dict.get("logger"),
        "run_id": meta.get("run_id") or _run_id.get(),
        "partition": _partition_of(meta.get("job_tags") or {}) or _partition.get(),
        "message": str(message),
    }
    if meta.get("step_key"):
        out["step"] = meta["step_key"]
    event = meta.get("dagster_event")
    if event is not None:
        out["event"] = getattr(event, "event_type_value", None)
    if event_dict.get("exception"):
        out["exception"] = event_dict["exception"]
    return out


def json_formatter() -> logging.Formatter:
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.processors.format_exc_info],
        processors=[_fields, structlog.processors.JSONRenderer(default=str, ensure_ascii=False)],
        pass_foreign_args=False,
    )


def formatter(fmt: str) -> logging.Formatter:
    return json_formatter() if fmt == JSON else logging.Formatter(TEXT_FORMAT)


def configure(fmt: str, level: int = logging.INFO, stream=None, file: Path | None = None) -> None:
    """Send the root logger (and Dagster's `dagster` logger) to `stream` (stderr) in `fmt`; with
    `file`, also append JSON lines there (what `logscan` reads). Idempotent."""
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    handlers[0].setFormatter(formatter(fmt))
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            to_file = logging.handlers.RotatingFileHandler(file, maxBytes=20 << 20, backupCount=5)
            to_file.setFormatter(json_formatter())
            handlers.append(to_file)
        except OSError:  # a read-only home must not stop a command
            pass
    for handler in handlers:
        handler._qp = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_qp", False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if fmt == JSON:
        logging.captureWarnings(True)  # warnings.warn(...) would print free text on stderr
        dagster = logging.getLogger("dagster")  # Dagster installs a coloured handler on it
        for old in list(dagster.handlers):
            dagster.removeHandler(old)
        dagster.propagate = True


# --------------------------------------------------------------------------------------------- scan

_LEVEL = re.compile(r"\b(CRITICAL|ERROR|WARNING|WARN)\b")
_TEXT_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?: ?[+-]\d{2}:?\d{2}|Z)?)")
_VOLATILE = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27,}|\b[0-9a-f]{12,}\b|\d+(\.\d+)?")


@dataclass
class Kind:
    level: str
    logger: str
    kind: str
    count: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    example: str = ""
    runs: set[str] = field(default_factory=set)


def kind_of(message: str, exception: str | None = None) -> str:
    """What groups lines: the exception type when there is one, else the message with numbers, ids
    and hashes replaced by `#` (cut at 100 characters)."""
    if exception:
        last = exception.strip().splitlines()[-1]
        return last.split(":", 1)[0].strip()[:100]
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return _VOLATILE.sub("#", first)[:100]


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace(",", ".").replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse_line(line: str) -> dict | None:
    """A JSON log line as it is; a text line as {time, level, logger, message} when it says ERROR or
    WARNING; None otherwise."""
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return record
    level = _LEVEL.search(line)
    if level is None:
        return None
    time = _TEXT_TIME.match(line)
    return {
        "time": time.group(1) if time else None,
        "level": level.group(1).lower().replace("warn", "warning").replace("warninging", "warning"),
        "logger": "-",
        "message": line[level.end() :].strip(" -:") or line,
    }


def scan(lines: Iterable[str], since: dt.datetime | None = None) -> list[Kind]:
    """Errors and warnings of `lines` grouped by (level, logger, kind), most frequent first."""
    kinds: dict[tuple[str, str, str], Kind] = {}
    for line in lines:
        record = parse_line(line)
        if record is None:
            continue
        level = str(record.get("level", "")).lower()
        if level in ("warn",):
            level = "warning"
        if level == "critical":
            level = "error"
        if level not in ("error", "warning"):
            continue
        when = _parse_time(record.get("time"))
        if since is not None and when is not None and when < since:
            continue
        message = str(record.get("message", ""))
        key = (level, str(record.get("logger") or "-"), kind_of(message, record.get("exception")))
        k = kinds.setdefault(
            key, Kind(*key, example=message.strip().splitlines()[0][:200] if message else "")
        )
        k.count += 1
        if when is not None:
            k.first = when if k.first is None or when < k.first else k.first
            k.last = when if k.last is None or when > k.last else k.last
        if record.get("run_id"):
            k.runs.add(str(record["run_id"]))
    return sorted(kinds.values(), key=lambda k: (k.level != "error", -k.count, k.kind))


def parse_since(text: str) -> dt.timedelta:
    """`90s`, `15m`, `24h`, `7d` -> a timedelta (ValueError otherwise)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text or "")
    if not m:
        raise ValueError(f"--since must look like 30m, 24h or 7d, got {text!r}")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
    return dt.timedelta(**{unit: float(m.group(1))})


def read_lines(paths: Iterable[Path]) -> Iterator[str]:
    """Lines of every file (folders: their *.log, *.jsonl, *.json files, rotated ones included)."""
    for path in paths:
        files = (
            sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and re.search(r"\.(log|jsonl|json)(\.\d+)?$", p.name)
            )
            if path.is_dir()
            else [path]
        )
        for file in files:
            with open(file, encoding="utf-8", errors="replace") as fh:
                yield from fh


def log_console(name: str = "quant_platform.cli"):
    """A rich Console whose `print` becomes one log record (plain text, tables included) instead of
    styled output: what the CLI prints in json mode, so stdout and stderr carry JSON lines only."""
    import io

    from rich.console import Console

    class LogConsole(Console):
        def __init__(self) -> None:
            super().__init__(file=io.StringIO(), width=160, color_system=None, force_terminal=False)
            self._log = logging.getLogger(name)

        def print(self, *objects, **kwargs) -> None:  # noqa: A003 - rich's name
            with self.capture() as captured:
                super().print(*objects, **kwargs)
            text = captured.get().rstrip()
            if not text:
                return
            head = text.splitlines()[0].lower()
            if head.startswith("error") or " failed" in head:
                level = logging.ERROR
            elif head.startswith(("warn", "(could not")):
                level = logging.WARNING
            else:
                level = logging.INFO
            self._log.log(level, text)

    return LogConsole()
