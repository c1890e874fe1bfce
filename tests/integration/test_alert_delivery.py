"""A notification is retried with backoff until a channel takes it, and every attempt is recorded."""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from beat.alert_config import WebhookTarget
from beat.alert_rules import labels_of
from beat.incidents import Incident, Notification
from worker.alert_channels import Channel, DeliveryFailed, deliver, signed_request

pytestmark = pytest.mark.integration
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _notification() -> Notification:
    incident = Incident(
        f"inc_{uuid.uuid4().hex[:12]}",
        "dead_letters",
        labels_of(queue="ledger"),
        "warning",
        "firing",
        0.0,
        2.0,
        "2 messages refused",
        fired_at=0.0,
        last_sent_at=0.0,
        sends=1,
    )
    return Notification("alert.firing", incident, 1_764_930_000.0)


def test_a_failing_channel_is_retried_with_doubling_waits_and_each_attempt_is_recorded(database_url: str) -> None:
    from worker.db import session_scope
    from worker.models.alerts import AlertDelivery

    # Given a receiver that fails twice (a 503, then a refused connection) and then takes the message
    answers: list[BaseException | int] = [DeliveryFailed("answered 503", 503), ConnectionRefusedError(), 204]

    def send(_n: Notification) -> int | None:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    waits: list[float] = []
    notification = _notification()
    # When it is delivered
    assert deliver(notification, Channel("webhook", "http://receiver.example", send), sleep=waits.append)
    # Then it waited 1 s, then 2 s, and the three attempts are rows with their outcome
    assert waits == [1.0, 2.0]
    with session_scope() as session:
        rows = session.scalars(
            select(AlertDelivery).where(AlertDelivery.message_id == notification.message_id).order_by(AlertDelivery.id)
        ).all()
        assert [(r.attempt, r.outcome, r.status_code) for r in rows] == [
            (1, "failed", 503),
            (2, "failed", None),
            (3, "sent", 204),
        ]


@settings(max_examples=100, deadline=None)
@given(tamper=st.binary(min_size=1, max_size=64), position=st.integers(min_value=0))
def test_a_signed_body_verifies_and_any_change_to_it_does_not(tamper: bytes, position: int) -> None:
    target = WebhookTarget(url="https://ops.example/hooks", secret=SECRET)
    notification = _notification()
    body, headers = signed_request(target, notification, time.time())
    webhook = Webhook(SECRET)
    assert webhook.verify(body, headers) == notification.body()
    assert headers["webhook-signature"].startswith("v1,") and headers["webhook-id"] == notification.message_id
    at = position % (len(body) + 1)
    changed = body[:at] + tamper + body[at:]
    with pytest.raises(WebhookVerificationError):
        webhook.verify(changed, headers)
