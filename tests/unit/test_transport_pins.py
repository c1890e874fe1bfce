"""Tripwires: the kombu code that worker/transport.py replaces is still the code it was written against."""

from __future__ import annotations

import hashlib
import inspect

import pytest
from kombu.transport import redis as kombu_redis

# kombu 5.7.0. When kombu changes one of these, read its new version and carry the change over to
# worker/transport.py (the fetch script in the BRPOP slot, the owner-checked QoS writes, the poller's wake-up
# reads), then record the new digest here.
REPLACED = {
    "Channel._brpop_start": "06723d707ddf224025af70ff511e07a27e1e8a37ec509e7dfa11ee408a79ccec",
    "Channel._brpop_read": "c42518699709f2df90f55a048fe6346612ae5527e5c4a6819f2c0920dc62088f",
    "Channel._get": "be26a9f1eb4cf8da2aa65f4815a1709bf80b4434b064d3d7146872d318ad506c",
    "QoS.append": "35c655f6ecc62fe6e9902f7498dde9b47ff27187973d7568e02529c400027416",
    "QoS.ack": "1bc15a4ddf541af6aede3b76093919f847899f93dd8c1a2537ab7eaff1227207",
    "QoS.reject": "747a02434344d1a6b27480e397a2c047add90085bf8284d420285ac0763ae262",
    "QoS.restore_by_tag": "58e161d81b6fe18d1fe73d53d13e6359271bcc249d0da58ee737c6775d51ceb8",
    "QoS.restore_visible": "d4a4a40a3eaf9f23ed3651a5c03602c80571bd30c49bf256f0b65fbd6dae3851",
    "MultiChannelPoller.on_readable": "c0d99f241607f84510fe6f8c148b880a76500954bfbd540d10b35689d900942b",
    "MultiChannelPoller.get": "e0f960e0c3288d3f842640c7f9580fee4304e27df67acbd503a73792c6ca4942",
    "MultiChannelPoller._register_BRPOP": "85724582464a615f5382a87e284ecee4e496bdf2c59a404dfefed968a5c04ee5",
}
_CLASSES = {
    "Channel": kombu_redis.Channel,
    "QoS": kombu_redis.QoS,
    "MultiChannelPoller": kombu_redis.MultiChannelPoller,
}


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_the_kombu_method_the_fleet_transport_replaces_has_not_changed(name: str) -> None:
    owner, method = name.split(".")
    source = inspect.getsource(getattr(_CLASSES[owner], method))
    assert hashlib.sha256(source.encode()).hexdigest() == REPLACED[name], (
        f"kombu's {name} changed: review worker/transport.py's copy of it"
    )
