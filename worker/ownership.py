"""Who holds which message, in Redis: the atomic fetch, ownership, heartbeats and the return of a lost consumer's messages.

A consumer is one consuming channel of one worker process (`<node>#<pid>.<n>`). Its fetch is one Lua call that pops
the first message of its priority lists and, in the same call, writes kombu's own bookkeeping (`unacked` hash and
`unacked_index` zset, so Celery's ack, reject, restore and the visibility timeout work unchanged) and the ownership:
`fleet:owner` (tag -> owner and source list) and `fleet:held:<consumer>` (tags in fetch order). A SIGKILL at any instant
leaves each message either in its list or recorded as held: never neither.

Each process beats for its consumers (`fleet:consumers`, a zset of Redis times) from a thread of its own, so a long
task never stops it. Any live process returns the messages of consumers silent for `lost_after` seconds to the list
they came from, in their original order, in one script call: exactly once, whoever else tries at the same time.
An acknowledgement deletes the bookkeeping only while its consumer still owns the message: a partitioned worker's late
ack cannot erase the record of the worker that now holds it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("fleet.reliability")

CONSUMERS = "fleet:consumers"  # zset: consumer -> Redis time of its last heartbeat
OWNER = "fleet:owner"  # hash: delivery tag -> "<suffix length>\t<consumer>\t<source list>"
HELD = "fleet:held:"  # + consumer: zset of delivery tags by fetch time
REDELIVERED = "fleet:redelivered"  # set: tags given back, marked redelivered when fetched again
RESTORED = "fleet:restored:"  # + UTC date: hash "<queue>\t<reason>" -> messages given back that day

# Redis time in seconds, and the return of one held message to the list it came from. kombu's `unacked` value is
# '[' + message + ',' + exchange + ',' + routing key + ']', as the fetch wrote it: the message is cut out unchanged
# (no JSON round trip in Lua, which would turn big integers into floats and empty lists into objects).
_COMMON = """
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function owner_of(tag)
  local record = redis.call('HGET', KEYS[3], tag)
  if not record then return nil end
  local cut, who, source = string.match(record, '^(%d+)\\t([^\\t]*)\\t(.*)$')
  return who, tonumber(cut), source
