"""JSON Schemas of the envelope and of each event type's `data`, generated from the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.events import DATA_MODELS, Envelope

HERE = Path(__file__).resolve().parent


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for the envelope and each event type."""
    out = {"envelope.json": Envelope.model_json_schema()}
    for name, model in DATA_MODELS.items():
        out[f"{name}.json"] = model.model_json_schema()
    return out


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write() -> None:
    """Regenerate the committed schema files (`python -m ledger.schema`)."""
    for name, schema in schemas().items():
        (HERE / name).write_text(render(schema), encoding="utf-8")
