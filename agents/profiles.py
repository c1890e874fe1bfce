"""Model profiles: `local` (the deterministic planner) and `openai` (any OpenAI-compatible endpoint)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

import httpx
from pydantic import ValidationError

from agents.analyst import plan_locally
from agents.breaker import CircuitBreaker
from agents.config import AgentsConfig, OpenAISettings
from agents.conversation import Context, resolve
from agents.errors import ProfileError
from agents.models import Plan, Subtask, Usage, WorkflowRequest
from agents.providers import Caller, Target, targets
from agents.tools import Registry
from agents.tools.summarize import is_korean

PROMPT_TEMPLATE_NAME = "sena-planner-v1"
PROMPT_TEMPLATE = """You are Sena, the analyst of Agent Fleet. Read the user's request and call submit_plan once.
Split multi-part requests into subtasks, one tool call each. Use only these tools (name, version, JSON Schema):
{tools}
A subtask that needs another's output lists it in depends_on and leaves the tool's input argument out.
When no tool fits, submit a plan with no subtasks and say why in rationale. Answer in the request's language."""
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intent": {"type": "string"},
        "language": {"type": "string", "enum": ["en", "ko"]},
        "rationale": {"type": "string"},
        "subtasks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "tool": {"type": "string"},
                    "version": {"type": "string"},
                    "args": {"type": "object"},
                    "depends_on": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["id", "tool", "args"],
            },
        },
    },
    "required": ["intent", "subtasks", "rationale"],
}


def template_hash(template: str = PROMPT_TEMPLATE) -> str:
    """sha256 of a prompt template, so a snapshot shows when the prompt changed."""
    return hashlib.sha256(template.encode()).hexdigest()[:16]


class Profile(Protocol):
    """Produces a plan for a request, and says which model and prompt it used."""

    name: str

    def plan(self, request: WorkflowRequest, registry: Registry, context: Context | None = None) -> tuple[Plan, Usage]:
        """The plan and the tokens it cost; `context`: the earlier turns of the run's conversation."""
        ...

    def describe(self) -> dict[str, Any]:
        """Provider, model, temperature, seed, prompt template name and hash."""
        ...


class LocalProfile:
    """The deterministic planner: zero tokens, the same plan for the same request."""

    name = "local"

    def plan(self, request: WorkflowRequest, registry: Registry, context: Context | None = None) -> tuple[Plan, Usage]:
        """The local planner's plan (a reference to an earlier result resolved first), or the caller's own
        `options.subtasks` (validated by the gatekeeper all the same)."""
        given = request.options.get("subtasks")
        if given is None:
            return _plan_in_context(request.input, context), Usage()
        try:
            subtasks = tuple(Subtask.model_validate(item) for item in given)
        except (ValidationError, TypeError) as exc:
            raise ProfileError(f"options.subtasks is not a list of subtasks: {exc}") from None
        tools = tuple(dict.fromkeys(s.tool_ref for s in subtasks))
        return Plan(intent="given", subtasks=subtasks, tools=tools, rationale="subtasks given by the caller"), Usage()

    def describe(self) -> dict[str, Any]:
        """This profile as a snapshot records it."""
        return {"name": "local", "provider": "local", "model": "rules-v1", "temperature": 0.0, "seed": None,
                "prompt_template": "local-rules-v1", "prompt_hash": None}  # fmt: skip


