"""Tripwires: the library internals each fleet patch was written against are still there and still behave so.

Every patch is listed in docs/PATCHES.md with the version it was written against (the lock files pin it). When one
of these fails after an upgrade, the message names the patch: read the library's new code, carry the change over
(or run with FLEET_STOCK_LIBRARIES=true meanwhile), then update the expectation here. Source digests of the two
kombu methods worker/transport.py copies are in tests/unit/test_transport_pins.py.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import celery.app.trace
import celery.canvas
import celery.utils.saferepr
import celery.worker.request
import prometheus_client.values
import pytest
import redis
from celery import Celery, Task
from celery.app.amqp import AMQP
from celery.backends.redis import RedisBackend
from celery.exceptions import WorkerShutdown
from celery.utils.saferepr import saferepr as celery_saferepr
from celery.worker import state as worker_state
from celery.worker.consumer import Consumer
from flower import urls as flower_urls
from flower.views.monitor import Metrics
from kombu import Connection
from kombu.connection import ConnectionPool, PooledConnection
from kombu.serialization import registry
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils import json as kombu_json

TRANSPORT = "worker/transport.py (the fleet's kombu Redis transport)"
SAFEREPR = "worker/saferepr.py (Celery's saferepr replaced in the tracer and the request)"
CODEC = "worker/codec.py (kombu's json decoder replaced in its registry)"
PROMETHEUS = "worker/prometheus_env.py (prometheus_client's value class switched after import)"
FLOWER = "worker/flower_auth.py (Flower's /metrics route replaced)"
CONSUMER = "worker/task_events.py FleetConsumer (Celery's task-event flush batched)"
BACKEND = "worker/backend.py (Celery's Redis result backend, stored in one script call)"
WATCHDOG = "worker/watchdog.py (Celery's worker state read and told to stop)"
CANVAS = "worker/agents/canvas.py and worker/agents/tasks.py (Celery's canvas classes and task replacement)"
LOGGING = "worker/logging.py (Celery's per-task lines silenced by logger name, their `data` field dropped)"

# (owner, attribute, the signature written against, the patch that relies on it)
SIGNATURES = [
    (kombu_redis.Channel, "_brpop_read", "(self, **options)", TRANSPORT),
    (kombu_redis.Channel, "_get", "(self, queue)", TRANSPORT),
    (kombu_redis.Channel, "_create_client", "(self, asynchronous=False)", TRANSPORT),
    (kombu_redis.Channel, "_q_for_pri", "(self, queue, pri)", TRANSPORT),
    (kombu_redis.Channel, "_maybe_update_queues_expire", "(self, client, queue)", TRANSPORT),
    (kombu_redis.Channel, "conn_or_acquire", "(self, client=None)", TRANSPORT),
    (kombu_redis.Channel, "close", "(self)", TRANSPORT),
    (virtual.Transport, "_deliver", "(self, message, queue)", TRANSPORT),
    (kombu_redis.Channel, "_basic_cancel", "(self, consumer_tag)", TRANSPORT),
    (kombu_redis.Channel, "_connparams", "(self, asynchronous=False)", TRANSPORT),
    (kombu_redis.SentinelChannel, "_get_pool", "(self, asynchronous=False)", TRANSPORT),
    (virtual.Channel, "basic_consume", "(self, queue, no_ack, callback, consumer_tag, **kwargs)", TRANSPORT),
    (virtual.Channel, "basic_get", "(self, queue, no_ack=False, **kwargs)", TRANSPORT),
    (kombu_redis.QoS, "append", "(self, message, delivery_tag)", TRANSPORT),
    (kombu_redis.QoS, "ack", "(self, delivery_tag)", TRANSPORT),
    (kombu_redis.QoS, "reject", "(self, delivery_tag, requeue=False)", TRANSPORT),
    (kombu_redis.QoS, "restore_unacked", "(self, client=None)", TRANSPORT),
    (kombu_redis.QoS, "restore_visible", "(self, start=0, num=10, interval=10)", TRANSPORT),
    (kombu_redis.QoS, "restore_by_tag", "(self, tag, client=None, leftmost=False)", TRANSPORT),
    (virtual.QoS, "append", "(self, message, delivery_tag)", TRANSPORT),
    (virtual.QoS, "ack", "(self, delivery_tag)", TRANSPORT),
    (Connection, "get_transport_cls", "(self)", TRANSPORT),
    (Connection, "Pool", "(self, limit=None, **kwargs)", TRANSPORT),
    (Connection, "_info", "(self, resolve=True)", TRANSPORT),
    (ConnectionPool, "new", "(self)", TRANSPORT),
    (PooledConnection, "get_transport_cls", "(self)", TRANSPORT),
    (celery.utils.saferepr, "saferepr", "(o, maxlen=None, maxlevels=3, seen=None)", SAFEREPR),
    (registry, "register", "(name, encoder, decoder, content_type, content_encoding='utf-8')", CODEC),
    (prometheus_client.values, "get_value_class", "()", PROMETHEUS),
    (Metrics, "get", "(self)", FLOWER),
    (Consumer, "on_send_event_buffered", "(self)", CONSUMER),
    (Consumer, "_flush_events", "(self)", CONSUMER),
    (Consumer, "stop", "(self)", CONSUMER),
    (Consumer, "shutdown", "(self)", CONSUMER),
    (RedisBackend, "_store_result", "(self, task_id, result, state, traceback=None, request=None, **kwargs)", BACKEND),
    (
        RedisBackend,
        "_get_result_meta",
        "(self, result, state, traceback, request, format_date=True, encode=False)",
        BACKEND,
    ),
    (RedisBackend, "ensure", "(self, fun, args, **policy)", BACKEND),
    (
        RedisBackend,
        "_ensure_retryable",
        "(self, func, *args, fallback_exc=None, fallback_msg=None, max_retries=None, **kwargs)",
        BACKEND,
    ),
    (RedisBackend, "get_key_for_task", "(self, task_id, key='')", BACKEND),
    (Task, "on_replace", "(self, sig)", CANVAS),
    (Task, "replace", "(self, sig)", CANVAS),
]


@pytest.mark.parametrize(
    ("owner", "name", "expected", "patch"),
    SIGNATURES,
    ids=[f"{getattr(o, '__name__', type(o).__name__)}.{n}" for o, n, _, _ in SIGNATURES],
)
def test_the_internal_a_patch_relies_on_is_there_with_its_signature(
    owner: Any, name: str, expected: str, patch: str
) -> None:
    where = f"{getattr(owner, '__name__', type(owner).__name__)}.{name}"
    assert hasattr(owner, name), f"{where} is gone: {patch} relies on it (docs/PATCHES.md)"
    found = str(inspect.signature(getattr(owner, name)))
    assert found == expected, f"{where} changed from {expected} to {found}: revisit {patch} (docs/PATCHES.md)"


# Behaviour probes: what each patch assumes the library does, checked on the library's own code.


class _Recorder:
    """A redis pipeline that records the commands kombu sends to it."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def __getattr__(self, command: str) -> Any:
        def record(*args: Any) -> _Recorder:
            self.commands.append((command, *args))
            return self

        return record


