"""Settings of the screening cycle from the environment: schedule, response clock, webhook and SMTP notices."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from fraudnet.errors import ConfigError

__all__ = ["ScreeningSettings", "load_screening_settings", "response_hours", "DEFAULT_CRON", "DEFAULT_RESPONSE_HOURS"]

DEFAULT_CRON = "0 2 * * *"  # every day at 02:00 (local time of the server)
DEFAULT_RESPONSE_HOURS = 5.0  # on site within 5 hours of a red warning


@dataclass(frozen=True)
class ScreeningSettings:
    """What the screening cycle needs beyond the workspace.

    `cron`: when the drop folder is screened (5-field cron expression); `poll_s`: how often the folder is looked at
    for new files between scheduled runs (0: only on schedule); `response_hours`: the on-site target of a red lead
    (its `response_due_at` is first seen + this). Notices of new red leads go to `webhook_url` (POST, JSON) and/or by
    e-mail through `smtp_host` to `mail_to`.
    """

    cron: str = DEFAULT_CRON
    poll_s: float = 60.0
    response_hours: float = DEFAULT_RESPONSE_HOURS
    webhook_url: str = ""
    webhook_timeout_s: float = 10.0
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    mail_from: str = "fraudnet@localhost"
    mail_to: tuple[str, ...] = ()

    @property
    def notifies(self) -> bool:
        return bool(self.webhook_url or (self.smtp_host and self.mail_to))


def _float(name: str, default: float, lo: float, hi: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={text!r} is not a number from {lo:g} to {hi:g}")
    return value


def response_hours() -> float:
    """The on-site target of red leads: FRAUDNET_RESPONSE_HOURS (0.1 to 720), default 5 (read per call: cheap)."""
    return _float("FRAUDNET_RESPONSE_HOURS", DEFAULT_RESPONSE_HOURS, 0.1, 24 * 30)


def load_screening_settings() -> ScreeningSettings:
    """FRAUDNET_WATCH_CRON, FRAUDNET_WATCH_POLL (seconds), FRAUDNET_RESPONSE_HOURS, FRAUDNET_NOTIFY_WEBHOOK,
    FRAUDNET_SMTP_HOST / _PORT / _USER / _PASSWORD / _STARTTLS, FRAUDNET_MAIL_FROM, FRAUDNET_MAIL_TO (comma list)."""
    from fraudnet.screening.schedule import check_cron

    cron = os.environ.get("FRAUDNET_WATCH_CRON", "").strip() or DEFAULT_CRON
    check_cron(cron, "FRAUDNET_WATCH_CRON")
    webhook = os.environ.get("FRAUDNET_NOTIFY_WEBHOOK", "").strip()
    if webhook and not webhook.startswith(("http://", "https://")):
        raise ConfigError(f"FRAUDNET_NOTIFY_WEBHOOK={webhook!r} is not an http(s) URL")
    port_text = os.environ.get("FRAUDNET_SMTP_PORT", "").strip() or "25"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"FRAUDNET_SMTP_PORT={port_text!r} is not a TCP port")
    return ScreeningSettings(
        cron=cron,
        poll_s=_float("FRAUDNET_WATCH_POLL", 60.0, 0.0, 86400.0),
        response_hours=response_hours(),
        webhook_url=webhook,
        smtp_host=os.environ.get("FRAUDNET_SMTP_HOST", "").strip(),
        smtp_port=int(port_text),
        smtp_user=os.environ.get("FRAUDNET_SMTP_USER", "").strip(),
        smtp_password=os.environ.get("FRAUDNET_SMTP_PASSWORD", ""),
        smtp_starttls=os.environ.get("FRAUDNET_SMTP_STARTTLS", "").strip().lower() in ("1", "true", "on", "yes"),
        mail_from=os.environ.get("FRAUDNET_MAIL_FROM", "").strip() or "fraudnet@localhost",
        mail_to=tuple(a.strip() for a in os.environ.get("FRAUDNET_MAIL_TO", "").split(",") if a.strip()),
    )
