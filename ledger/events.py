"""The ledger event envelope, the `data` of each event type, and `parse` that turns a body into one."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)
from pydantic_core import PydanticCustomError

from ledger.body import Decoded, Violation, canonical, decode, dumps
from ledger.config import LedgerConfig

__all__ = ["Decoded", "LedgerEvent", "Violation", "build", "canonical", "decode", "dumps", "parse"]

EVENT_TYPES = (
    "account_opened",
    "account_closed",
    "transaction_created",
    "balance_changed",
    "contract_executed",
    "config_changed",
)
# Bidi embeddings/overrides/isolates: they make an id display differently from what it is.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def _identifier(value: str) -> str:
    if value.isascii() and value.isprintable() and value.strip():
        return value  # the common case: printable ASCII is NFC and holds no control or format character
    value = unicodedata.normalize("NFC", value)
    if not value.strip():
        raise PydanticCustomError("invalid_identifier", "identifier is empty")
    for char in value:
        if char in _BIDI or unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"}:
            raise PydanticCustomError("invalid_identifier", f"identifier holds character U+{ord(char):04X}")
    return value


Identifier = Annotated[StrictStr, Field(max_length=128), AfterValidator(_identifier)]
Currency = Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]
# A decimal string is major units ("12.50"); an integer is minor units of the currency's scale (1250).
AmountText = Annotated[StrictStr, Field(pattern=r"^-?[0-9]{1,24}(\.[0-9]{1,18})?$")]
Amount = Annotated[StrictInt | AmountText, Field(description="decimal string (major units) or integer (minor units)")]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountOpened(_Data):
    """`data` of `account_opened`."""

    account: Identifier
    currency: Currency
    overdraft_limit: Amount = "0"
    opening_balance: Amount = "0"


class AccountClosed(_Data):
    """`data` of `account_closed`."""

    account: Identifier


class TransactionCreated(_Data):
    """`data` of `transaction_created`: `amount` moves from sender to receiver."""

    transaction_id: Identifier
    sender: Identifier
    receiver: Identifier
    amount: Amount
    currency: Currency


class BalanceChanged(_Data):
    """`data` of `balance_changed`: an adjustment (deposit, withdrawal, fee) in the account's currency."""

    account: Identifier
    before: Amount
    after: Amount
    delta: Amount | None = None
    transaction_id: Identifier | None = None
    sequence: Annotated[StrictInt, Field(ge=1)] | None = None


class Leg(_Data):
    """One input or output of a contract execution."""

    account: Identifier
    amount: Amount
    currency: Currency


class ContractExecuted(_Data):
    """`data` of `contract_executed`: inputs are debited, outputs credited."""

    contract_id: Identifier
    execution_id: Identifier
    inputs: list[Leg] = Field(min_length=1, max_length=100)
    outputs: list[Leg] = Field(min_length=1, max_length=100)


class ConfigChanged(_Data):
    """`data` of `config_changed`: one key of the `ledger` config, effective for later events."""

    key: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    value: Any


DATA_MODELS: dict[str, type[_Data]] = {
    "account_opened": AccountOpened,
    "account_closed": AccountClosed,
    "transaction_created": TransactionCreated,
    "balance_changed": BalanceChanged,
    "contract_executed": ContractExecuted,
    "config_changed": ConfigChanged,
}
EventData = AccountOpened | AccountClosed | TransactionCreated | BalanceChanged | ContractExecuted | ConfigChanged


class Envelope(BaseModel):
    """The envelope every ledger event shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier
    event_type: Annotated[StrictStr, Field(json_schema_extra={"enum": list(EVENT_TYPES)})]
    timestamp: AwareDatetime
    api_version: Annotated[StrictStr, Field(max_length=16)]
    correlation_id: Annotated[StrictStr, Field(max_length=128)] | None = None
    data: dict[str, Any]


def accounts_of(data: EventData) -> tuple[str, ...]:
    """Every account an event's data touches, in order."""
    if isinstance(data, TransactionCreated):
        return (data.sender, data.receiver)
    if isinstance(data, AccountOpened | AccountClosed | BalanceChanged):
        return (data.account,)
    if isinstance(data, ContractExecuted):
        return tuple(leg.account for leg in (*data.inputs, *data.outputs))
    return ()


