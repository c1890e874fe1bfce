"""The agents package's ports, wired to the fleet: the Redis progress stream and tool cache, read-only SQL, the ledger."""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from agents import snapshot
from agents.config import DEFAULT_TABLES, AgentsConfig, load_config
from agents.errors import AgentError, ToolError, ToolTransientError
from agents.models import AGENT_QUEUE_PATTERN, RunRecord, WorkflowRequest
from agents.profiles import Profile, make_profile
from agents.runner import Ports
from agents.tools import Registry, Tool, ToolContext, default_registry
from agents.tools.sql import sqlite_authorizer
from worker.agents import breakers
from worker.agents.store import SqlRunStore
from worker.constants import REDIS_KEY_PREFIX
from worker.db import make_engine, normalise_url
from worker.redis_client import get_redis
from worker.settings import get_settings

log = logging.getLogger("fleet.agents")
STREAM_MAXLEN = 1000
STREAM_TTL_S = 7 * 24 * 3600
TERMINAL_EVENT = "run_finished"


def stream_key(run_id: str) -> str:
    """The Redis stream holding a run's progress events."""
    return f"{REDIS_KEY_PREFIX}agents:run:{run_id}:events"


class RedisEvents:
    """Progress events appended to a Redis stream per run (XADD); ids resume a reader (Last-Event-ID)."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.client = client or get_redis()

    def publish(self, run_id: str, event: dict[str, Any]) -> None:
        """Append the event; a Redis hiccup loses progress, never the run."""
        body = json.dumps({"run_id": run_id, "at": time.time(), **event}, ensure_ascii=False, default=str)
        try:
            # One round trip per event; the key's expiry is set once, with the run's last event.
            if event.get("type") == TERMINAL_EVENT:
                pipe = self.client.pipeline(transaction=False)
                pipe.xadd(stream_key(run_id), {"event": body}, maxlen=STREAM_MAXLEN, approximate=True)
                pipe.expire(stream_key(run_id), STREAM_TTL_S)
                pipe.execute()
            else:
                self.client.xadd(stream_key(run_id), {"event": body}, maxlen=STREAM_MAXLEN, approximate=True)
        except redis.RedisError as exc:
            log.warning("progress event lost: %s", exc, extra={"category": "agent", "run_id": run_id})

    def read(self, run_id: str, last_id: str = "0", block_ms: int = 1000) -> list[tuple[str, dict[str, Any]]]:
        """Events after `last_id`, waiting up to block_ms for the first one."""
        reply: Any = self.client.xread({stream_key(run_id): last_id}, block=block_ms, count=100)
        return [
            (event_id, json.loads(fields["event"])) for _key, entries in reply or [] for event_id, fields in entries
        ]

    def follow(self, run_id: str, last_id: str = "0", timeout_s: float = 300.0) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield events (id, event) until the run finishes or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event_id, payload in self.read(run_id, last_id):
                last_id = event_id
                yield event_id, payload
                if payload.get("type") == TERMINAL_EVENT:
                    return


class RedisCache:
    """Tool results in Redis with a TTL; a Redis failure is a miss."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self.client = client or get_redis()

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached output, None on a miss."""
        try:
            raw = self.client.get(key)
        except redis.RedisError:
            return None
        return json.loads(raw) if raw else None

    def set(self, key: str, value: dict[str, Any], ttl_s: int) -> None:
        """Cache the output for ttl_s seconds."""
        try:
            self.client.set(key, json.dumps(value, ensure_ascii=False, default=str), ex=ttl_s)
        except redis.RedisError as exc:
            log.warning("tool cache write failed: %s", exc, extra={"category": "agent"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


# A statement's SQL text is at most the tool's 4000 characters plus the LIMIT added; this leaves room.
SQL_TEXT_LIMIT = 100_000


def _lock_down(connection: sqlite3.Connection, tables: tuple[str, ...], max_bytes: int) -> None:
    """Read-only, bounded and authorized: what a statement may build and read besides its time."""
    # Belt and braces: even a statement that slipped past the parser cannot write.
    connection.execute("PRAGMA query_only=ON")
    # No string or blob (`||` doubling in a CTE) longer than a whole result may be; nothing attached.
    connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_bytes)
    connection.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, SQL_TEXT_LIMIT)
    connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    connection.set_authorizer(sqlite_authorizer(tables))


class ReadOnlySql:
    """Runs checked SELECTs on a read-only connection (SQLite mode=ro, PostgreSQL read-only transaction), within a
    time, a value size and a result size."""

    def __init__(self, database_url: str, tables: tuple[str, ...] = DEFAULT_TABLES, max_bytes: int = 1_000_000) -> None:
        url = make_url(normalise_url(database_url))
        self.max_bytes = max_bytes
        self.sqlite = url.get_backend_name() == "sqlite"
        if self.sqlite:
            path = Path(url.database or "").resolve()
            uri = f"file:{path}?mode=ro"
            self.engine: Engine = create_engine(
                "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=10, check_same_thread=False)
            )
            event.listen(self.engine, "connect", lambda conn, _record: _lock_down(conn, tables, max_bytes))
        else:
            self.engine = make_engine(database_url)

    def run_select(self, sql: str, timeout_ms: int) -> list[dict[str, Any]]:
        """The statement's rows; ToolTransientError when the database is busy, ToolError otherwise."""
        try:
            with self.engine.connect() as connection:
                if self.sqlite:
                    deadline = time.monotonic() + timeout_ms / 1000
                    raw = connection.connection.driver_connection
                    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)  # type: ignore[union-attr]
                else:
                    connection.execute(text("SET TRANSACTION READ ONLY"))
                    connection.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
                return self._rows(connection.execute(text(sql)).mappings())
        except DBAPIError as exc:
            message = str(exc.orig).strip().splitlines()[0]
            if isinstance(exc, OperationalError) and ("locked" in message or "busy" in message):
                raise ToolTransientError(f"sql.query: database busy: {message}") from None
            if "too big" in message:
                raise ToolError(f"sql.query: a value would exceed {self.max_bytes} bytes ({message})") from None
            raise ToolError(f"sql.query: {message}") from None

    def _rows(self, result: Iterable[Mapping[Any, Any]]) -> list[dict[str, Any]]:
        """The rows as JSON values, fetched one by one up to `max_bytes` of JSON."""
        rows, size = [], 0
        for row in result:
            item = {k: _jsonable(v) for k, v in row.items()}
            size += len(json.dumps(item, ensure_ascii=False, default=str).encode())
            if size > self.max_bytes:
                raise ToolError(f"sql.query: the result exceeds {self.max_bytes} bytes; select fewer rows or columns")
            rows.append(item)
        return rows


