"""Tables of the agents domain."""

from __future__ import annotations