def transaction_key(data: EventData) -> str | None:
    """The id a transfer or contract execution claims (each may be used once)."""
    if isinstance(data, TransactionCreated):
        return data.transaction_id
    if isinstance(data, ContractExecuted):
        return f"contract:{data.contract_id}:{data.execution_id}"
    return None


# One model per event type with its `data` typed: a valid event is validated in one call (the hot path);
# an invalid one goes through Envelope then its data model, which name the problems precisely.
_TYPED: dict[str, type[BaseModel]] = {
    name: create_model(f"{model.__name__}Event", __base__=Envelope, data=(model, ...))
    for name, model in DATA_MODELS.items()
}


@dataclass(slots=True)  # not frozen: made once per event (ledger/body.py, Decoded)
class LedgerEvent:
    """A parsed, well-formed event."""

    event_id: str
    event_type: str
    timestamp: datetime
    api_version: str
    correlation_id: str | None
    data: EventData
    body: dict[str, Any] = field(repr=False)
    fingerprint: str = ""


def _violations(exc: ValidationError, prefix: str) -> list[Violation]:
    out = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        code = "invalid_identifier" if error["type"] == "invalid_identifier" else "schema_invalid"
        out.append(Violation(code, where, error["msg"]))
    return out


def build(decoded: Decoded, config: LedgerConfig) -> LedgerEvent | list[Violation]:
    """The typed event of a decoded body, or every violation found in it."""
    if decoded.violations or decoded.body is None:
        return decoded.violations
    event_type = decoded.body.get("event_type")
    typed = _TYPED.get(event_type) if isinstance(event_type, str) else None
    if typed is not None:
        try:
            valid: Any = typed.model_validate(decoded.body)
        except ValidationError:
            pass  # the slower path below names every problem
        else:
            if valid.api_version in config.api_versions:
                return LedgerEvent(
                    valid.event_id,
                    valid.event_type,
                    # In UTC, as below: stored as such (SQLite keeps no offset) and compared in plain C
                    # (pydantic's own tzinfo makes each comparison call utcoffset() on both sides).
                    valid.timestamp.astimezone(UTC),
                    valid.api_version,
                    valid.correlation_id,
                    valid.data,
                    decoded.body,
                    decoded.fingerprint,
                )
    try:
        envelope = Envelope.model_validate(decoded.body)
    except ValidationError as exc:
        return _violations(exc, "")
    if envelope.event_type not in DATA_MODELS:
        return [Violation("unsupported_event_type", "event_type", f"unknown event type {envelope.event_type!r}")]
    problems = []
    if envelope.api_version not in config.api_versions:
        problems.append(Violation("unsupported_api_version", "api_version", f"{envelope.api_version!r} unsupported"))
    try:
        data = DATA_MODELS[envelope.event_type].model_validate(envelope.data)
    except ValidationError as exc:
        return problems + _violations(exc, "data")
    if problems:
        return problems
    return LedgerEvent(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        timestamp=envelope.timestamp.astimezone(UTC),
        api_version=envelope.api_version,
        correlation_id=envelope.correlation_id,
        data=data,  # type: ignore[arg-type]
        body=decoded.body,
        fingerprint=decoded.fingerprint,
    )


def parse(raw: str | bytes | dict[str, Any], config: LedgerConfig | None = None) -> LedgerEvent | list[Violation]:
    """Parse a body (raw JSON or an already decoded object) into an event, or list what is wrong."""
    config = config or LedgerConfig()
    return build(decode(raw, config.payload_limit_bytes), config)
