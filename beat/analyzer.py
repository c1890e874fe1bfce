"""The issue analyzer: a YAML catalogue of patterns over log messages, metrics and component states."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from beat.aggregates import LogEvent
from beat.components import Component, Status
from beat.errors import PatternError
from beat.summary import Stat
from beat.thresholds import Level

PRIORITY_ORDER = {"HIGH": 0, "MEDIUM": 1, "LOW": 2}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the analyzer looks at."""

    signals: dict[str, Stat]
    levels: dict[str, Level]
    components: Sequence[Component]
    logs: Sequence[LogEvent] = ()


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem found, what to do about it and how long that takes."""

    id: str
    title: str
    priority: str
    category: str
    components: list[str]
    actions: list[str]
    minutes: int
    evidence: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogCondition(_Strict):
    """At least `min_count` log lines of the given levels whose message matches `regex`."""

    regex: str
    min_count: int = Field(default=1, ge=1)
    levels: list[str] = Field(default_factory=lambda: ["ERROR", "CRITICAL", "WARNING"])

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        return value


class MetricCondition(_Strict):
    """A statistic of a signal compared with a value."""

    signal: str
    stat: Literal["mean", "min", "max", "stdev", "p95", "total"] = "max"
    op: Literal[">", ">=", "<", "<=", "=="]
    value: float


class LevelCondition(_Strict):
    """A signal classified at least caution or warning."""

    signal: str
    at_least: Literal["caution", "warning"] = "warning"


class ComponentCondition(_Strict):
    """A component in one of the given states."""

    name: str
    status: list[Status]


class Condition(_Strict):
    """Exactly one of log, metric, level, component."""

    log: LogCondition | None = None
    metric: MetricCondition | None = None
    level: LevelCondition | None = None
    component: ComponentCondition | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        if sum(part is not None for part in (self.log, self.metric, self.level, self.component)) != 1:
            raise ValueError("a condition has exactly one of log, metric, level, component")
        return self


class Pattern(_Strict):
    """One detection pattern of the catalogue; `title` and `actions` per language (en required)."""

    id: str
    title: dict[str, str]
    priority: Literal["HIGH", "MEDIUM", "LOW"]
    category: str
    components: list[str] = Field(default_factory=list)
    when: list[Condition] = Field(min_length=1)
    match: Literal["all", "any"] = "all"
    actions: dict[str, list[str]]
    minutes: int = Field(default=15, ge=0)

    @field_validator("title", "actions", mode="before")
    @classmethod
    def _plain_is_english(cls, value: Any) -> Any:
        return {"en": value} if isinstance(value, str | list) else value

    @model_validator(mode="after")
    def _has_english(self) -> Pattern:
        if "en" not in self.title or "en" not in self.actions:
            raise ValueError("title and actions need at least an 'en' entry")
        return self


def load_catalogue(extra: Sequence[dict[str, Any]] = ()) -> list[Pattern]:
    """The shipped `beat/patterns.yaml` plus patterns from FLEET_CONFIG (same id replaces)."""
    shipped = yaml.safe_load(resources.files("beat").joinpath("patterns.yaml").read_text(encoding="utf-8"))
    by_id: dict[str, Pattern] = {}
    for index, raw in enumerate([*shipped["patterns"], *extra]):
        try:
            pattern = Pattern.model_validate(raw)
        except ValidationError as exc:
            where = raw.get("id", f"#{index}") if isinstance(raw, dict) else f"#{index}"
            raise PatternError(f"issue pattern {where}: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from None
        by_id[pattern.id] = pattern
    return list(by_id.values())


def _check(condition: Condition, evidence: Evidence) -> str | None:
    """A sentence of evidence when the condition holds, None otherwise."""
    if condition.log is not None:
        rule = condition.log
        regex = re.compile(rule.regex)
        hits = [e for e in evidence.logs if e.level.upper() in rule.levels and regex.search(e.message)]
        return f"{len(hits)} log lines match /{rule.regex}/" if len(hits) >= rule.min_count else None
    if condition.metric is not None:
        m = condition.metric
        stat = evidence.signals.get(m.signal)
        if stat is None or not _OPS[m.op](stat.get(m.stat), m.value):
            return None
        return f"{m.signal} {m.stat} = {stat.get(m.stat):.4g} ({m.op} {m.value:g})"
    if condition.level is not None:
        lv = condition.level
        level = evidence.levels.get(lv.signal)
        wanted = Level(lv.at_least)
        return f"{lv.signal} is {level.value}" if level is not None and level.rank >= wanted.rank else None
    assert condition.component is not None
    c = condition.component
    found = next((comp for comp in evidence.components if comp.name == c.name), None)
    if found is None or found.status not in c.status:
        return None
    return f"{found.name} {found.status.value}: {found.detail}"


def analyze(patterns: Sequence[Pattern], evidence: Evidence, language: str = "en") -> list[Issue]:
    """The issues whose pattern matches the evidence, most urgent first."""
    issues: list[Issue] = []
    for pattern in patterns:
        found = [_check(condition, evidence) for condition in pattern.when]
        hits = [sentence for sentence in found if sentence is not None]
        matched = len(hits) == len(found) if pattern.match == "all" else bool(hits)
        if not matched:
            continue
        issues.append(
            Issue(
                id=pattern.id,
                title=pattern.title.get(language, pattern.title["en"]),
                priority=pattern.priority,
                category=pattern.category,
                components=list(pattern.components),
                actions=list(pattern.actions.get(language, pattern.actions["en"])),
                minutes=pattern.minutes,
                evidence=hits,
            )
        )
    return sorted(issues, key=lambda issue: (PRIORITY_ORDER[issue.priority], issue.id))
