"""The fleet's transport as it was before ownership (#20): BRPOP, then the bookkeeping written without waiting.
Frozen here only so that `bench.transport` measures the current transport against it in the same run."""

from __future__ import annotations

import logging
from functools import cached_property
from queue import Empty
from time import time
from typing import Any

from celery.app.amqp import AMQP
from kombu import Connection
from kombu.connection import ConnectionPool, PooledConnection
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps
from redis.exceptions import ResponseError

from worker.envelope import Junk, open_envelope

log = logging.getLogger("fleet.transport")


class _Writer:
    """Transactions sent on one pooled connection whose replies are read later, in order."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.connection = pool.get_connection()
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

    def close(self) -> None:
        """Read what is owed, then give the connection back to its pool."""
        try:
            self.collect()
        finally:
            self.pool.release(self.connection)


class QoS(kombu_redis.QoS):
    """kombu's acknowledgement emulation, with its two writes per message not waited for."""

    _writer: _Writer | None = None

    def _send(self, what: str, *commands: tuple[Any, ...]) -> None:
        pool = self.channel.pool
        if self._writer is not None and self._writer.pool is not pool:
            # The channel reconnected: its old pool, this connection included, was disconnected.
            self._writer._reset()
            self._writer = None
        if self._writer is None:
            self._writer = _Writer(pool)
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
        """Record a delivered message for redelivery (kombu's writes, sent without waiting)."""
        delivery = message.delivery_info
        raw = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        index, messages = self._keys
        self._send(
            f"the delivery of message {delivery_tag}",
            ("ZADD", index, time(), delivery_tag),
            ("HSET", messages, delivery_tag, raw),
        )
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: Any) -> None:
        """Forget an acknowledged message (kombu's writes, sent without waiting)."""
        index, messages = self._keys
        self._send(
            f"the acknowledgement of message {delivery_tag}",
            ("ZREM", index, delivery_tag),
            ("HDEL", messages, delivery_tag),
        )
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        """kombu's reject, after the writes it depends on."""
        self.collect()
        super().reject(delivery_tag, requeue=requeue)

    def restore_unacked(self, client: Any = None) -> None:
        """kombu's restore at shutdown, after the writes it depends on."""
        self.collect()
        super().restore_unacked(client)

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        """kombu's redelivery of messages past the visibility timeout, after the writes it depends on."""
        self.collect()
        super().restore_visible(start, num, interval)

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        """kombu's restore of one message, after the writes it depends on."""
        self.collect()
        super().restore_by_tag(tag, client, leftmost)

    def close_writer(self) -> None:
        """Read the replies owed and return the writer's connection to the pool."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if writer.pool is self.channel._pool:
            writer.close()
        else:  # the channel reconnected meanwhile: its old pool, this connection included, is gone
            writer._reset()


class Channel(kombu_redis.Channel):
    """kombu's Redis channel with one reusable client, the QoS above, and junk kept instead of raised."""

    QoS = QoS
    _sync_client: tuple[Any, Any] | None = None

    def _brpop_read(self, **options: Any) -> bool:
        """kombu's read of a BRPOP reply, with the popped bytes checked before they are delivered.

        Junk (bytes that are no kombu envelope) is kept as a dead letter, and the loop goes on as after a BRPOP
        that timed out: kombu's own read raised it into the worker's event loop, which exited.
        """
        try:
            try:
                reply = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next poll reconnects
                raise
            if not reply:
                raise Empty()
            key, item = reply
            queue = bytes_to_str(key).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            self._deliver_or_keep(item, queue, bytes_to_str(key))
            return True
        finally:
            self._in_poll = None
            flush = getattr(self, "_flush_brpop_reauth", None)  # kombu 5.6+: a pending re-auth, now the line is idle
            if flush is not None:
                flush()

    def _get(self, queue: str) -> Any:
        """kombu's synchronous get (RPOP in priority order), skipping junk after keeping it."""
        with self.conn_or_acquire() as client:
            for priority in self.priority_steps:
                key = self._q_for_pri(queue, priority)
                while (item := client.rpop(key)) is not None:
                    envelope = open_envelope(item)
                    if not isinstance(envelope, Junk):
                        self._maybe_update_queues_expire(client, queue)
                        return envelope
                    _keep(envelope, item, queue, key)
            self._maybe_update_queues_expire(client, queue)
            raise Empty()

    def _deliver_or_keep(self, item: bytes, queue: str, key: str) -> None:
        envelope = open_envelope(item)
        if isinstance(envelope, Junk):
            _keep(envelope, item, queue, key)
            raise Empty()
        self.connection._deliver(envelope, queue)

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        if self._sync_client is None or self._sync_client[0] is not pool:
            self._sync_client = (pool, super()._create_client(asynchronous=False))
        return self._sync_client[1]

    def close(self) -> None:
        """Finish the bookkeeping writes before kombu restores what was not acknowledged and disconnects."""
        qos = self._qos
        if isinstance(qos, QoS) and not self.closed:
            try:
                qos.close_writer()
            except Exception as exc:  # noqa: BLE001  (closing after a lost connection: kombu's own close still runs)
                log.warning("bookkeeping writes not confirmed at close: %s", exc, extra={"category": "system"})
        super().close()


def _keep(junk: Junk, raw: bytes, queue: str, key: str) -> None:
    from worker.dead_letters import keep_junk  # the database layer, loaded only once junk arrives

    try:
        keep_junk(junk, raw, queue, key)
    except Exception:  # keeping junk must never stop the consumer; the line says what was lost
        log.exception("junk from %s (%s, %d bytes) not kept", key, junk.reason, len(raw), extra={"category": "system"})


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel above."""

    Channel = Channel


def _fleet_transport(chosen: Any) -> Any:
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


class FleetAMQP(AMQP):
    """Celery's AMQP helper, making its connections with FleetConnection."""

    Connection = FleetConnection
