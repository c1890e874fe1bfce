"""Kept for older imports: the one Python client is gateway/client.py, re-exported here.

The ledger's routing rules stay in ledger/filters.py; `gateway.client.submit` applies them.
"""

from __future__ import annotations

from fleet_contract import BROKER_TRANSPORT_OPTIONS, CORRELATION_HEADER
from gateway.client import LEDGER_QUEUE as QUEUE
from gateway.client import LEDGER_TASK as TASK_NAME
from gateway.client import Sent, producer_app, submit

__all__ = ["BROKER_TRANSPORT_OPTIONS", "CORRELATION_HEADER", "QUEUE", "TASK_NAME", "Sent", "producer_app", "submit"]
