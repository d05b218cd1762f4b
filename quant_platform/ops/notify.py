"""Notifications: one short message per event, sent through apprise to every `QP_NOTIFY_URLS` channel.

apprise speaks Slack, email, Telegram, WeCom, Discord, generic JSON / form webhooks and ~100 more,
each configured by one URL (`slack://T/B/C`, `mailto://user:pw@host`, `json://host:port/path`).

Rules every sender here keeps:
- a message never carries a secret: `scrub` removes credentials from URLs / DSNs and `key=value`
  secrets, and the channel URLs themselves (tokens) are never logged or sent;
- a failing channel is logged and retried a few times, then given up: `send` never raises, so a
  notification can never fail a run or a sensor tick;
- messages are built here from plain values (no Dagster import); the sensors in
  `ops/dagster/sensors.py` find the events and keep the cursor that de-duplicates them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("quant_platform.ops.notify")

MAX_BODY = 1500  # chat channels cut long messages; the UI has the rest

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@:]+(:[^/\s@]*)?@")
_KEY_VALUE = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|authorization)"
    r"(\s*[=:]\s*)(bearer\s+)?[^\s,;&'\"]+"
)
_API_KEY = re.compile(r"\bqp_[A-Za-z0-9]+_[A-Za-z0-9_-]{8,}")  # the API keys of `users keys create`


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without credentials: `scheme://user:pw@host` -> `scheme://***@host`, `password=x` ->
    `password=***`, API keys and each of `secrets` (e.g. the channel URLs) -> `***`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    return _API_KEY.sub("***", text)


@dataclass(frozen=True)
class Notice:
    """One message: `kind` (run_failed, check_blocked, grid_finished, grid_failed) and a short text."""

    kind: str
    title: str
    body: str

    def scrubbed(self, secrets: Iterable[str] = ()) -> Notice:
        secrets = tuple(secrets)
        body = scrub(self.body, secrets)
        if len(body) > MAX_BODY:
            body = body[: MAX_BODY - 1] + "…"
        return Notice(self.kind, scrub(self.title, secrets), body)


def run_failed(job: str, run_id: str, partition: str | None, error: str | None) -> Notice:
    where = f" ({partition})" if partition else ""
    return Notice(
        "run_failed",
        f"quant-platform: run of {job}{where} failed",
        f"job: {job}\npartition: {partition or '-'}\nrun: {run_id}\nfirst error: {error or 'see its logs'}",
    )


def check_blocked(
    table: str, days: str, rules: Mapping[str, float], share: float | None, description: str, run_id: str
) -> Notice:
    rule_text = ", ".join(f"{rule} {value:.4g}" for rule, value in rules.items()) or "-"
    first = (description or "").strip().splitlines()[0] if (description or "").strip() else ""
    return Notice(
        "check_blocked",
        f"quant-platform: quality gate blocked {table} on {days}",
        f"table: {table}\nday(s): {days}\nrules: {rule_text}\n"
        f"quarantined share: {'-' if share is None else f'{share:.4%}'}\n{first}\nrun: {run_id}".rstrip(),
    )


def grid_done(request_id: str, status: str, strategy: str | None, best_params: Mapping | None,
              error: str | None, extra: Mapping[str, float] | None = None) -> Notice:  # fmt: skip
    lines = [f"request: {request_id}", f"strategy: {strategy or '-'}", f"status: {status}"]
    if best_params:
        lines.append("best parameters: " + ", ".join(f"{k}={v}" for k, v in best_params.items()))
    for name, value in (extra or {}).items():  # PBO / DSR where the search reported them
        lines.append(f"{name}: {value:.4g}")
    if error:
        lines.append(f"error: {error}")
    ok = status == "succeeded"
    return Notice(
        "grid_finished" if ok else "grid_failed",
        f"quant-platform: grid search {request_id} {'finished' if ok else status}",
        "\n".join(lines),
    )


def collector_silent(
    last_seen: str, silent_seconds: float, source: str | None, watermark: str | None
) -> Notice:
    return Notice(
        "collector_silent",
        f"quant-platform: collector silent for {silent_seconds / 60:.0f} min",
        f"last observation: {last_seen}\nsource: {source or '-'}\nnewest tick: {watermark or '-'}\n"
        "stopped or unhealthy: see its /healthz and logs (quant-platform collect)",
    )


def send(urls: Sequence[str], notice: Notice, *, attempts: int = 3, backoff: float = 1.0) -> bool:
    """Send `notice` to every channel in `urls`; True when all took it. Never raises.

    Each channel is tried `attempts` times (waits `backoff`, 2x`backoff`, ...); a channel still
    failing is logged (by its scheme only: the URL holds its token) and skipped.
    """
    if not urls:
        return True
    notice = notice.scrubbed(urls)
    ok = True
    for url in urls:
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        for attempt in range(1, attempts + 1):
            try:
                if _send_one(url, notice):
                    break
                problem = "channel refused the message"
            except Exception as exc:  # noqa: BLE001 - a channel must never fail the caller
                problem = type(exc).__name__
            log.warning("notification %s via %s:// failed (attempt %d/%d): %s",
                        notice.kind, scheme, attempt, attempts, problem)  # fmt: skip
            if attempt < attempts:
                time.sleep(backoff * attempt)
        else:
            ok = False
            log.error("notification %s via %s:// given up after %d attempts", notice.kind, scheme, attempts)
    return ok


def _send_one(url: str, notice: Notice) -> bool:
    import apprise  # imported here: a second of imports a process without channels does not pay

    asset = apprise.AppriseAsset(app_id="quant-platform", app_desc="quant-platform operations")
    client = apprise.Apprise(asset=asset)
    if not client.add(url):
        log.error("notification channel %s:// is not a valid apprise URL", url.split("://", 1)[0])
        return False
    return bool(client.notify(title=notice.title, body=notice.body))
