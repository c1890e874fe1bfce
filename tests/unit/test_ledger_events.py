"""Parsing: JSON only, no floats, identifiers NFC-normalised and clean, the amount rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.amounts import fits_scale, to_decimal
from ledger.config import LedgerConfig
from ledger.events import LedgerEvent, TransactionCreated, Violation, parse
from tests.ledger_cases import event


def _tx(**data: object) -> dict[str, object]:
    body = {"transaction_id": "t1", "sender": "acc-1", "receiver": "acc-2", "amount": "1.00", "currency": "EUR"}
    return event("e1", "transaction_created", {**body, **data})


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "malformed_payload"),
        ('{"event_id": NaN}', "malformed_payload"),
        ('{"event_id": Infinity}', "malformed_payload"),
        ('{"amount": 1.5}', "malformed_payload"),
        ("[1, 2]", "malformed_payload"),
        (b"\xff\xfe", "malformed_payload"),
        (_tx(amount=1.5), "malformed_payload"),
        ("x" * 70_000, "payload_too_large"),
        (_tx(amount=[1]), "schema_invalid"),
        (_tx(amount="1e5"), "schema_invalid"),
        (_tx(amount=True), "schema_invalid"),
        (_tx(currency="eur"), "schema_invalid"),
        (_tx(extra="x"), "schema_invalid"),
        ({**_tx(), "timestamp": "2026-01-01T00:00:00"}, "schema_invalid"),
        ({**_tx(), "event_type": "nope"}, "unsupported_event_type"),
        ({**_tx(), "api_version": "v0"}, "unsupported_api_version"),
        (_tx(sender=""), "invalid_identifier"),
        (_tx(sender="  "), "invalid_identifier"),
        (_tx(sender="acc\x00"), "invalid_identifier"),
        (_tx(sender="acc\u202e1"), "invalid_identifier"),
        (_tx(sender="acc\u200b1"), "invalid_identifier"),
        (_tx(sender="acc\n1"), "invalid_identifier"),
        # A lone surrogate, as JSON's "\ud800" decodes in a message: refused, not a UnicodeEncodeError; in an id,
        # the id's code (docs/ledger.md, "Text no store can hold").
        (_tx(sender="acc\ud8001"), "invalid_identifier"),
        (_tx(currency="EU\ud800"), "schema_invalid"),
    ],
)
def test_bad_bodies_are_refused_with_their_code(raw: object, code: str) -> None:
    found = parse(raw)  # type: ignore[arg-type]
    assert isinstance(found, list) and found[0].code == code, found


def test_identifiers_are_nfc_normalised() -> None:
    found = parse(_tx(sender="cafe\u0301"))
    assert isinstance(found, LedgerEvent) and isinstance(found.data, TransactionCreated)
    assert found.data.sender == "caf\u00e9"


def test_payload_limit_is_configurable() -> None:
    found = parse(_tx(transaction_id="t" * 100), LedgerConfig(payload_limit_bytes=256))
    assert isinstance(found, list) and found == [Violation("payload_too_large", "", found[0].message)]


@pytest.mark.parametrize(
    ("raw", "scale", "major"),
    [("12.50", 2, "12.5"), (1250, 2, "12.5"), (1250, 0, "1250"), (1250, 3, "1.25"), ("-3", 2, "-3"), (0, 2, "0")],
)
def test_a_decimal_string_is_major_units_and_an_integer_minor_units(raw: int | str, scale: int, major: str) -> None:
    assert to_decimal(raw, scale) == Decimal(major)


@pytest.mark.parametrize(
    ("value", "scale", "fits"),
    [("1.50", 2, True), ("1.500", 2, True), ("1.505", 2, False), ("1", 0, True), ("1.5", 0, False)],
)
def test_precision_counts_significant_decimals(value: str, scale: int, fits: bool) -> None:
    assert fits_scale(Decimal(value), scale) is fits


def test_the_committed_json_schemas_are_current() -> None:
    from ledger.schema import HERE, render, schemas

    for name, schema in schemas().items():
        assert (HERE / name).read_text(encoding="utf-8") == render(schema), f"run python -m ledger.schema ({name})"
