"""FLEET_CONFIG sections validated by their package's model, every problem named the same way.

Depends on pydantic only, so the pure packages (agents, ledger, beat) import it as freely as worker and gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def problems(section: str, exc: ValidationError) -> str:
    """Every error of a section as `section.key: reason`, joined by '; '."""
    return "; ".join(f"{'.'.join([section, *(str(p) for p in e['loc'])])}: {e['msg']}" for e in exc.errors())


def validate_section(
    model: type[Model],
    section: str,
    raw: Mapping[str, Any],
    error: type[Exception],
    prefix: str = "FLEET_CONFIG: ",
) -> Model:
    """`raw` validated by `model`; otherwise `error(prefix + problems)`, without pydantic's long traceback."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(prefix + problems(section, exc)) from None
