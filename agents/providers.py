"""Failover across OpenAI-compatible endpoints: each behind a circuit breaker, retried with jitter, in one deadline."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from agents.breaker import CircuitBreaker
from agents.config import Endpoint, OpenAISettings
from agents.errors import ProfileError

log = logging.getLogger("fleet.agents.providers")
# Statuses worth another attempt: the endpoint is overloaded or broken for now, not refusing this request.
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Target:
    """One endpoint of the chain with every value resolved."""

    name: str
    base_url: str
    model: str
    api_key_env: str
    timeout_s: float
    prompt_price_per_1k: float
    completion_price_per_1k: float


def targets(settings: OpenAISettings) -> list[Target]:
    """The chain in order; without one, the single endpoint of the section, named `default`."""
    s = settings
    if not s.chain:
        return [Target("default", s.base_url, s.model, s.api_key_env, s.timeout_s, s.prompt_price_per_1k,
                       s.completion_price_per_1k)]  # fmt: skip
    return [_target(e, s) for e in s.chain]


def _target(e: Endpoint, s: OpenAISettings) -> Target:
    prompt = s.prompt_price_per_1k if e.prompt_price_per_1k is None else e.prompt_price_per_1k
    completion = s.completion_price_per_1k if e.completion_price_per_1k is None else e.completion_price_per_1k
    return Target(e.name, e.base_url or s.base_url, e.model or s.model, e.api_key_env or s.api_key_env,
                  e.timeout_s or s.timeout_s, prompt, completion)  # fmt: skip


class Transient(Exception):
    """A timeout, a connection error, an overloaded or failing endpoint: retry, count against the breaker."""


class Refused(Exception):
    """The endpoint refused the request (4xx): the next endpoint may take it; the breaker is not charged."""


@dataclass
class Answer:
    """The reply of the endpoint that answered, and what happened on the way."""

    reply: dict[str, Any]
    target: Target
    attempts: list[str] = field(default_factory=list)


@dataclass
class Caller:
    """Posts one chat-completions body along the chain until an endpoint answers or the deadline passes."""

    settings: OpenAISettings
    keys: Mapping[str, str]
    breaker: CircuitBreaker | None = None
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def call(self, body_for: Callable[[Target], dict[str, Any]]) -> Answer:
        """The first good reply along the chain; ProfileError naming every endpoint's failure otherwise."""
        deadline = self.monotonic() + self.settings.deadline_s
        notes: list[str] = []
        for target in targets(self.settings):
            if self.breaker is not None and not self.breaker.admit(target.name).allowed:
                notes.append(f"{target.name}: circuit open, skipped")
                continue
            key = self.keys.get(target.api_key_env)
            if not key:
                notes.append(f"{target.name}: no API key in {target.api_key_env}")
                continue
            reply = self._attempts(target, key, body_for(target), deadline, notes)
            if reply is not None:
                return Answer(reply, target, notes)
            if self.monotonic() >= deadline:
                break
        raise ProfileError("no model endpoint answered: " + "; ".join(notes or ["the chain is empty"]))

    def _attempts(
        self, target: Target, key: str, body: dict[str, Any], deadline: float, notes: list[str]
    ) -> dict[str, Any] | None:
        for attempt in range(self.settings.retries + 1):
            remaining = deadline - self.monotonic()
            if remaining <= 0:
                notes.append(f"{target.name}: the {self.settings.deadline_s:g} s deadline passed")
                return None
            try:
                reply = self._post(target, key, body, min(target.timeout_s, remaining))
            except Refused as exc:
                notes.append(f"{target.name}: {exc}")
                return None
            except Transient as exc:
                notes.append(f"{target.name}: {exc}")
                if self._charge(target) or attempt == self.settings.retries:
                    return None
                pause = self.settings.retry_backoff_s * 2**attempt * self.rng.uniform(0.5, 1.5)
                self.sleep(max(0.0, min(pause, deadline - self.monotonic())))
                continue
            if self.breaker is not None and self.breaker.succeeded(target.name):
                log.warning("model endpoint %s answers again: circuit closed", target.name,
                            extra={"category": "agent", "endpoint": target.name, "breaker": "closed"})  # fmt: skip
            return reply
        return None

    def _charge(self, target: Target) -> bool:
        """Count a failure against the endpoint's breaker; True when the breaker is (now) open."""
        if self.breaker is None:
            return False
        if self.breaker.failed(target.name):
            b = self.breaker.settings
            log.error("model endpoint %s failing: circuit opened after %d failures in %g s; retried in %g s",
                      target.name, b.failures, b.window_s, b.reset_s,
                      extra={"category": "agent", "endpoint": target.name, "breaker": "open"})  # fmt: skip
            return True
        return self.breaker.store.load(target.name).status == "open"

    def _post(self, target: Target, key: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        url = target.base_url.rstrip("/") + "/chat/completions"
        try:
            with httpx.Client(transport=self.transport, timeout=timeout) as client:
                response = client.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
        except httpx.TimeoutException:
            raise Transient(f"timed out after {timeout:.3g} s") from None
        except httpx.HTTPError as exc:
            raise Transient(f"unreachable ({type(exc).__name__}: {exc})") from None
        if response.status_code in RETRYABLE_STATUS:
            raise Transient(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise Refused(f"HTTP {response.status_code} (not retried)")
        try:
            reply = response.json()
        except ValueError:
            raise Transient("answered with invalid JSON") from None
        if not isinstance(reply, dict):
            raise Transient("answered with JSON that is not an object")
        return reply
