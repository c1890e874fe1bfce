"""The amount rule: a decimal string is major units, an integer is minor units of the currency's scale."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow

_CTX = Context(prec=60)
# Every amount, opening balance, overdraft limit and resulting balance stays below 10**18 minor units of its
# currency (18 digits): computed exactly, and stored within the 48 characters of the balance column.
MAX_DIGITS = 18
MAX_MINOR_UNITS = 10**MAX_DIGITS
# The context of the ledger's arithmetic (ledger/rules.py): sums of bounded values need about 21 digits, and a
# result that is not exact raises instead of being rounded (the default context rounds to 28 digits, silently).
LEDGER_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])


def to_decimal(raw: int | str, scale: int) -> Decimal:
    """The amount in major units: "12.5" is 12.5; 1250 with scale 2 is 12.50."""
    if isinstance(raw, int):
        return Decimal(raw).scaleb(-scale, context=_CTX)
    return Decimal(raw)


def in_range(value: Decimal, scale: int) -> bool:
    """Whether |value| is below MAX_MINOR_UNITS minor units of a currency of this scale (exact: no arithmetic)."""
    return value.is_zero() or value.adjusted() < MAX_DIGITS - scale


_QUANTA = [Decimal(1).scaleb(-scale) for scale in range(19)]


def fits_scale(value: Decimal, scale: int) -> bool:
    """Whether the value has no more significant decimal places than the scale ("1.50" fits 2; "1.505" not)."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -scale:
        return True  # the common case: written with at most `scale` places
    return value == value.quantize(_QUANTA[scale], context=_CTX)


def render(value: Decimal, scale: int) -> str:
    """The amount as a decimal string with exactly `scale` places."""
    return str(value.quantize(Decimal(1).scaleb(-scale), context=_CTX))