end
local function give_back(tag, cut, source, leftmost, reason, queue)
  local value = redis.call('HGET', KEYS[1], tag)
  redis.call('HDEL', KEYS[1], tag)
  redis.call('ZREM', KEYS[2], tag)
  redis.call('HDEL', KEYS[3], tag)
  if not value then return 0 end
  local message = string.sub(value, 2, #value - cut)
  if leftmost then redis.call('LPUSH', source, message) else redis.call('RPUSH', source, message) end
  redis.call('SADD', KEYS[6], tag)
  redis.call('HINCRBY', KEYS[7], queue .. '\\t' .. reason, 1)
  redis.call('EXPIRE', KEYS[7], 8 * 86400)
  return 1
end
local function queue_of(source)
  local start = #source - #ARGV[1]
  if start > 1 and string.sub(source, start, #source - 1) == ARGV[1] and string.find(string.sub(source, -1), '^%d$') then
    return string.sub(source, 1, start - 1)
  end
  return source
end
"""

# KEYS: unacked, unacked_index, owner, held:<me>, consumers, redelivered, lists... ARGV: sep, consumer.
# Returns nil, or {list, message, tag or '', redelivered 0/1}.
FETCH = (
    _COMMON
    + """
-- A key of the wrong type would fail a write after the pop, and a script's earlier writes are not undone.
local kinds = {'hash', 'zset', 'hash', 'zset', 'zset', 'set'}
for i = 1, 6 do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= 'none' and kind ~= kinds[i] then
    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. kind .. ', not a ' .. kinds[i])
  end
end
-- kombu writes `properties` last: decoding the envelope's tail alone spares a batch's megabytes of body.
-- Whatever this finds, the transport checks the tag against the envelope it parses itself.
local function properties_of(item)
  local at, from = nil, math.max(1, #item - 4096)
  while true do
    local i = string.find(item, '"properties"', from, true)
    if not i then break end
    at, from = i, i + 1
  end
  if at then
    local ok, tail = pcall(cjson.decode, '{' .. string.sub(item, at))
    if ok and type(tail) == 'table' and type(tail['properties']) == 'table' then return tail['properties'] end
  end
  local ok, envelope = pcall(cjson.decode, item)
  if ok and type(envelope) == 'table' then return envelope['properties'] end
  return nil
end
local t = now()
redis.call('ZADD', KEYS[5], t, ARGV[2])
for i = 7, #KEYS do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    local properties = properties_of(item)
    local tag = type(properties) == 'table' and properties['delivery_tag']
    local info = type(properties) == 'table' and properties['delivery_info']
    if type(tag) ~= 'string' or type(info) ~= 'table' or type(info['exchange']) ~= 'string'
        or type(info['routing_key']) ~= 'string' then
      return {KEYS[i], item, '', 0}  -- junk: the transport keeps it as a dead letter
    end
    local suffix = ',' .. cjson.encode(info['exchange']) .. ',' .. cjson.encode(info['routing_key']) .. ']'
    redis.call('HSET', KEYS[1], tag, '[' .. item .. suffix)
    redis.call('ZADD', KEYS[2], t, tag)
    redis.call('HSET', KEYS[3], tag, #suffix .. '\\t' .. ARGV[2] .. '\\t' .. KEYS[i])
    redis.call('ZADD', KEYS[4], t, tag)
    return {KEYS[i], item, tag, redis.call('SREM', KEYS[6], tag)}
  end
end
return nil
"""
)

# KEYS: unacked, unacked_index, owner, held:<me>. ARGV: sep, consumer, tag. Kombu's ack, while the consumer owns it.
ACK = """
redis.call('ZREM', KEYS[4], ARGV[3])
local record = redis.call('HGET', KEYS[3], ARGV[3])
if record and string.match(record, '^%d+\\t([^\\t]*)\\t') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[3])
return 1
"""

# KEYS: unacked, unacked_index, owner, held:<me>, consumers, redelivered, restored:<date>.
# ARGV: sep, consumer, leftmost 0/1, reason, force 0/1, tags...
# Per tag: 1 given back, 0 not held by anyone (legacy bookkeeping: kombu restores it), 2 another consumer owns it.
GIVE_BACK = (
    _COMMON
    + """
local out = {}
for i = 6, #ARGV do
  local tag = ARGV[i]
  local who, cut, source = owner_of(tag)
  redis.call('ZREM', KEYS[4], tag)
  if not who then
    out[#out + 1] = 0
  elseif who ~= ARGV[2] and ARGV[5] ~= '1' then
    out[#out + 1] = 2
  else
    if who ~= ARGV[2] then redis.call('ZREM', 'fleet:held:' .. who, tag) end
    give_back(tag, cut, source, ARGV[3] == '1', ARGV[4], queue_of(source))
    out[#out + 1] = 1
  end
end
return out
"""
)

# KEYS: unacked, unacked_index, owner, held:<me> (unused), consumers, redelivered, restored:<date>.
# ARGV: sep, consumer to spare ('' for none), lost after (s), reason, only consumer ('' for every lost one),
# tags to keep (delivered and not acknowledged by the sparing consumer)...
# Gives back, newest first so that RPUSH leaves the oldest next, the messages of lost consumers (or of the one named),
# and drops their records. Returns {consumer, queue, tag, ...} for what was given back.
RECOVER = (
    _COMMON
    + """
local victims
if ARGV[5] ~= '' then
  victims = {ARGV[5]}
else
  victims = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. (now() - tonumber(ARGV[3])), 'LIMIT', 0, 100)
end
local keep = {}
for i = 6, #ARGV do keep[ARGV[i]] = true end
local out = {}
for _, consumer in ipairs(victims) do
  local held = 'fleet:held:' .. consumer
  local tags = redis.call('ZRANGE', held, 0, -1)
  for i = #tags, 1, -1 do
    local tag = tags[i]
    if not (consumer == ARGV[2] and keep[tag]) then
      redis.call('ZREM', held, tag)
      local who, cut, source = owner_of(tag)
      if who == consumer then
        local queue = queue_of(source)
        if give_back(tag, cut, source, false, ARGV[4], queue) == 1 then
          out[#out + 1] = consumer
          out[#out + 1] = queue
          out[#out + 1] = tag
        end
      end
    end
  end
  if consumer ~= ARGV[2] then
    redis.call('DEL', held)
    redis.call('ZREM', KEYS[5], consumer)
  end
end
return out
"""
)

# KEYS: consumers. ARGV: consumers of this process.
HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 1, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
return tostring(now)
"""


def sha(script: str) -> str:
    """The SHA1 Redis files a script under (EVALSHA sends this instead of the text)."""
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


def for_server(script: str, version: str) -> str:
    """The script as sent to a server of this version: from Redis 7, flagged as writing, so that a full server
    (maxmemory, noeviction) refuses it before it runs instead of failing a write after the pop."""
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    return "#!lua\n" + script if major >= 7 else script


def restored_key(day: datetime | None = None) -> str:
    """The hash counting the messages given back on a UTC day."""
    return RESTORED + (day or datetime.now(UTC)).strftime("%Y-%m-%d")


def recover_keys(unacked: str, unacked_index: str, held: str = HELD) -> list[str]:
    """KEYS of GIVE_BACK and RECOVER."""
    return [unacked, unacked_index, OWNER, held, CONSUMERS, REDELIVERED, restored_key()]


def decode(value: Any) -> str:
    """A Redis reply as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def count_returned(reply: list[Any]) -> Counter[tuple[str, str]]:
    """(consumer, queue) -> messages, from RECOVER's flat reply."""
    items = [decode(v) for v in reply or []]
    return Counter((items[i], items[i + 1]) for i in range(0, len(items), 3))


def recover(
    client: Any,
    *,
    sep: str,
    lost_after_s: float,
    reason: str,
    consumer: str = "",
    unacked: str = "unacked",
    unacked_index: str = "unacked_index",
) -> Counter[tuple[str, str]]:
    """Give back the messages of consumers silent for `lost_after_s` (or of the one named); log and count them."""
    reply = client.eval(RECOVER, 7, *recover_keys(unacked, unacked_index), sep, "", lost_after_s, reason, consumer)
    returned = count_returned(reply)
    report_returned(returned, reason)
    return returned


def report_returned(returned: Counter[tuple[str, str]], reason: str) -> None:
    """One log line per consumer and queue, and the Prometheus counter (where this process exports metrics)."""
    for (consumer, queue), count in sorted(returned.items()):
        log.warning(
            "returned %d messages held by %s to queue %s (%s)",
            count,
            consumer,
            queue,
            reason,
            extra={"category": "reliability", "consumer": consumer, "queue": queue, "reason": reason},
        )
        try:
            from worker.metrics import MESSAGES_RESTORED

            MESSAGES_RESTORED.labels(queue=queue, reason=reason).inc(count)
        except Exception:  # a metrics failure must not stop the recovery thread
            log.debug("restored-messages counter not updated", exc_info=True)


_base_name = socket.gethostname()
_sequence = iter(range(1, 1 << 62))
# Only worker processes give back other consumers' messages; a CLI, Flower or the API that consumes (control
# replies) beats for its own consumers but never judges others.
_recovers = False


def set_node_name(name: str) -> None:
    """This process is the Celery worker `name@host`: its consumers carry that name and it recovers lost ones."""
    global _base_name, _recovers
    _base_name, _recovers = name, True


def new_consumer_name() -> str:
    """A name no other consuming channel, here or elsewhere, has: node, process id and a counter."""
    return f"{_base_name}#{os.getpid()}.{next(_sequence)}"


def node_of(consumer: str) -> str:
    """The worker a consumer belongs to (its node name)."""
    return consumer.rsplit("#", 1)[0]


@dataclass
class HeartSettings:
    """How often to beat and when a silent consumer counts as lost."""

    lost_after_s: float
    sep: str
    unacked: str
    unacked_index: str

    @property
    def beat_s(self) -> float:
        """A third of the grace, at most 5 s: two beats may be missed before a consumer counts as lost."""
        return max(0.2, min(5.0, self.lost_after_s / 3))


class Heart:
    """One thread per process: beats for its live consumers and gives back the messages of lost ones."""

    def __init__(self, client: Any, settings: HeartSettings) -> None:
        self.client, self.settings = client, settings
        self.pid = os.getpid()
        self.consumers: dict[str, weakref.ref[Any]] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.failing_since: float | None = None
        self.thread = threading.Thread(target=self._run, name="fleet-heartbeat", daemon=True)
        self.thread.start()

    def add(self, consumer: str, channel: Any) -> None:
        """Beat for this consumer while its channel lives and is open."""
        with self.lock:
            self.consumers[consumer] = weakref.ref(channel)
        self.beat()

    def discard(self, consumer: str) -> None:
        """Stop beating for it: its messages come back once it counts as lost."""
        with self.lock:
            self.consumers.pop(consumer, None)

    def live(self) -> list[str]:
        """Consumers whose channel still exists and is open."""
        with self.lock:
            for name, ref in list(self.consumers.items()):
                channel = ref()
                if channel is None or getattr(channel, "closed", False):
                    del self.consumers[name]
            return list(self.consumers)

    def beat(self) -> None:
        """Record now as the last sign of life of every live consumer of this process."""
        names = self.live()
        if names:
            self.client.eval(HEARTBEAT, 1, CONSUMERS, *names)

    def _run(self) -> None:
        while not self.stopped.wait(self.settings.beat_s):
            try:
                self.beat()
                s = self.settings
                if _recovers:
                    recover(self.client, sep=s.sep, lost_after_s=s.lost_after_s, reason="worker_lost",
                            unacked=s.unacked, unacked_index=s.unacked_index)  # fmt: skip
                if self.failing_since is not None:
                    log.info("heartbeats reach Redis again", extra={"category": "reliability"})
                self.failing_since = None
            except Exception as exc:  # noqa: BLE001  (Redis down: the next beat tries again)
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                    log.warning("heartbeat failed: %s", exc, extra={"category": "reliability"})


_heart: Heart | None = None
_heart_lock = threading.Lock()


def heart(client_factory: Any, settings: HeartSettings) -> Heart:
    """This process's heart, started on first use (again in a forked child: threads do not survive a fork)."""
    global _heart
    with _heart_lock:
        if _heart is None or _heart.pid != os.getpid():
            _heart = Heart(client_factory(), settings)
        return _heart


def stop_heart() -> None:
    """Stop this process's heartbeat thread (a process that ends its use of Redis before it exits: a test session);
    a consumer named after this starts a new one."""
    global _heart
    with _heart_lock:
        if _heart is not None:
            _heart.stopped.set()
            _heart = None


def retire(consumer: str) -> None:
    """Stop beating for a consumer of this process (its channel closed)."""
    with _heart_lock:
        if _heart is not None and _heart.pid == os.getpid():
            _heart.discard(consumer)


def holdings(client: Any, lost_after_s: float, unacked_index: str = "unacked_index") -> list[dict[str, Any]]:
    """Every consumer that holds messages or beats: its worker, heartbeat age, whether it counts as lost, and each
    message it holds (queue, age since fetched), oldest first. What `agent status` shows."""
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    beats = {decode(name): float(score) for name, score in client.zrange(CONSUMERS, 0, -1, withscores=True)}
    held: dict[str, list[str]] = {}
    for key in client.scan_iter(match=HELD + "*", count=1000):
        held[decode(key).removeprefix(HELD)] = [decode(tag) for tag in client.zrange(key, 0, -1)]
    out = []
    for consumer in sorted(set(beats) | set(held)):
        tags = held.get(consumer, [])
        owners = client.hmget(OWNER, tags) if tags else []
        fetched = client.zmscore(unacked_index, tags) if tags else []
        messages = []
        for tag, owner, at in zip(tags, owners, fetched, strict=True):
            if owner is None or at is None:
                continue  # acknowledged meanwhile
            source = decode(owner).split("\t", 2)[2]
            messages.append({"tag": tag, "list": source, "age_s": round(now - float(at), 1)})
        beat = beats.get(consumer)
        silent = None if beat is None else round(now - beat, 1)
        out.append({
            "consumer": consumer,
            "worker": node_of(consumer),
            "last_heartbeat_s": silent,
            "lost": silent is None or silent > lost_after_s,
            "messages": messages,
        })  # fmt: skip
    return out
