"""Tripwires: the kombu code that worker/transport.py replaces is still the code it was written against."""

from __future__ import annotations

import hashlib
import inspect

import pytest
from kombu.transport import redis as kombu_redis

# kombu 5.7.0. When kombu changes one of these, read its new version and carry the change over to
# worker/transport.py (Channel._brpop_read, Channel._get: the same reads, with junk checked by
# worker/envelope.py), then record the new digest here.
REPLACED = {
    "_brpop_read": "c42518699709f2df90f55a048fe6346612ae5527e5c4a6819f2c0920dc62088f",
    "_get": "be26a9f1eb4cf8da2aa65f4815a1709bf80b4434b064d3d7146872d318ad506c",
}


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_the_kombu_method_the_fleet_transport_replaces_has_not_changed(name: str) -> None:
    source = inspect.getsource(getattr(kombu_redis.Channel, name))
    assert hashlib.sha256(source.encode()).hexdigest() == REPLACED[name], (
        f"kombu's Channel.{name} changed: review worker/transport.py's copy of it"
    )
