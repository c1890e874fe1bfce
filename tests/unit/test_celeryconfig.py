"""celeryconfig: the settings that make priorities, redelivery and monitoring work."""

from __future__ import annotations

import celeryconfig
from worker import app


def test_only_json_is_accepted() -> None:
    assert celeryconfig.accept_content == ["json"]
    assert celeryconfig.result_accept_content == ["json"]
    assert celeryconfig.task_serializer == celeryconfig.result_serializer == "json"


def test_redis_priorities_use_ten_steps_and_a_printable_separator() -> None:
    options = celeryconfig.broker_transport_options
    assert options["queue_order_strategy"] == "priority"
    assert options["priority_steps"] == list(range(10))
    assert options["sep"] == ":"
    assert celeryconfig.worker_prefetch_multiplier == 1


def test_tasks_are_routed_by_name_prefix() -> None:
    router = app.amqp.router
    for name, queue in [
        ("ledger.quick_run", "ledger"),
        ("agents.analyze", "agents"),
        ("reports.daily_status", "reports"),
    ]:
        assert router.route({}, name)["queue"].name == queue


def test_time_limits_follow_the_queue() -> None:
    limits = celeryconfig.QueueTimeLimits()

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    assert limits.annotate(Named("ledger.quick_run")) == {"soft_time_limit": 120, "time_limit": 150}
    assert limits.annotate(Named("other.task")) is None


def test_redelivery_and_monitoring_settings() -> None:
    assert celeryconfig.task_acks_late and celeryconfig.task_reject_on_worker_lost
    assert celeryconfig.result_expires > 0
    assert celeryconfig.task_send_sent_event and celeryconfig.worker_send_task_events
    assert celeryconfig.broker_transport_options["visibility_timeout"] > 150 + 300
