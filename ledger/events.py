"""The ledger event envelope, the `data` of each event type, and `parse` that turns a body into one."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from pydantic_core import PydanticCustomError

from ledger.config import LedgerConfig

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


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem found with an event."""

    code: str
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The JSON form used in results."""
        return {"code": self.code, "field": self.field, "message": self.message}


def _identifier(value: str) -> str:
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Decoded:
    """A body as far as it could be read: the JSON object (or None) and its fingerprint."""

    body: dict[str, Any] | None
    fingerprint: str
    violations: list[Violation]

    @property
    def event_id(self) -> str:
        """The event's id, or a stable one derived from the content when it has none."""
        value = self.body.get("event_id") if self.body else None
        if isinstance(value, str) and value and len(value) <= 128:
            return unicodedata.normalize("NFC", value)
        return f"raw-{self.fingerprint[:24]}"

    def text(self, key: str) -> str | None:
        """A string field of the envelope, if present."""
        value = self.body.get(key) if self.body else None
        return value[:128] if isinstance(value, str) else None


def _refuse_float(text: str) -> Any:
    raise ValueError(f"float {text} (send amounts as decimal strings or integer minor units)")


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a number")


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_float(item) for item in value)
    return False


def canonical(body: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode(raw: str | bytes | dict[str, Any], limit: int) -> Decoded:
    """Read a body into a JSON object, refusing non-JSON, NaN/Infinity, floats and oversized bodies."""
    if isinstance(raw, dict):
        text = canonical(raw) if not _has_float(raw) else None
        if text is None:
            return Decoded(raw, _digest(repr(raw).encode()), [Violation("malformed_payload", "", "float value")])
        size = len(text.encode())
        if size > limit:
            return Decoded(raw, _digest(text.encode()), [_too_large(size, limit)])
        return Decoded(raw, _digest(text.encode()), [])
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if len(data) > limit:
        return Decoded(None, _digest(data), [_too_large(len(data), limit)])
    try:
        body = json.loads(data, parse_float=_refuse_float, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        return Decoded(None, _digest(data), [Violation("malformed_payload", "", f"not JSON: {exc}"[:200])])
    if not isinstance(body, dict):
        return Decoded(None, _digest(data), [Violation("malformed_payload", "", "not a JSON object")])
    return Decoded(body, _digest(canonical(body).encode()), [])


def _too_large(size: int, limit: int) -> Violation:
    return Violation("payload_too_large", "", f"{size} bytes, limit {limit}")


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
        timestamp=envelope.timestamp,
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