class LedgerAdapter:
    """ledger.quick_run through the ledger package's own processing (shadow ledger, snapshot, log line)."""

    def quick_run(self, event_body: dict[str, Any]) -> dict[str, Any]:
        """The quick-run result of one event."""
        from worker.ledger.service import process  # the ledger's runtime, loaded by the first ledger tool call

        results = process([event_body], event_body.get("correlation_id"))
        return dict(results[0])


@functools.cache
def agents_config() -> AgentsConfig:
    """The validated `agents` section of FLEET_CONFIG."""
    return load_config(get_settings().section("agents"))


def _extra_tools(config: AgentsConfig) -> list[Tool]:
    tools: list[Tool] = []
    for name in config.tool_modules:
        tools.extend(importlib.import_module(name).TOOLS)
    return tools


def _add_mcp_tools(registry: Registry, config: AgentsConfig) -> Registry:
    """Each MCP server's tools; a server that does not answer, or a tool that would shadow one already
    registered, is left out and logged (the gatekeeper rejects a plan naming it as not registered)."""
    from agents.tools import mcp

    for server in config.mcp_servers:
        try:
            tools = mcp.discover(server)
        except ToolError as exc:
            log.error("%s", exc, extra={"category": "agent", "mcp_server": server.name})
            continue
        for tool in tools:
            if registry.has(tool.name, tool.version):
                log.error("MCP tool %s left out: a tool of that name and version is registered", tool.ref,
                          extra={"category": "agent", "mcp_server": server.name})  # fmt: skip
                continue
            registry.register(tool)
    return registry


@functools.cache
def registry() -> Registry:
    """The built-in tools plus those of `agents.tool_modules` and of the MCP servers (`agents.mcp_servers`)."""
    config = agents_config()
    return _add_mcp_tools(default_registry(_extra_tools(config)), config)


@functools.cache
def git_commit() -> str | None:
    """The fleet's git commit, when it runs from a checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def profile(name: str) -> Profile:
    """A model profile configured from the `agents` section and the environment, its endpoints behind the
    breakers every worker process shares (Redis)."""
    config = agents_config()
    return make_profile(name, config, os.environ, breaker=breakers.breaker(config.breaker))


@functools.cache
def build_ports() -> Ports:
    """The live ports of this process (one per process: engines and clients are pooled)."""
    config = agents_config()
    settings = get_settings()
    sql = ReadOnlySql(settings.database_url, config.sql_tables, config.sql_max_result_bytes)
    context = ToolContext(config=config, sql=sql, ledger=LedgerAdapter(), fleet_status=_fleet_status)
    return Ports(store=SqlRunStore(), events=RedisEvents(), registry=registry(), profiles=profile, config=config,
                 context=context, cache=RedisCache())  # fmt: skip


def _fleet_status() -> dict[str, Any]:
    try:
        client = get_redis()
        return {"queues": {q: int(client.llen(q)) for q in ("agents", "ledger", "reports")}}
    except redis.RedisError as exc:
        return {"error": f"broker unreachable: {exc}"}


def start_run(
    run_id: str, request: WorkflowRequest, owner: str | None = None, trace_id: str | None = None
) -> tuple[RunRecord, bool]:
    """Create the run (or find the one with the same idempotency key) and its config snapshot."""
    ports = build_ports()
    queue = str(request.options.get("queue") or ports.config.queue)
    # Checked again here (the request model checks it too): a message from any producer may name any key.
    if not re.fullmatch(AGENT_QUEUE_PATTERN, queue):
        raise AgentError(f"options.queue must be 'agents' or 'agents-<name>', got {queue!r}")
    record, created = ports.store.create_run(run_id, request, queue, owner, trace_id)
    # Also when this very message recorded the run and died before it stored the snapshot (still pending).
    if created or (record.run_id == run_id and record.status == "pending"):
        described = (
            ports.profiles(request.profile).describe()
            if request.profile in {"local", "openai"}
            else {"name": request.profile}
        )
        data = snapshot.build(
            run_id, request, described, ports.registry, ports.config, git_commit(), get_settings().masked()
        )
        ports.store.save_snapshot(snapshot.snapshot_id_of(run_id), run_id, data)
    return record, created
