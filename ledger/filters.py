"""Filter rules (include/exclude -> `skipped`) and priority rules (raise the level) on parsed events."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase

from fleet_contract import PRIORITY_LEVELS
from ledger.amounts import to_decimal
from ledger.config import LedgerConfig, Match
from ledger.events import BalanceChanged, ContractExecuted, LedgerEvent, TransactionCreated, accounts_of

DEFAULT_LEVEL = PRIORITY_LEVELS["normal"]


@dataclass(frozen=True, slots=True)
class Facts:
    """What rules match on: the event type, every account it touches, its contract and its amount."""

    event_type: str
    accounts: tuple[str, ...]
    contract_id: str | None
    amount: Decimal | None


@dataclass(frozen=True, slots=True)
class Route:
    """Where an event goes: skipped (and why) or its priority level (0 most urgent)."""

    skipped: bool
    reason: str
    priority: int


_PLAIN = Route(False, "", DEFAULT_LEVEL)


def facts(event: LedgerEvent, config: LedgerConfig) -> Facts:
    """The matchable facts of an event; the amount is in major units."""
    data = event.data
    amount: Decimal | None = None
    if isinstance(data, TransactionCreated):
        amount = to_decimal(data.amount, config.scale(data.currency))
    elif isinstance(data, BalanceChanged):
        # The account's currency is unknown here: integers are read at the default scale.
        scale = config.default_precision
        amount = abs(to_decimal(data.after, scale) - to_decimal(data.before, scale))
    elif isinstance(data, ContractExecuted):
        amount = sum((to_decimal(leg.amount, config.scale(leg.currency)) for leg in data.inputs), Decimal(0))
    contract_id = data.contract_id if isinstance(data, ContractExecuted) else None
    return Facts(event.event_type, accounts_of(data), contract_id, amount)


def matches(rule: Match, found: Facts) -> bool:
    """Whether every field the rule gives matches the event."""
    if rule.event_types is not None and found.event_type not in rule.event_types:
        return False
    if rule.account is not None and not any(fnmatchcase(a, rule.account) for a in found.accounts):
        return False
    if rule.contract_id is not None and found.contract_id != rule.contract_id:
        return False
    if rule.amount_min is not None and (found.amount is None or found.amount < rule.amount_min):
        return False
    return not (rule.amount_max is not None and (found.amount is None or found.amount > rule.amount_max))


def route(event: LedgerEvent, config: LedgerConfig) -> Route:
    """Apply the filter rules, then the priority rules (which only ever raise the level)."""
    if not config.filters and not config.priority_rules:
        return _PLAIN
    found = facts(event, config)
    includes = [rule for rule in config.filters if rule.action == "include"]
    if includes and not any(matches(rule, found) for rule in includes):
        return Route(True, "matches no include rule", DEFAULT_LEVEL)
    for index, rule in enumerate(config.filters):
        if rule.action == "exclude" and matches(rule, found):
            return Route(True, f"excluded by filter rule {index}", DEFAULT_LEVEL)
    level = DEFAULT_LEVEL
    for raise_rule in config.priority_rules:
        if matches(raise_rule, found):
            level = min(level, PRIORITY_LEVELS[raise_rule.level])
    return Route(False, "", level)
