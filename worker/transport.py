"""The fleet's Redis transport: kombu's, with an atomic fetch, ownership and heartbeats, and cheaper bookkeeping.

- **Fetch.** A message is taken and recorded as held (kombu's `unacked` bookkeeping plus its owner) in one Lua call
  (worker/ownership.py), not BRPOP then a write: a worker killed at any instant cannot lose a message. An idle
  consumer is woken by Redis's key-invalidation messages for its queues (client tracking), within a fraction of a
  millisecond of a push, with a fallback fetch every second.
- **Heartbeats and recovery.** Each process beats for its consumers from a thread; a consumer silent for
  `fleet_worker_lost_after_s` gets its messages given back by a live one (docs/RELIABILITY.md).
- **Cheaper bookkeeping.** Every command sent outside the fetch reuses one `redis.Redis` client per pool (kombu built
  one per command, ~0.1 ms), and acknowledgements go out on a connection of their own, their replies read just before
  the next write, so Redis answers while the task runs (docs/PERFORMANCE.md, section 2). Every other reader or writer
  of those keys (reject, restore, close) first reads the replies still owed.

Bytes popped from a queue are checked before kombu parses them (worker/envelope.py): junk is kept as a dead letter.

The fleet app uses it through `FleetAMQP` (`Celery(amqp=...)`), so the broker URL stays `redis://...` for
Flower and the logs, and other apps in the same process keep kombu's own transport. `_fleet_transport` is the one
place that chooses it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from functools import cached_property
from queue import Empty
from time import monotonic, time
from typing import Any

from celery.app.amqp import AMQP
from kombu.connection import Connection, ConnectionPool, PooledConnection
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from worker import ownership
from worker.envelope import Junk, open_envelope

log = logging.getLogger("fleet.transport")


class _Writer:
    """Transactions sent on one pooled connection whose replies are read later, in order."""

    def __init__(self, pool: Any, on_reset: Callable[[], None] | None = None) -> None:
        self.pool = pool
        self.on_reset = on_reset  # writes may be lost: the channel checks what it holds against what it delivered
        self.connection = pool.get_connection()
        self.connection.send_command("SCRIPT", "LOAD", ownership.ACK)  # acks go by EVALSHA: 1 KB less per message
        self.connection.read_response()
        self.owed: list[tuple[int, str]] = []  # (replies, what they answer) per transaction sent

    def send(self, what: str, *commands: tuple[Any, ...]) -> None:
        """Read what is owed, then send the commands as one MULTI/EXEC without waiting for its reply."""
        self.collect()
        packed = self.connection.pack_commands([("MULTI",), *commands, ("EXEC",)])
        try:
            self.connection.send_packed_command(packed, check_health=False)
        except BaseException:
            self._reset()
            raise
        self.owed.append((len(commands) + 2, what))

    def collect(self) -> None:
        """Read every reply owed; an error reply is logged with what it answered (the message stays usable).

        A connection error is raised, as kombu's own write would raise it, after forgetting the replies owed:
        the connection is reset and they will never come.
        """
        try:
            while self.owed:
                count, what = self.owed[0]
                for _ in range(count):
                    self._read(what)
                self.owed.pop(0)
        except BaseException:
            self._reset()
            raise

    def _read(self, what: str) -> None:
        # +OK (MULTI), +QUEUED per command, then EXEC's list, which holds a command's runtime error as a value.
        try:
            reply = self.connection.read_response()
        except ResponseError as exc:
            log.error("redis refused %s: %s", what, exc, extra={"category": "system"})
            if str(exc).startswith("NOSCRIPT") and self.on_reset is not None:
                self.on_reset()  # scripts flushed: what this ack left held is checked again
            return
        for item in reply if isinstance(reply, list) else ():
            if isinstance(item, Exception):
                log.error("redis refused %s: %s", what, item, extra={"category": "system"})

    def _reset(self) -> None:
        if self.owed:
            log.warning(
                "%d unacknowledged-message writes not confirmed (the broker connection failed), the last for %s",
                len(self.owed),
                self.owed[-1][1],
                extra={"category": "system"},
            )
        self.owed.clear()
        self.connection.disconnect()
        if self.on_reset is not None:
            self.on_reset()

    def close(self) -> None:
        """Read what is owed, then give the connection back to its pool."""
        try:
            self.collect()
        finally:
            self.pool.release(self.connection)


class QoS(kombu_redis.QoS):
    """kombu's acknowledgement emulation over the fetch's bookkeeping: acks not waited for, and only by the owner."""

    _writer: _Writer | None = None
    _forced = False  # within restore_visible: the visibility timeout gives back whatever it finds

    def _send(self, what: str, *commands: tuple[Any, ...]) -> None:
        pool = self.channel.pool
        if self._writer is not None and self._writer.pool is not pool:
            # The channel reconnected: its old pool, this connection included, was disconnected.
            self._writer._reset()
            self._writer = None
        if self._writer is None:
            self._writer = _Writer(pool, on_reset=self.channel._reconcile_later)
        self._writer.send(what, *commands)

    def collect(self) -> None:
        """Wait for every bookkeeping write sent so far."""
        if self._writer is not None:
            self._writer.collect()

    @cached_property
    def _keys(self) -> tuple[str, str]:
        # The raw commands bypass kombu's client, which prepends `global_keyprefix` to every key.
        prefix = self.channel.global_keyprefix or ""
        return prefix + self.unacked_index_key, prefix + self.unacked_key

    def append(self, message: Any, delivery_tag: Any) -> None:
        """Remember a delivered message; the fetch already wrote its bookkeeping (kombu's write for any other)."""
        if not self.channel._fetched.pop(delivery_tag, False):
            delivery = message.delivery_info
            raw = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
            index, messages = self._keys
            self._send(
                f"the delivery of message {delivery_tag}",
                ("ZADD", index, time(), delivery_tag),
                ("HSET", messages, delivery_tag, raw),
            )
        virtual.QoS.append(self, message, delivery_tag)

    def _forget(self, delivery_tag: Any) -> None:
        index, messages = self._keys
        channel = self.channel
        self._send(
            f"the acknowledgement of message {delivery_tag}",
            ("EVALSHA", _ACK_SHA, 4, messages, index, ownership.OWNER, channel._held_key, channel.sep,
             channel.consumer, delivery_tag),
        )  # fmt: skip

    def ack(self, delivery_tag: Any) -> None:
        """Forget an acknowledged message, unless another consumer owns it now (sent without waiting)."""
        self._forget(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        """kombu's reject: back to the front of its list, or forgotten."""
        if requeue:
            self.restore_by_tag(delivery_tag, leftmost=True)
        else:
            self._forget(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def restore_unacked(self, client: Any = None) -> None:
        """kombu's restore at shutdown, after the writes it depends on."""
        self.collect()
        if client is None and self.channel.connection.client is None:
            # Torn down after a lost broker: the channel's close gives its held messages back by ownership instead.
            self._delivered.clear()
            return
        super().restore_unacked(client)

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        """kombu's redelivery of messages past the visibility timeout (the last resort), whoever holds them."""
        self.collect()
        self._forced = True
        try:
            super().restore_visible(start, num, interval)
        finally:
            self._forced = False

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        """Give one message back to the list it came from; kombu's restore for bookkeeping it did not write."""
        self.collect()
        channel = self.channel
        index, messages = self._keys
        with channel.conn_or_acquire(client) as redis_client:
            keys = ownership.recover_keys(messages, index, channel._held_key)
            reason = "visibility_timeout" if self._forced else "requeued"
            done = redis_client.eval(ownership.GIVE_BACK, len(keys), *keys, channel.sep, channel.consumer,
                                     int(leftmost), reason, int(self._forced), tag)  # fmt: skip
            if done and done[0] == 0:
                super().restore_by_tag(tag, redis_client, leftmost)

    def close_writer(self) -> None:
        """Read the replies owed and return the writer's connection to the pool."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if writer.pool is self.channel._pool:
            writer.close()
        else:  # the channel reconnected meanwhile: its old pool, this connection included, is gone
            writer._reset()


_ACK_SHA = ownership.sha(ownership.ACK)
# Longest idle wait between fetches when no wake-up arrives (a lost notification, or none possible).
FALLBACK_POLL_S = 1.0
_INVALIDATE = "__redis__:invalidate"


class _Wake:
    """A RESP2 connection subscribed to Redis's key invalidations: readable when a producer pushed to a tracked list.

    The fetch connection asks Redis to track every key starting with a queue name (`CLIENT TRACKING ... BCAST`) and
    to send the invalidations here. Only the fact that something arrived matters, so the bytes are read and dropped.
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        connection.connect()
        connection.send_command("CLIENT", "ID")
        self.client_id = int(connection.read_response())
        connection.send_command("SUBSCRIBE", _INVALIDATE)
        connection.read_response()
        self.sock = connection._sock
        self.sock.setblocking(False)

    def drain(self) -> bool:
        """Read what arrived; False once the server closed the connection."""
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if not data:
                return False
            if len(data) < 65536:
                return True

    def close(self) -> None:
        """Drop the connection."""
        with contextlib.suppress(Exception):
            self.connection.disconnect()


class _OpenConnectionParams:
    """A connection error, not kombu's AttributeError, when a pool is asked for once the connection is torn down.

    Closing a channel after a lost broker restores its unacknowledged messages through a new pool; by then Celery may
    have closed the kombu connection, whose parameters are gone. kombu's AttributeError escaped the worker's
    reconnect and stopped it (seen at a Sentinel failover); a connection error lets Celery reconnect, and the
    messages come back by the fleet's recovery or the visibility timeout.
    """

    connection: Any

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection is closed")
        params: dict[str, Any] = super()._connparams(asynchronous)  # type: ignore[misc]
        return params


def _plain_connection_class(pool: Any) -> Any:
    # kombu wraps its connection class to hear of disconnects; the wake connection is handled here.
    for cls in pool.connection_class.__mro__:
        if cls.__module__.startswith("redis."):
            return cls
    return pool.connection_class


class Channel(_OpenConnectionParams, kombu_redis.Channel):
    """kombu's Redis channel with an atomic fetch, ownership and wake-ups, one reusable client, and junk kept."""

    QoS = QoS
    _sync_client: tuple[Any, Any] | None = None
    fleet_worker_lost_after_s: float = 30.0
    from_transport_options = (*kombu_redis.Channel.from_transport_options, "fleet_worker_lost_after_s")  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._fetched: dict[str, bool] = {}
        self._consumer: str | None = None
        self._wake: _Wake | None = None
        self._wake_retry_at = 0.0
        self._tracking: tuple[Any, ...] | None = None
        self._woken = True
        self._idle_until = 0.0
        self._reconcile = False
        self._script_loaded = False
        self._keys_for: dict[tuple[str, ...], list[str]] = {}
        self._no_ack: set[str] = set()
        super().__init__(*args, **kwargs)

    def basic_consume(self, queue: str, *args: Any, **kwargs: Any) -> Any:
        """kombu's consume; a queue read without acknowledgements (a control reply) leaves nothing held."""
        no_ack = kwargs["no_ack"] if "no_ack" in kwargs else bool(args and args[0])
        (self._no_ack.add if no_ack else self._no_ack.discard)(queue)
        return super().basic_consume(queue, *args, **kwargs)

    def _basic_cancel(self, consumer_tag: Any) -> Any:
        queue = self._tag_to_queue.get(consumer_tag)
        done = super()._basic_cancel(consumer_tag)
        if queue not in self._tag_to_queue.values():
            self._no_ack.discard(queue)
        return done

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        """kombu's get; without acknowledgements the fetch's bookkeeping is undone at once."""
        message = super().basic_get(queue, no_ack, **kwargs)
        if no_ack and message is not None and self._fetched.pop(message.delivery_tag, False):
            self.qos._forget(message.delivery_tag)
        return message

    @property
    def consumer(self) -> str:
        """This channel's name as a holder of messages; it beats from its first fetch until it closes."""
        if self._consumer is None:
            self._consumer = ownership.new_consumer_name()
            self._redis_options  # noqa: B018  (read now: at close the pool may be gone, and these give the messages back)
            index, messages = self.qos._keys
            settings = ownership.HeartSettings(float(self.fleet_worker_lost_after_s), self.sep, messages, index)
            ownership.heart(self._heart_client, settings).add(self._consumer, self)
        return self._consumer

    @property
    def _held_key(self) -> str:
        return ownership.HELD + self.consumer

    @cached_property
    def _fetch_script(self) -> str:
        return ownership.for_server(
            ownership.FETCH, str(self._create_client().info("server").get("redis_version", "0"))
        )

    @cached_property
    def _fetch_sha(self) -> str:
        return ownership.sha(self._fetch_script)

    @cached_property
    def _redis_options(self) -> tuple[Any, dict[str, Any]]:
        return _plain_connection_class(self.pool), {**self.pool.connection_kwargs, "health_check_interval": 0}

    def _heart_client(self) -> Any:
        import redis

        connection_class, kwargs = self._redis_options
        return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=connection_class, **kwargs))

    def _reconcile_later(self) -> None:
        self._reconcile = True

    def _fetch_keys(self, queues: list[str]) -> list[str]:
        found = self._keys_for.get(tuple(queues))
        if found is None:
            found = self._keys_for[tuple(queues)] = self._build_fetch_keys(queues)
        return found

    def _build_fetch_keys(self, queues: list[str]) -> list[str]:
        prefix = self.global_keyprefix or ""
        index, messages = prefix + self.unacked_index_key, prefix + self.unacked_key
        lists = [prefix + self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
        return [messages, index, ownership.OWNER, self._held_key, ownership.CONSUMERS, ownership.REDELIVERED, *lists]

    # The event loop's "BRPOP" slot now carries the fetch script: sent when a wake-up (or the fallback poll) is due.
    def _brpop_start(self, timeout: Any = None) -> None:
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        connection = self.client.connection
        if self._reconcile:
            self._give_back_undelivered(connection)
        self._ensure_wake(connection, queues)
        if not self._woken and monotonic() < self._idle_until:
            return
        self._woken = False
        keys = self._fetch_keys(queues)
        self._in_poll = connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]  # kombu declares it None
        if self._script_loaded:
            connection.send_command("EVALSHA", self._fetch_sha, len(keys), *keys, self.sep, self.consumer)
        else:  # EVAL files the script: the next fetches send its SHA only
            connection.send_command("EVAL", self._fetch_script, len(keys), *keys, self.sep, self.consumer)
            self._script_loaded = True

    def _brpop_read(self, **options: Any) -> bool:
        """Read the fetch's reply and deliver its message (junk is kept as a dead letter, its bookkeeping undone)."""
        connection = self.client.connection
        try:
            try:
                reply = connection.read_response()
            except self.connection_errors:
                self._reconcile = True  # the script may have run: what it recorded as held must not stay there
                connection.disconnect()  # the next poll reconnects
                raise
            except ResponseError as exc:
                if str(exc).startswith("NOSCRIPT"):  # Redis restarted or flushed its scripts: send the text again
                    self._script_loaded, self._woken = False, True
                    raise Empty() from None
                log.error("redis refused the fetch: %s", exc, extra={"category": "system"})
                self._idle_until = monotonic() + FALLBACK_POLL_S
                raise Empty() from None
            if not reply:
                self._idle_until = monotonic() + FALLBACK_POLL_S
                raise Empty()
            return self._deliver_fetched(reply)
        finally:
            self._in_poll = None  # type: ignore[assignment]  # kombu's attribute is typed bool; kombu sets None too
            flush = getattr(self, "_flush_brpop_reauth", None)  # kombu 5.6+: a pending re-auth, now the line is idle
            if flush is not None:
                flush()

    def _deliver_fetched(self, reply: list[Any]) -> bool:
        key, item, tag, redelivered = bytes_to_str(reply[0]), reply[1], bytes_to_str(reply[2]), reply[3]
        queue = key.removeprefix(self.global_keyprefix or "").rsplit(self.sep, 1)[0]
        self._queue_cycle.rotate(queue)
        self._woken = True  # a message came: the next one may be waiting too
        envelope = open_envelope(item)
        if isinstance(envelope, Junk):
            _keep(envelope, item, queue, key)
            if tag:
                self.qos._forget(tag)
            raise Empty()
        if redelivered:
            _mark_redelivered(envelope)
        if tag:
            self._record(tag, envelope, queue)
        self.connection._deliver(envelope, queue)
        return True

    def _record(self, tag: str, envelope: dict[str, Any], queue: str) -> None:
        if queue in self._no_ack:  # never acknowledged, so never to be given back: a reply, not a task
            self.qos._forget(tag)
        elif envelope["properties"]["delivery_tag"] == tag:
            self._fetched[tag] = True
        else:  # a forged envelope fooled the script's quick read: kombu's own write records the real tag
            self.qos._forget(tag)

    def _get(self, queue: str) -> Any:  # type: ignore[override]  # as kombu's Redis channel's own
        """kombu's synchronous get, through the fetch script (priority order), skipping junk after keeping it."""
        with self.conn_or_acquire() as client:
            while True:
                keys = self._fetch_keys([queue])
                reply = client.eval(self._fetch_script, len(keys), *keys, self.sep, self.consumer)
                if not reply:
                    self._maybe_update_queues_expire(client, queue)
                    raise Empty()
                key, item, tag = bytes_to_str(reply[0]), reply[1], bytes_to_str(reply[2])
                envelope = open_envelope(item)
                if isinstance(envelope, Junk):
                    _keep(envelope, item, queue, key)
                    if tag:
                        self.qos._forget(tag)
                    continue
                if reply[3]:
                    _mark_redelivered(envelope)
                if tag:
                    self._record(tag, envelope, queue)
                self._maybe_update_queues_expire(client, queue)
                return envelope

    def _give_back_undelivered(self, connection: Any) -> None:
        """After a lost connection: give back what this consumer holds in Redis but was never delivered here."""
        self.qos.collect()
        if connection._sock is None:
            connection.connect()
        keep = [str(tag) for tag in self.qos._delivered]
        index, messages = self.qos._keys
        keys = ownership.recover_keys(messages, index)
        connection.send_command("EVAL", ownership.RECOVER, len(keys), *keys, self.sep, self.consumer, 0,
                                "reconnected", self.consumer, *keep)  # fmt: skip
        ownership.report_returned(ownership.count_returned(connection.read_response()), "reconnected")
        self._reconcile = False

    def _ensure_wake(self, connection: Any, queues: list[str]) -> None:
        """Keep the wake-up connection and the fetch connection's tracking in place (again after a reconnect)."""
        if self._wake is None:
            if monotonic() < self._wake_retry_at:
                return
            try:
                kwargs = {**self.pool.connection_kwargs, "protocol": 2, "health_check_interval": 0}
                for name in [k for k in kwargs if k.startswith(("maint_notifications", "oss_cluster_maint"))]:
                    del kwargs[name]  # RESP3 only; a RESP2 connection refuses them
                self._wake = _Wake(_plain_connection_class(self.pool)(**kwargs))
            except Exception as exc:  # noqa: BLE001  (no wake-ups: the fallback poll still fetches)
                self._wake_retry_at = monotonic() + 10 * FALLBACK_POLL_S
                log.warning("no wake-ups from Redis, polling every %s s: %s", FALLBACK_POLL_S, exc,
                            extra={"category": "system"})  # fmt: skip
                return
            self.connection.cycle._register(self, self._wake, "WAKE")
        state = (id(connection._sock), self._wake.client_id, tuple(sorted(queues)))
        if state == self._tracking:
            return
        prefixes = _disjoint_prefixes([(self.global_keyprefix or "") + q for q in queues])
        if connection._sock is None:
            connection.connect()
        connection.send_command("CLIENT", "TRACKING", "OFF")
        connection.read_response()
        options = [part for prefix in prefixes for part in ("PREFIX", prefix)]
        connection.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", self._wake.client_id, "BCAST", *options,
                                "NOLOOP")  # fmt: skip
        connection.read_response()
        self._tracking = state
        self._woken = True  # anything pushed before tracking began is fetched now

    def _wake_read(self) -> None:
        """The wake-up connection is readable: drop what arrived and fetch at the next turn of the loop."""
        wake = self._wake
        if wake is None:
            return
        self._woken = True
        if not wake.drain():
            self._drop_wake()
        raise Empty()

    def _drop_wake(self) -> None:
        wake, self._wake, self._tracking = self._wake, None, None
        if wake is None:
            return
        cycle = self.connection.cycle if self.connection else None
        if cycle is not None:
            sock = cycle._chan_to_sock.pop((self, wake, "WAKE"), None)
            if sock is not None:
                fd = sock.fileno()
                if cycle._fd_to_chan.get(fd) == (self, "WAKE"):
                    del cycle._fd_to_chan[fd]
                with contextlib.suppress(Exception):
                    cycle._unregister_from_poll(fd)
        wake.close()

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        if self._sync_client is None or self._sync_client[0] is not pool:
            self._sync_client = (pool, super()._create_client(asynchronous=False))
        return self._sync_client[1]

    def close(self) -> None:
        """Finish the bookkeeping writes, let kombu give back what was not acknowledged, then stop beating."""
        qos = self._qos
        if isinstance(qos, QoS) and not self.closed:
            try:
                qos.close_writer()
            except Exception as exc:  # noqa: BLE001  (closing after a lost connection: kombu's own close still runs)
                log.warning("bookkeeping writes not confirmed at close: %s", exc, extra={"category": "system"})
        was_closed = self.closed
        keys = qos._keys if isinstance(qos, QoS) else (self.unacked_index_key, self.unacked_key)
        self._drop_wake()
        try:
            super().close()
        finally:  # even when kombu's restore found the connection gone: the heartbeat must stop, the messages return
            if self._consumer is not None and not was_closed:
                self._retire(self._consumer, *keys)

    def _retire(self, consumer: str, index: str, messages: str) -> None:
        ownership.retire(consumer)
        try:
            client = self._heart_client()
            try:
                ownership.recover(client, sep=self.sep, lost_after_s=0, reason="shutdown", consumer=consumer,
                                  unacked=messages, unacked_index=index)  # fmt: skip
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001  (Redis gone: its messages come back once it counts as lost)
            log.warning("held messages of %s left to recovery: %s", consumer, exc, extra={"category": "reliability"})


