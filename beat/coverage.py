"""An issue for every reason the health is not OK that no pattern explained: health, issues and steps agree."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from beat.analyzer import Issue, Pattern
from beat.components import ESSENTIAL, Component, Status
from beat.thresholds import Level

# First actions per component, by language; `*` for a component without its own.
COMPONENT_ACTIONS: dict[str, dict[str, str]] = {
    "broker": {
        "en": "Check that Redis runs and FLEET_BROKER_URL points at it (redis-cli ping)",
        "ko": "Redis 실행 여부와 FLEET_BROKER_URL 확인 (redis-cli ping)",
    },
    "database": {
        "en": "Check FLEET_DATABASE_URL and that the server accepts connections",
        "ko": "FLEET_DATABASE_URL과 서버 연결 가능 여부 확인",
    },
    "workers": {
        "en": "Check the workers (celery -A worker inspect ping) and their log in FLEET_LOG_DIR",
        "ko": "워커 확인 (celery -A worker inspect ping) 및 FLEET_LOG_DIR의 로그 확인",
    },
    "beat": {
        "en": "Check that one beat runs (celery -A worker beat) and read its log in FLEET_LOG_DIR",
        "ko": "beat 하나가 실행 중인지 확인 (celery -A worker beat) 후 FLEET_LOG_DIR의 로그 확인",
    },
    "flower": {
        "en": "Start Flower (celery -A worker flower) or correct reports.flower_url",
        "ko": "Flower 시작 (celery -A worker flower) 또는 reports.flower_url 수정",
    },
    "api": {
        "en": "Start the API (agent api) or correct reports.api_url",
        "ko": "API 시작 (agent api) 또는 reports.api_url 수정",
    },
    "*": {"en": "Read the component's log lines in FLEET_LOG_DIR", "ko": "FLEET_LOG_DIR에서 해당 구성 요소 로그 확인"},
}
SIGNAL_ACTION = {
    "en": "Find the minutes where {signal} peaked (Signals table, chart) and read the log lines of those minutes",
    "ko": "{signal}이 높았던 시간대를 찾아 (지표 표, 차트) 그 시간의 로그 확인",
}
TITLES = {
    "component": {"en": "{name} is {status}", "ko": "{name} 상태 {status}"},
    "signal": {"en": "{signal} is at warning level", "ko": "{signal} 경고 수준"},
}


def _explained(issues: Iterable[Issue], patterns: Sequence[Pattern]) -> tuple[set[str], set[str]]:
    """The components and signals that the matched patterns' conditions name."""
    by_id = {pattern.id: pattern for pattern in patterns}
    components: set[str] = set()
    signals: set[str] = set()
    for issue in issues:
        for condition in by_id[issue.id].when if issue.id in by_id else ():
            if condition.component is not None:
                components.add(condition.component.name)
            for rule in (condition.metric, condition.level):
                if rule is not None:
                    signals.add(rule.signal)
    return components, signals


def _text(table: Mapping[str, str], language: str, **values: str) -> str:
    return table.get(language, table["en"]).format(**values)


def unexplained(
    issues: Sequence[Issue],
    patterns: Sequence[Pattern],
    components: Sequence[Component],
    levels: Mapping[str, Level],
    language: str = "en",
) -> list[Issue]:
    """One issue per component in WARNING or ERROR and per signal at warning level that no issue covers."""
    covered_components, covered_signals = _explained(issues, patterns)
    found: list[Issue] = []
    for component in components:
        if component.status not in (Status.WARNING, Status.ERROR) or component.name in covered_components:
            continue
        high = component.status == Status.ERROR and component.name in ESSENTIAL
        action = COMPONENT_ACTIONS.get(component.name, COMPONENT_ACTIONS["*"])
        title = _text(TITLES["component"], language, name=component.name, status=component.status.value)
        found.append(
            Issue(
                id=f"component-{component.name}",
                title=title,
                priority="HIGH" if high else "MEDIUM",
                category="availability",
                components=[component.name],
                actions=[_text(action, language)],
                minutes=15,
                evidence=[f"{component.name} {component.status.value}: {component.detail}"],
            )
        )
    for signal, level in sorted(levels.items()):
        if level != Level.WARNING or signal in covered_signals:
            continue
        found.append(
            Issue(
                id=f"signal-{signal}",
                title=_text(TITLES["signal"], language, signal=signal),
                priority="MEDIUM",
                category="performance",
                components=[],
                actions=[_text(SIGNAL_ACTION, language, signal=signal)],
                minutes=20,
                evidence=[f"{signal} is {level.value}"],
            )
        )
    return found
