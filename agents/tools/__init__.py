"""The tool registry: tools by name and version, with JSON Schemas and a side-effect flag."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.config import AgentsConfig
from agents.errors import ToolInputError, ToolNotFound
from agents.schema import validate

# The scope a side-effecting tool needs when it names none: only a key that may do anything may cause it.
SIDE_EFFECT_SCOPE = "admin"


class SqlRunner(Protocol):
    """Runs one checked, read-only SELECT and returns its rows."""

    def run_select(self, sql: str, timeout_ms: int) -> list[dict[str, Any]]:
        """The rows of the statement, as column -> value mappings."""
        ...


class LedgerPort(Protocol):
    """Validates one ledger event through the ledger package."""

    def quick_run(self, event: dict[str, Any]) -> dict[str, Any]:
        """The quick-run result of the event (shape in DESIGN.md)."""
        ...


@dataclass(frozen=True)
class ToolContext:
    """What a tool may use besides its arguments: its ports, limits and the call's idempotency key."""

    config: AgentsConfig = field(default_factory=AgentsConfig)
    idempotency_key: str | None = None
    sql: SqlRunner | None = None
    ledger: LedgerPort | None = None
    fleet_status: Callable[[], dict[str, Any]] | None = None


ToolFunction = Callable[[dict[str, Any], ToolContext], dict[str, Any]]


def canonical_json(value: Any) -> str:
    """A stable JSON text: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Tool:
    """One tool at one version."""

    name: str
    version: str
    description: str
    schema: dict[str, Any]
    run: ToolFunction
    side_effect: bool = False
    # The argument filled from predecessors' outputs when a subtask depends on others.
    input_arg: str | None = None
    cacheable: bool = True
    # The API scope whoever submits a run needs for this tool; a side-effecting tool without one needs admin.
    scope: str | None = None
    # A person approves every run that calls it (MCP tools with side effects, by default).
    needs_approval: bool = False
    # Where the tool comes from: None for the fleet's own, `mcp:<server>` for an MCP server's.
    origin: str | None = None

    @property
    def required_scope(self) -> str | None:
        """The scope a run's submitter needs for this tool; None for a tool without side effects."""
        return self.scope or (SIDE_EFFECT_SCOPE if self.side_effect else None)

    @property
    def ref(self) -> str:
        """`name:version`."""
        return f"{self.name}:{self.version}"

    @property
    def schema_hash(self) -> str:
        """sha256 of the canonical schema: a snapshot notices when a tool's contract changes."""
        return hashlib.sha256(canonical_json(self.schema).encode()).hexdigest()[:16]

    def check_args(self, args: dict[str, Any], *, derived: bool = False) -> list[str]:
        """Schema violations of the arguments; `derived` accepts a missing input argument."""
        if derived and self.input_arg and self.input_arg not in args:
            args = {**args, self.input_arg: "(from dependencies)"}
        return validate(args, self.schema)

    def describe(self) -> dict[str, Any]:
        """The tool as `agent tool list` and the snapshot show it."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "side_effect": self.side_effect,
            "scope": self.required_scope,
            "needs_approval": self.needs_approval,
            "origin": self.origin,
            "schema": self.schema,
            "schema_hash": self.schema_hash,
        }


class Registry:
    """Tools by `name:version`."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        """Add a tool; registering the same name and version twice is an error."""
        if tool.ref in self._tools:
            raise ValueError(f"tool {tool.ref} is already registered")
        self._tools[tool.ref] = tool

    def get(self, name: str, version: str = "v1") -> Tool:
        """The tool; ToolNotFound when absent."""
        try:
            return self._tools[f"{name}:{version}"]
        except KeyError:
            raise ToolNotFound(f"no tool {name}:{version} is registered") from None

    def has(self, name: str, version: str = "v1") -> bool:
        """True when the tool is registered at that version."""
        return f"{name}:{version}" in self._tools

    def tools(self) -> list[Tool]:
        """Every tool, sorted by reference."""
        return [self._tools[ref] for ref in sorted(self._tools)]

    def call(self, name: str, version: str, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        """Validate the arguments and run the tool."""
        tool = self.get(name, version)
        problems = tool.check_args(args)
        if problems:
            raise ToolInputError(f"{tool.ref}: " + "; ".join(problems))
        return tool.run(args, context)


def default_registry(extra: Iterable[Tool] = ()) -> Registry:
    """The built-in tools plus any extra ones (from `agents.tool_modules`)."""
    from agents.tools import calculator, ledger, sql, summarize, system

    builtin = [calculator.TOOL, sql.TOOL, summarize.TOOL, ledger.TOOL, system.TOOL]
    return Registry([*builtin, *extra])
