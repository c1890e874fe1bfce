"""Send a stored report to Slack (incoming webhook) and by SMTP email; failures raise for a retry."""

from __future__ import annotations

import logging
import smtplib
from datetime import date
from email.message import EmailMessage

import httpx

from beat.config import NotificationsConfig, notifications_config
from beat.errors import NotificationFailed, ReportNotFound
from worker.reports import store
from worker.settings import get_settings

log = logging.getLogger("fleet.reports")
# Slack cuts messages near 40k characters; the report file has the rest.
SLACK_LIMIT = 3500


def config() -> NotificationsConfig:
    """The `notifications` section, validated."""
    return notifications_config(get_settings().section("notifications"))


def channels(health: str, issues: int, cfg: NotificationsConfig | None = None) -> list[str]:
    """The channels a report goes to: configured ones, unless `send` says not for this report."""
    cfg = cfg or config()
    if cfg.send == "never" or (cfg.send == "issues" and issues == 0 and health == "OK"):
        return []
    return [name for name, target in (("slack", cfg.slack_webhook_url), ("email", cfg.email)) if target is not None]


def _slack(cfg: NotificationsConfig, subject: str, markdown: str) -> None:
    assert cfg.slack_webhook_url is not None
    text = f"*{subject}*\n{markdown[:SLACK_LIMIT]}"
    response = httpx.post(cfg.slack_webhook_url.get_secret_value(), json={"text": text}, timeout=cfg.timeout_s)
    if response.status_code >= 300:
        raise NotificationFailed(f"slack webhook answered {response.status_code}")


def _email(cfg: NotificationsConfig, subject: str, markdown: str) -> None:
    email = cfg.email
    assert email is not None
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = email.sender
    message["To"] = ", ".join(email.recipients)
    message.set_content(markdown)
    with smtplib.SMTP(email.host, email.port, timeout=email.timeout_s) as smtp:
        if email.starttls:
            smtp.starttls()
        if email.username and email.password:
            smtp.login(email.username, email.password.get_secret_value())
        smtp.send_message(message)


def send(day: date, channel: str) -> str:
    """Deliver the stored report of `day` to one channel; NotificationFailed (logged) when it fails."""
    report = store.get_report(day)
    if report is None:
        raise ReportNotFound(f"no report for {day}")
    cfg = config()
    subject = f"[{report.health}] Fleet status report {day}{' (late)' if report.late else ''}"
    sender = {"slack": _slack, "email": _email}[channel]
    try:
        sender(cfg, subject, report.markdown)
    except (httpx.HTTPError, smtplib.SMTPException, OSError, NotificationFailed) as exc:
        log.warning(
            "notification of the %s report by %s failed: %s",
            day,
            channel,
            exc,
            extra={"category": "system", "channel": channel, "report_date": day.isoformat()},
        )
        raise NotificationFailed(f"{channel}: {exc}") from exc
    store.mark_notified(day, channel, "sent")
    log.info("report of %s sent by %s", day, channel, extra={"category": "system", "channel": channel})
    return "sent"