def _kombu_qos() -> tuple[Any, _Recorder]:
    channel = SimpleNamespace(unacked_key="unacked", unacked_index_key="unacked_index", do_restore=False)
    qos = kombu_redis.QoS(channel)
    pipe = _Recorder()

    @contextmanager
    def pipe_or_acquire(pipe_: Any = None, client: Any = None) -> Iterator[_Recorder]:
        yield pipe

    qos.pipe_or_acquire = pipe_or_acquire
    return qos, pipe


def test_kombu_records_a_delivery_as_the_fleet_transport_writes_it() -> None:
    # Given kombu's own QoS, when a message is delivered and then acknowledged
    qos, pipe = _kombu_qos()
    message = SimpleNamespace(_raw={"body": "x"}, delivery_info={"exchange": "ledger", "routing_key": "ledger"})
    qos.append(message, "tag-1")
    qos.ack("tag-1")

    # Then its bookkeeping is what worker/transport.py's QoS sends without waiting: the same keys, the same record
    commands = [(name, *args) for name, *args in pipe.commands if name != "execute"]
    zadd, hset, zrem, hdel = commands
    problem = f"kombu's unacknowledged-message bookkeeping changed ({commands}): revisit {TRANSPORT}"
    assert zadd[:2] == ("zadd", "unacked_index") and list(zadd[2]) == ["tag-1"], problem
    assert hset == ("hset", "unacked", "tag-1", json.dumps([{"body": "x"}, "ledger", "ledger"])), problem
    assert zrem == ("zrem", "unacked_index", "tag-1") and hdel == ("hdel", "unacked", "tag-1"), problem


