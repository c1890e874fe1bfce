"""The amount rule: a decimal string is major units, an integer is minor units of the currency's scale."""

from __future__ import annotations

from decimal import Context, Decimal

_CTX = Context(prec=60)


def to_decimal(raw: int | str, scale: int) -> Decimal:
    """The amount in major units: "12.5" is 12.5; 1250 with scale 2 is 12.50."""
    if isinstance(raw, int):
        return Decimal(raw).scaleb(-scale, context=_CTX)
    return Decimal(raw)


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
