"""A minimal JSON Schema validator for tool arguments (the subset the tool schemas use)."""

from __future__ import annotations

import re
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list, tuple),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_ok(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else expected
    for name in names:
        if isinstance(value, bool) and name in {"integer", "number"}:
            continue
        if isinstance(value, _TYPES[name]):
            return True
    return False


def _check_scalar(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: must be one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: does not match {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: above the maximum {schema['maximum']}")
    return errors


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = [f"{path}.{key}: is required" for key in schema.get("required", ()) if key not in value]
    properties: dict[str, Any] = schema.get("properties", {})
    for key, item in value.items():
        if key in properties:
            errors.extend(validate(item, properties[key], f"{path}.{key}"))
        elif schema.get("additionalProperties", True) is False:
            errors.append(f"{path}.{key}: is not allowed")
    return errors


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Every way the value breaks the schema, as readable messages; empty when valid."""
    if "type" in schema and not _type_ok(value, schema["type"]):
        return [f"{path}: must be of type {schema['type']}"]
    errors = _check_scalar(value, schema, path)
    if isinstance(value, dict):
        errors.extend(_check_object(value, schema, path))
    if isinstance(value, list | tuple):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                errors.extend(validate(item, schema["items"], f"{path}[{index}]"))
    return errors