class OpenAIProfile:
    """Asks OpenAI-compatible chat-completions endpoints for the plan through tool calling, failing over along
    the configured chain (agents/providers.py)."""

    name = "openai"

    def __init__(
        self,
        settings: OpenAISettings,
        api_key: str | None,
        transport: httpx.BaseTransport | None = None,
        *,
        env: Mapping[str, str] | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.settings = settings
        keys = dict(env or {})
        if api_key:
            keys[settings.api_key_env] = api_key
        else:
            keys.pop(settings.api_key_env, None)
        self.caller = Caller(settings, keys, breaker, transport)

    def describe(self) -> dict[str, Any]:
        """This profile as a snapshot records it (never the key)."""
        s = self.settings
        chain = [{"name": t.name, "base_url": t.base_url, "model": t.model} for t in targets(s)]
        return {"name": "openai", "provider": "openai-compatible", "base_url": s.base_url, "model": s.model,
                "temperature": s.temperature, "seed": s.seed, "prompt_template": PROMPT_TEMPLATE_NAME,
                "prompt_hash": template_hash(), "chain": chain}  # fmt: skip

    def _body(
        self, request: WorkflowRequest, registry: Registry, model: str, context: Context | None = None
    ) -> dict[str, Any]:
        tools = "\n".join(
            json.dumps({"name": t.name, "version": t.version, "schema": t.schema}) for t in registry.tools()
        )
        body: dict[str, Any] = {
            "model": model,
            "temperature": self.settings.temperature,
            "messages": [
                {"role": "system", "content": PROMPT_TEMPLATE.format(tools=tools)},
                *_history(context),
                {"role": "user", "content": request.input},
            ],
            "tools": [{"type": "function", "function": {"name": "submit_plan", "parameters": PLAN_SCHEMA}}],
            "tool_choice": {"type": "function", "function": {"name": "submit_plan"}},
        }
        if self.settings.seed is not None:
            body["seed"] = self.settings.seed
        return body

    def plan(self, request: WorkflowRequest, registry: Registry, context: Context | None = None) -> tuple[Plan, Usage]:
        """The first answering endpoint's plan, parsed and validated; ProfileError when none gives one."""
        answer = self.caller.call(lambda target: self._body(request, registry, target.model, context))
        return parse_reply(answer.reply), _usage(answer.reply, answer.target, answer.attempts)


def _history(context: Context | None) -> list[dict[str, str]]:
    """The conversation's earlier turns as chat messages, the summary of older ones first."""
    if context is None:
        return []
    messages = (
        [{"role": "system", "content": f"Earlier in this conversation: {context.summary}"}] if context.summary else []
    )
    for turn in context.turns:
        messages += [
            {"role": "user", "content": turn.input},
            {"role": "assistant", "content": turn.answer or turn.status},
        ]
    return messages


def _plan_in_context(text: str, context: Context | None) -> Plan:
    """The local plan; a follow-up on the last result ("double it") is planned as the arithmetic it asks."""
    value = context.last_value if context is not None else None
    expression = resolve(text, value)
    if expression is None:
        return plan_locally(text)
    korean = is_korean(text)
    plan = plan_locally(f"{expression} 계산" if korean else f"compute {expression}")
    why = f"{'이전 결과' if korean else 'the earlier result'} {value} -> {expression}; "
    return plan.model_copy(update={"language": "ko" if korean else "en", "rationale": why + plan.rationale})


def _usage(reply: Mapping[str, Any], target: Target, attempts: list[str]) -> Usage:
    usage = reply.get("usage") or {}
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    cost = prompt / 1000 * target.prompt_price_per_1k + completion / 1000 * target.completion_price_per_1k
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cost=round(cost, 6),
                 provider=f"{target.name}:{target.model}", failovers=tuple(attempts))  # fmt: skip


def parse_reply(reply: Mapping[str, Any]) -> Plan:
    """The plan in a chat-completions reply's submit_plan tool call; ProfileError when absent or malformed."""
    try:
        call = reply["choices"][0]["message"]["tool_calls"][0]["function"]
        raw = call["arguments"]
    except (KeyError, IndexError, TypeError):
        raise ProfileError("the model did not call submit_plan") from None
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ProfileError(f"the model's plan is not valid JSON: {exc.msg}") from None
    if isinstance(data, dict):
        data.setdefault(
            "tools",
            [f"{s.get('tool')}:{s.get('version', 'v1')}" for s in data.get("subtasks", []) if isinstance(s, dict)],
        )
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"the model's plan does not match the plan schema: {exc.error_count()} errors") from None


def make_profile(
    name: str,
    config: AgentsConfig,
    env: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
    breaker: CircuitBreaker | None = None,
) -> Profile:
    """The profile by name; ProfileError for an unknown one."""
    if name == "local":
        return LocalProfile()
    if name == "openai":
        key = env.get(config.openai.api_key_env)
        return OpenAIProfile(config.openai, key, transport, env=env, breaker=breaker)
    raise ProfileError(f"unknown profile {name!r}; known: local, openai")
