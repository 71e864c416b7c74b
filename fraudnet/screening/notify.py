"""Notices of new red leads: a JSON POST to a webhook and/or an e-mail through SMTP (settings from the environment).

A notice names leads by id, kind, institutions, amount and response deadline — never a person's identifiers."""

from __future__ import annotations

import json
import logging
import smtplib
from email.message import EmailMessage
from typing import Any

import httpx

from fraudnet.screening.runs import json_default
from fraudnet.screening.settings import ScreeningSettings

__all__ = ["notice_payload", "send_webhook", "send_email", "notify"]

log = logging.getLogger(__name__)

_NOTICE_KEYS = ("lead_id", "kind", "severity", "score", "institutions", "amount_at_risk", "first_seen",
                "response_due_at")


def notice_payload(report: dict[str, Any]) -> dict[str, Any]:
    """The JSON a webhook receives: the run, its counts and the new red leads (no personal identifiers)."""
    new = report.get("new_leads") or {}
    payload = {
        "event": "fraudnet.red_leads",
        "run_id": report.get("run_id"),
        "finished_at": report.get("finished_at"),
        "new_red": int(new.get("red", 0)),
        "new_orange": int(new.get("orange", 0)),
        "by_kind": new.get("by_kind", {}),
        "by_institution": new.get("by_institution", {}),
        "leads": [{k: lead.get(k) for k in _NOTICE_KEYS} for lead in new.get("red_leads", [])],
    }
    return json.loads(json.dumps(payload, ensure_ascii=False, default=json_default))  # times as ISO text


def send_webhook(url: str, payload: dict[str, Any], timeout_s: float = 10.0) -> str:
    """POST the payload as JSON; 'sent (HTTP n)' or 'failed: …' (a failed notice never fails the run)."""
    try:
        response = httpx.post(url, json=payload, timeout=timeout_s,
                              headers={"User-Agent": "fraudnet-screening", "X-Fraudnet-Event": payload["event"]})
    except httpx.HTTPError as exc:
        log.warning("webhook %s failed: %s", url, exc)
        return f"failed: {type(exc).__name__}: {exc}"
    if response.status_code >= 400:
        log.warning("webhook %s answered HTTP %d", url, response.status_code)
        return f"failed: HTTP {response.status_code}"
    return f"sent (HTTP {response.status_code})"


def _mail_text(payload: dict[str, Any]) -> str:
    lines = [f"fraudnet screening run {payload['run_id']}: {payload['new_red']} new red lead(s) / 新增红色预警 "
             f"{payload['new_red']} 条, {payload['new_orange']} new orange / 橙色 {payload['new_orange']} 条", ""]
    for lead in payload["leads"]:
        lines.append(f"- {lead['lead_id']} {lead['kind']} at {', '.join(lead.get('institutions') or [])}: "
                     f"{float(lead.get('amount_at_risk') or 0):,.2f} yuan; on site by / 到场时限 "
                     f"{lead.get('response_due_at')}")
    lines += ["", "Open the lead queue in fraudnet for the evidence / 证据请在 fraudnet 线索列表中查看。"]
    return "\n".join(lines)


def send_email(settings: ScreeningSettings, payload: dict[str, Any]) -> str:
    """Send the notice by SMTP to `settings.mail_to`; 'sent to n' or 'failed: …'."""
    msg = EmailMessage()
    msg["Subject"] = (f"[fraudnet] {payload['new_red']} new red lead(s) / 新增红色预警 {payload['new_red']} 条 "
                      f"({payload['run_id']})")
    msg["From"] = settings.mail_from
    msg["To"] = ", ".join(settings.mail_to)
    msg.set_content(_mail_text(payload))
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.webhook_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("e-mail notice through %s:%d failed: %s", settings.smtp_host, settings.smtp_port, exc)
        return f"failed: {type(exc).__name__}: {exc}"
    return f"sent to {len(settings.mail_to)}"


def notify(settings: ScreeningSettings, report: dict[str, Any]) -> dict[str, str]:
    """Send the configured notices when the run raised new red leads; what happened to each channel."""
    new_red = int((report.get("new_leads") or {}).get("red", 0))
    out: dict[str, str] = {}
    if not new_red:
        return out
    payload = notice_payload(report)
    if settings.webhook_url:
        out["webhook"] = send_webhook(settings.webhook_url, payload, settings.webhook_timeout_s)
    if settings.smtp_host and settings.mail_to:
        out["email"] = send_email(settings, payload)
    return out
