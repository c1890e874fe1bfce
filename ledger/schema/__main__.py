"""`python -m ledger.schema` regenerates the committed JSON Schemas."""

from __future__ import annotations

from ledger.schema import write

write()