def test_kombu_names_a_priority_list_queue_sep_priority() -> None:
    channel = SimpleNamespace(sep=":", priority=lambda pri: pri)
    found = [kombu_redis.Channel._q_for_pri(channel, "ledger", pri) for pri in (0, 3)]
    assert found == ["ledger", "ledger:3"], f"kombu's priority list names changed ({found}): revisit {TRANSPORT}"


def test_kombu_makes_a_client_over_the_channel_pool_that_holds_no_connection_of_its_own() -> None:
    # Why one client per pool is enough (Channel._create_client): a client takes a connection per command
    pool = redis.ConnectionPool.from_url("redis://127.0.0.1:1/0")
    client = kombu_redis.Channel._create_client(SimpleNamespace(pool=pool, Client=redis.Redis), asynchronous=False)
    assert client.connection_pool is pool, f"kombu's channel client has another pool: revisit {TRANSPORT}"
    assert client.connection is None, f"a redis client now holds a connection: revisit {TRANSPORT}"


def test_kombu_picks_its_redis_transport_through_get_transport_cls() -> None:
    # FleetConnection swaps the class where kombu's own choice is this one
    found = Connection("redis://127.0.0.1:1/0").get_transport_cls()
    assert found is kombu_redis.Transport, f"kombu picks {found} for redis://: revisit {TRANSPORT}"
    assert AMQP.Connection is Connection, f"Celery's AMQP makes connections otherwise: revisit {TRANSPORT}"
    assert "amqp" in inspect.signature(Celery).parameters, f"Celery(amqp=...) is gone: revisit {TRANSPORT}"


def test_celery_writes_return_values_through_the_saferepr_the_fleet_replaces() -> None:
    # The tracer and the request call the module-level name (so assigning it reaches them), with Celery's text
    for module in (celery.app.trace, celery.worker.request):
        assert hasattr(module, "saferepr"), f"{module.__name__}.saferepr is gone: revisit {SAFEREPR}"
        source = inspect.getsource(module)
        assert "from celery.utils.saferepr import saferepr" in source, f"{module.__name__}: revisit {SAFEREPR}"
        assert "saferepr(" in source.split("import saferepr", 1)[1], f"{module.__name__}: revisit {SAFEREPR}"
    value = {"event_id": "evt-1", "codes": ["a"], "n": (1, 2.5, None, True)}
    from worker.saferepr import fast_saferepr

    assert fast_saferepr(value, 1024) == celery_saferepr(value, 1024), f"Celery's saferepr text changed: {SAFEREPR}"


def test_kombu_decodes_json_through_its_registry_and_tagged_values() -> None:
    from worker import codec

    name = registry.name_to_type.get(codec.NAME)
    assert name == codec.CONTENT_TYPE, f"kombu's json codec is registered as {name}: revisit {CODEC}"
    tagged = kombu_json.dumps({"amount": __import__("decimal").Decimal("1.5")})
    assert "__type__" in tagged, f"kombu no longer tags values with __type__: revisit {CODEC}"
    for text in (tagged, '{"a": [1, "x", null]}', "[NaN]"):
        assert repr(codec.loads(text)) == repr(kombu_json.loads(text)), f"{text!r} decodes otherwise: {CODEC}"


