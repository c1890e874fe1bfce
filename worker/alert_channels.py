"""Deliver alert notifications: webhooks signed per Standard Webhooks, Slack and email, retried with backoff.

Every attempt is recorded (`alert_deliveries`: channel, outcome, status code, latency) and a failure is logged.
A retry keeps the message id, so a receiver that saw the first attempt can drop the second.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from sqlalchemy.exc import SQLAlchemyError
from standardwebhooks.webhooks import Webhook

from beat.alert_config import AlertsConfig, WebhookTarget
from beat.config import NotificationsConfig

log = logging.getLogger("fleet.alerts")

# Attempts per notification and channel, and the waits between them (doubling, capped).
ATTEMPTS = 5
BACKOFF_S = 1.0
BACKOFF_MAX_S = 60.0


class Message(Protocol):
    """What a channel sends: an alert's Notification, or an approval request (worker/agents/approval_notify.py)."""

    @property
    def type(self) -> str:
        """The event type, e.g. `alert.firing` or `approval.requested`."""

    @property
    def message_id(self) -> str:
        """Stable across retries: a receiver drops a second delivery of it."""

    def body(self) -> dict[str, Any]:
        """The JSON body (the webhook sends it as is)."""

    def text(self) -> str:
        """One line for Slack and email."""


class DeliveryFailed(Exception):
    """A channel did not take the notification."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class Channel:
    """One place notifications go: its kind, where (shown without secrets) and how to send one."""

    kind: str
    target: str
    send: Callable[[Message], int | None]


def signed_request(target: WebhookTarget, notification: Message, now: float) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature)."""
    body = json.dumps(notification.body(), separators=(",", ":"), ensure_ascii=False).encode()
    at = datetime.fromtimestamp(int(now), UTC)
    signature = Webhook(target.secret.get_secret_value()).sign(notification.message_id, at, body)
    return body, {
        "content-type": "application/json",
        "webhook-id": notification.message_id,
        "webhook-timestamp": str(int(now)),
        "webhook-signature": signature,
    }


def _webhook(target: WebhookTarget) -> Callable[[Message], int | None]:
    def send(notification: Message) -> int | None:
        body, headers = signed_request(target, notification, time.time())
        response = httpx.post(target.url, content=body, headers=headers, timeout=target.timeout_s)
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"answered {response.status_code}", response.status_code)
        return response.status_code

    return send


def _slack(cfg: NotificationsConfig) -> Callable[[Message], int | None]:
    def send(notification: Message) -> int | None:
        assert cfg.slack_webhook_url is not None
        url = cfg.slack_webhook_url.get_secret_value()
        response = httpx.post(url, json={"text": notification.text()}, timeout=cfg.timeout_s)
        if response.status_code >= 300:
            raise DeliveryFailed(f"answered {response.status_code}", response.status_code)
        return response.status_code

    return send


def _email(cfg: NotificationsConfig) -> Callable[[Message], int | None]:
    def send(notification: Message) -> int | None:
        email = cfg.email
        assert email is not None
        message = EmailMessage()
        message["Subject"] = notification.text()[:200]
        message["From"] = email.sender
        message["To"] = ", ".join(email.recipients)
        message.set_content(json.dumps(notification.body(), indent=2, ensure_ascii=False))
        with smtplib.SMTP(email.host, email.port, timeout=email.timeout_s) as smtp:
            if email.starttls:
                smtp.starttls()
            if email.username and email.password:
                smtp.login(email.username, email.password.get_secret_value())
            smtp.send_message(message)
        return None

    return send


def channels(config: AlertsConfig, notifications: NotificationsConfig) -> list[Channel]:
    """Every configured channel: each webhook, and Slack and email when set up and listed in `alerts.channels`."""
    out = [Channel("webhook", _shown(t.url), _webhook(t)) for t in config.webhooks]
    if "slack" in config.channels and notifications.slack_webhook_url is not None:
        out.append(Channel("slack", "slack", _slack(notifications)))
    if "email" in config.channels and notifications.email is not None:
        out.append(Channel("email", ",".join(notifications.email.recipients), _email(notifications)))
    return out


def _shown(url: str) -> str:
    # A webhook URL may carry a token in its path or query: kept to scheme, host and port.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def _record(
    notification: Message,
    channel: Channel,
    attempt: int,
    outcome: str,
    status: int | None,
    latency_ms: float,
    error: str,
) -> None:
    from worker.db import session_scope
    from worker.models.alerts import AlertDelivery

    try:
        with session_scope() as session:
            session.add(
                AlertDelivery(
                    message_id=notification.message_id,
                    event_type=notification.type,
                    channel=channel.kind,
                    target=channel.target[:256],
                    attempt=attempt,
                    outcome=outcome,
                    status_code=status,
                    latency_ms=round(latency_ms, 3),
                    error=error[:2000],
                )
            )
    except SQLAlchemyError as exc:
        log.warning("alert delivery not recorded: %s", exc, extra={"category": "system"})


def deliver(
    notification: Message, channel: Channel, sleep: Callable[[float], None] = time.sleep, attempts: int = ATTEMPTS
) -> bool:
    """Send until it is taken or the attempts run out, waiting BACKOFF_S, doubling, between them."""
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        try:
            status = channel.send(notification)
        except (DeliveryFailed, httpx.HTTPError, smtplib.SMTPException, OSError) as exc:
            latency = (time.perf_counter() - started) * 1000
            code = exc.status_code if isinstance(exc, DeliveryFailed) else None
            _record(notification, channel, attempt, "failed", code, latency, str(exc))
            log.warning(
                "alert %s to %s %s failed (attempt %d of %d): %s",
                notification.message_id,
                channel.kind,
                channel.target,
                attempt,
                attempts,
                exc,
                extra={"category": "system", "channel": channel.kind, "attempt": attempt},
            )
            if attempt < attempts:
                sleep(min(BACKOFF_S * 2 ** (attempt - 1), BACKOFF_MAX_S))
            continue
        _record(notification, channel, attempt, "sent", status, (time.perf_counter() - started) * 1000, "")
        log.info(
            "alert %s sent to %s %s",
            notification.message_id,
            channel.kind,
            channel.target,
            extra={"category": "system", "channel": channel.kind},
        )
        return True
    log.error(
        "alert %s to %s %s given up after %d attempts",
        notification.message_id,
        channel.kind,
        channel.target,
        attempts,
        extra={"category": "system", "channel": channel.kind},
    )
    return False


class Dispatcher:
    """Sends in the background, so a slow receiver never delays the next evaluation."""

    def __init__(self, max_workers: int = 4) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fleet-alert-send")

    def submit(self, notifications: Sequence[Message], targets: list[Channel]) -> None:
        """Queue every notification for every channel."""
        for notification in notifications:
            for channel in targets:
                self.pool.submit(deliver, notification, channel)

    def close(self) -> None:
        """Stop taking work; what is queued is still sent."""
        self.pool.shutdown(wait=False)
