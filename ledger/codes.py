"""Every violation code: its stage, its precedence (list order) and its meaning."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Code:
    """One violation code, as documented in docs/ledger.md."""

    name: str
    stage: str
    meaning: str


CODES: tuple[Code, ...] = (
    Code("malformed_payload", "parsing", "the body is not JSON, or holds NaN/Infinity or a float amount"),
    Code("payload_too_large", "parsing", "the body is larger than `payload_limit_bytes` (default 64 KiB)"),
    Code("schema_invalid", "parsing", "a field is missing, unknown or of the wrong type or shape"),
    Code("unsupported_event_type", "parsing", "`event_type` is not one of the six known types"),
    Code("unsupported_api_version", "parsing", "`api_version` is not in `api_versions`"),
    Code("invalid_identifier", "parsing", "an id is empty or holds control/format characters, NUL or bidi overrides"),
    Code("timestamp_in_future", "time", "the timestamp is later than now + `max_skew_seconds`"),
    Code("timestamp_must_not_regress", "time", "earlier than the account's last event by more than the tolerance"),
    Code("exists", "identity", "same `event_id`, same content: status `duplicate`, the stored result is returned"),
    Code("exists_with_different_fields", "identity", "same `event_id` as an applied event, different content"),
    Code("transaction_id_exists", "identity", "another event already used this transaction (or contract execution) id"),
    Code("account_exists", "identity", "`account_opened` for an account that already exists"),
    Code("accounts_must_be_different", "accounts", "sender and receiver are the same account"),
    Code("sender_not_found", "accounts", "the sender account was never opened"),
    Code("receiver_not_found", "accounts", "the receiver account was never opened"),
    Code("account_not_found", "accounts", "the account (of a close, balance change or contract leg) was never opened"),
    Code("sender_closed", "accounts", "the sender account is closed"),
    Code("receiver_closed", "accounts", "the receiver account is closed"),
    Code("currency_mismatch", "accounts", "the amount's currency differs from the account's currency"),
    Code("amount_must_be_positive", "amounts", "an amount is zero or negative"),
    Code(
        "amount_out_of_range",
        "amounts",
        "an amount, or the balance it would make, is 10^18 minor units or more (beyond exact arithmetic)",
    ),
    Code("amount_precision_exceeded", "amounts", "more decimal places than the currency's scale (default 2)"),
    Code("amount_exceeds_limit", "amounts", "the amount is above `amount_limit` (default 1000)"),
    Code("exceeds_balance", "amounts", "balance + overdraft limit of the paying account is not enough"),
    Code("balance_mismatch", "consistency", "`balance_changed` disagrees with the shadow balance or with itself"),
    Code("sequence_gap", "consistency", "the account's previous `sequence` never arrived within the wait"),
    Code("contract_unbalanced", "consistency", "a contract's inputs and outputs differ for some currency"),
    Code("config_key_not_allowed", "consistency", "`config_changed` names a key outside `config_keys`"),
    Code("config_value_invalid", "consistency", "`config_changed` carries a value its key does not accept"),
)

BY_NAME: dict[str, Code] = {code.name: code for code in CODES}
PRECEDENCE: dict[str, int] = {code.name: index for index, code in enumerate(CODES)}


def deciding(codes: list[str]) -> str:
    """The code that decides among several: the first in precedence order."""
    return min(codes, key=PRECEDENCE.__getitem__)


def markdown_table() -> str:
    """The table of codes in docs/ledger.md, in precedence order."""
    rows = ["| # | stage | code | meaning |", "|---|---|---|---|"]
    rows += [f"| {i + 1} | {c.stage} | `{c.name}` | {c.meaning} |" for i, c in enumerate(CODES)]
    return "\n".join(rows)