def test_prometheus_client_chooses_its_value_class_through_the_module_attribute() -> None:
    values = prometheus_client.values
    assert hasattr(values, "ValueClass"), f"prometheus_client.values.ValueClass is gone: revisit {PROMETHEUS}"
    source = inspect.getsource(prometheus_client.metrics)
    assert "values.ValueClass" in source, f"metrics no longer read values.ValueClass: revisit {PROMETHEUS}"
    assert values.MultiProcessValue()._multiprocess is True, f"no _multiprocess flag: revisit {PROMETHEUS}"


def test_flower_routes_metrics_through_its_url_table_without_authentication() -> None:
    routes = {handler[0]: handler[1] for handler in flower_urls.handlers if isinstance(handler, tuple)}
    assert "/metrics" in routes, f"Flower's /metrics route moved: revisit {FLOWER}"
    assert not hasattr(Metrics.get, "__wrapped__"), f"Flower authenticates /metrics itself now: {FLOWER} may go"


def test_celery_flushes_task_events_through_the_method_the_fleet_consumer_times() -> None:
    source = inspect.getsource(Consumer.on_send_event_buffered)
    assert "_flush_events" in source, f"Celery's event flush changed ({source.strip()}): revisit {CONSUMER}"
    flushed = []
    consumer = SimpleNamespace(event_dispatcher=SimpleNamespace(flush=lambda: flushed.append(True)))
    Consumer._flush_events(consumer)
    assert flushed == [True], f"Consumer._flush_events no longer flushes the dispatcher: revisit {CONSUMER}"


def test_celery_redis_backend_keeps_the_limits_and_key_the_fleet_backend_uses() -> None:
    assert isinstance(getattr(RedisBackend, "_MAX_STR_VALUE_SIZE", None), int), f"revisit {BACKEND}"
    backend = RedisBackend(app=Celery(set_as_current=False), url="redis://127.0.0.1:1/0")
    key = backend.get_key_for_task("abc")
    assert key == b"celery-task-meta-abc", f"Celery's result key is now {key!r}: revisit {BACKEND}"


def test_celery_worker_state_still_holds_what_the_watchdog_reads_and_sets() -> None:
    assert len(worker_state.active_requests) >= 0, f"celery.worker.state.active_requests is gone: {WATCHDOG}"
    assert worker_state.should_stop is None, f"celery.worker.state.should_stop changed: revisit {WATCHDOG}"
    worker_state.should_stop = 70
    try:
        with pytest.raises(WorkerShutdown) as stopped:
            worker_state.maybe_shutdown()
    finally:
        worker_state.should_stop = None
    assert stopped.value.args == (70,), f"the worker no longer exits with should_stop's code: revisit {WATCHDOG}"


def test_celery_canvas_classes_the_fleet_inspects_are_still_signatures() -> None:
    assert issubclass(celery.canvas._chain, celery.canvas.Signature), f"revisit {CANVAS}"
    assert issubclass(celery.canvas._chord, celery.canvas.Signature), f"revisit {CANVAS}"
    assert "chain" in inspect.getsource(Task.replace), f"Task.replace no longer reads request.chain: {CANVAS}"


def test_celery_logs_task_arguments_on_the_loggers_the_fleet_silences_reading_their_level_once() -> None:
    import celery.worker.strategy

    from worker.logging import ARGUMENT_LOGGERS

    for module in (celery.worker.strategy, celery.app.trace):
        assert module.logger.name in ARGUMENT_LOGGERS, f"{module.__name__} logs as {module.logger.name}: {LOGGING}"
        source = inspect.getsource(module)
        assert "_does_info = logger.isEnabledFor(logging.INFO)" in source, f"{module.__name__}: revisit {LOGGING}"
        assert "extra={'data': context}" in source, f"{module.__name__} no longer logs `data`: revisit {LOGGING}"