def _disjoint_prefixes(names: list[str]) -> tuple[str, ...]:
    # Redis refuses overlapping tracking prefixes: `ledger` already covers `ledger-x` and `ledger:5`.
    kept: list[str] = []
    for name in sorted(set(names), key=len):
        if not any(name.startswith(prefix) for prefix in kept):
            kept.append(name)
    return tuple(sorted(kept))


def _mark_redelivered(envelope: dict[str, Any]) -> None:
    # What kombu's own restore sets, so that Celery skips a task that already succeeded.
    headers, properties = envelope.get("headers"), envelope.get("properties")
    if isinstance(headers, dict):
        headers["redelivered"] = True
    if isinstance(properties, dict) and isinstance(properties.get("delivery_info"), dict):
        properties["delivery_info"]["redelivered"] = True


class _Poller(kombu_redis.MultiChannelPoller):
    """kombu's poller, also reading each channel's wake-up connection, and never waiting past the fallback poll."""

    def on_readable(self, fileno: int) -> None:
        """Wake-ups are read whatever the credit (an unread one would spin the loop); the rest as kombu does."""
        chan_type = self._fd_to_chan.get(fileno)
        if chan_type is not None and chan_type[1] == "WAKE":
            chan_type[0]._wake_read()
            return
        super().on_readable(fileno)

    def get(self, callback: Any, timeout: float | None = None) -> None:
        """kombu's synchronous wait, bounded by the fallback poll."""
        super().get(callback, FALLBACK_POLL_S if timeout is None else min(timeout, FALLBACK_POLL_S))


def _keep(junk: Junk, raw: bytes, queue: str, key: str) -> None:
    from worker.dead_letters import keep_junk  # the database layer, loaded only once junk arrives

    try:
        keep_junk(junk, raw, queue, key)
    except Exception:  # keeping junk must never stop the consumer; the line says what was lost
        log.exception("junk from %s (%s, %d bytes) not kept", key, junk.reason, len(raw), extra={"category": "system"})


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel and poller above."""

    Channel = Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cycle = _Poller()  # type: ignore[assignment]  # kombu's cycle, polled the fleet's way


class SentinelChannel(_OpenConnectionParams, kombu_redis.SentinelChannel):
    """kombu's Sentinel channel (its own fetch: no ownership), surviving a close after the master died."""


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport with the channel above."""

    Channel = SentinelChannel


def _fleet_transport(chosen: Any) -> Any:
    if chosen is kombu_redis.SentinelTransport:
        return SentinelTransport
    return Transport if chosen is kombu_redis.Transport else chosen


class FleetConnection(Connection):
    """kombu's Connection that picks the fleet's Redis transport where kombu would pick its own."""

    def get_transport_cls(self) -> Any:
        """The fleet's Transport for redis://, rediss:// and redis+socket://; kombu's choice otherwise."""
        return _fleet_transport(super().get_transport_cls())

    def Pool(self, limit: int | None = None, **kwargs: Any) -> Any:
        """A pool of connections that use the same transport (the producers' `app.pool`)."""
        return _ConnectionPool(self, limit=limit, **kwargs)


class _PooledConnection(PooledConnection):
    def get_transport_cls(self) -> Any:
        return _fleet_transport(super().get_transport_cls())


class _ConnectionPool(ConnectionPool):
    def new(self) -> Any:
        return _PooledConnection(self, **dict(self.connection._info(resolve=False)))


class FleetAMQP(AMQP):  # type: ignore[misc]
    """Celery's AMQP helper, making its connections with FleetConnection."""

    Connection = FleetConnection
