"""Bounds of the real `agent api` against floods: waiting requests, readiness probes, failed logins, forwarded
addresses. Each test runs its own API on a Redis database no worker reads, so nothing it sends is served."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ApiServer
from tests.e2e.test_api_security import bearer, create_key, revoke
from tests.support import wait_for
from worker.migrate import upgrade

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def keys(redis_server, database_url: str) -> Iterator[dict[str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """Two run keys and a reader in the session database (beside the session's Redis); revoked afterwards."""
    made = {
        "a": create_key("--name", "limits-a", "--scope", "run"),
        "b": create_key("--name", "limits-b", "--scope", "run"),
        "read": create_key("--name", "limits-read", "--scope", "read"),
    }
    yield made
    for key in made.values():
        revoke(key)


def idle_broker(db: int) -> tuple[str, redis.Redis]:
    """A Redis database of the session's server that no worker reads, emptied, and a client on it."""
    url = os.environ["FLEET_BROKER_URL"].rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    return url, client


def start_api(tmp_path: Path, gateway: dict[str, Any], broker_url: str, **env: str) -> ApiServer:
    """`agent api` with this `gateway` section, the idle broker and its own log folder (plus `env`)."""
    config = tmp_path / "fleet.yaml"
    config.write_text(yaml.safe_dump({"gateway": {"key_cache_s": 0, **gateway}}))
    variables = {
        "FLEET_BROKER_URL": broker_url,
        "FLEET_RESULT_BACKEND": broker_url,
        "FLEET_LOG_DIR": str(tmp_path / "log"),
    }
    return ApiServer(config, tmp_path / "api.out", {**variables, **env}).start()


def _wait_request(server: ApiServer, key: dict[str, Any]) -> httpx.Response:
    body = {"input": "compute 1+1"}
    return httpx.post(server.url + "/api/v1/agent/run?wait=true", json=body, headers=bearer(key), timeout=300)


def _done(futures: list[Future[httpx.Response]], count: int) -> list[httpx.Response] | None:
    finished = [f.result() for f in futures if f.done()]
    return finished if len(finished) >= count else None


def test_waiting_requests_are_bounded_and_liveness_answers_while_they_wait(
    tmp_path: Path, keys: dict[str, dict[str, Any]]
) -> None:
    # Given an API whose runs are never served (no worker), allowing 8 waits per key and 12 in all
    broker_url, _client = idle_broker(6)
    gateway = {"wait_timeout_s": 120, "max_waits_per_key": 8, "max_waits": 12}
    server = start_api(tmp_path, gateway, broker_url)
    pool = ThreadPoolExecutor(60)
    try:
        # When one key sends 45 requests that wait for their runs
        from_a = [pool.submit(_wait_request, server, keys["a"]) for _ in range(45)]
        # Then 37 are refused at once with 429 and Retry-After, 8 wait
        refused = wait_for(lambda: _done(from_a, 37), timeout=120, what="37 waits refused")
        assert {r.status_code for r in refused} == {429}
        assert all(r.json()["code"] == "too_many_waiting" and int(r.headers["Retry-After"]) >= 1 for r in refused)
        # And a second key gets 4 places before the process is full (503)
        from_b = [pool.submit(_wait_request, server, keys["b"]) for _ in range(8)]
        full = wait_for(lambda: _done(from_b, 4), timeout=120, what="4 waits refused for the process")
        assert {r.status_code for r in full} == {503} and all("Retry-After" in r.headers for r in full)
        # And liveness, and a plain request of another key, answer while the 12 requests are still waiting
        assert httpx.get(server.url + "/health/live", timeout=30).status_code == 200
        assert httpx.get(server.url + "/api/v1/tools", headers=bearer(keys["read"]), timeout=30).status_code == 200
        assert sum(not f.done() for f in from_a + from_b) == 12
    finally:
        server.stop()
        pool.shutdown(wait=True, cancel_futures=True)


def test_readiness_is_one_probe_shared_by_every_caller_and_anonymous_callers_see_status_only(
    tmp_path: Path, keys: dict[str, dict[str, Any]]
) -> None:
    # Given an API on a broker no worker reads (readiness is 503), readiness cached for 120 s, 8 probes per address
    broker_url, client = idle_broker(7)
    gateway = {"ready_timeout_s": 1, "ready_cache_s": 120, "health_rate_limit": 8}
    server = start_api(tmp_path, gateway, broker_url)
    try:
        # When anonymous callers ask for readiness four times
        anonymous = [httpx.get(server.url + "/health/ready", timeout=30) for _ in range(4)]
        # Then one ping per queue reached the broker in all, and they learn each component's status, nothing more
        assert [client.llen(queue) for queue in ("agents", "ledger", "reports")] == [1, 1, 1]
        for answer in anonymous:
            assert answer.status_code == 503 and answer.json()["status"] == "error"
            assert all(set(c) == {"name", "status"} for c in answer.json()["components"])
        startup = httpx.get(server.url + "/health/startup", timeout=30)
        legacy = httpx.get(server.url + "/api/health", timeout=30)
        assert "heads" not in startup.text and "detail" not in legacy.text
        # And a read key sees the details (which worker answered, which migrations)
        detailed = httpx.get(server.url + "/health/ready", headers=bearer(keys["read"]), timeout=30)
        components = {c["name"]: c for c in detailed.json()["components"]}
        assert "no worker answered" in components["queue:ledger"]["detail"]
        assert "heads" in httpx.get(server.url + "/health/startup", headers=bearer(keys["read"]), timeout=30).text
        # And past 8 probes an address is told to slow down
        limited = httpx.get(server.url + "/health/ready", timeout=30)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert httpx.get(server.url + "/health/live", timeout=30).status_code == 200
    finally:
        server.stop()


def _log_records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in folder.glob("api*.jsonl") for line in path.read_text().splitlines()]


token_text = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~+/=", min_size=12, max_size=80
)
authorization = st.one_of(
    st.builds(lambda t: f"Bearer {t}", token_text),
    st.builds(lambda t: f"bearer fleet_0a1b2c3d_{t}", token_text),
    token_text,
    st.builds(lambda t: f"Basic {t}", token_text),
)


def test_failed_logins_are_counted_logged_without_the_token_and_slowed_per_client(
    tmp_path: Path, keys: dict[str, dict[str, Any]]
) -> None:
    # Given an API allowing 5 failed authentications per address per window
    broker_url, client = idle_broker(8)
    server = start_api(tmp_path, {"auth_failure_limit": 5}, broker_url)
    presented: list[str] = []
    try:
        # When hostile Authorization headers are sent
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(value=authorization)
        def refused(value: str) -> None:
            presented.append(value.split(" ", 1)[-1])
            answer = httpx.get(server.url + "/api/v1/tools", headers={"Authorization": value}, timeout=30)
            # Then each is refused (401, or 429 once the address failed too often), and never echoed
            assert answer.status_code in (401, 429), answer.text
            assert value.split(" ", 1)[-1] not in answer.text

        refused()
        # And a key sent without the Bearer scheme is told how to send it
        for key in client.scan_iter("fleet:authfail:*"):
            client.delete(key)
        bare = httpx.get(server.url + "/api/v1/tools", headers={"Authorization": keys["read"]["token"]}, timeout=30)
        assert bare.status_code == 401 and "Authorization: Bearer <key>" in bare.json()["detail"]
        # And after 5 unknown keys from this address, the sixth attempt, even with a good key, gets 429
        bogus = [
            httpx.get(server.url + "/api/v1/tools", headers={"X-API-Key": f"fleet_00000000_x{n}"}) for n in range(5)
        ]
        assert [a.status_code for a in bogus] == [401] * 5
        throttled = httpx.get(server.url + "/api/v1/tools", headers=bearer(keys["read"]), timeout=30)
    finally:
        server.stop()
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "too_many_failed_authentications" and int(throttled.headers["Retry-After"]) >= 1
    # And every failure is counted and logged in category security, without any token
    records = [
        r for r in _log_records(tmp_path / "log") if r.get("category") == "security" and "failed" in r["message"]
    ]
    reasons = {r["reason"] for r in records}
    assert {"unknown", "scheme", "throttled"} <= reasons and all(r["client"] == "127.0.0.1" for r in records)
    logs = "\n".join(path.read_text() for path in (tmp_path / "log").glob("*")) + server.tail(10_000)
    for secret in [keys["read"]["token"], *[p for p in presented if len(p) >= 6]]:
        assert secret not in logs


def test_the_failure_counter_is_visible_to_prometheus(tmp_path: Path, keys: dict[str, dict[str, Any]]) -> None:
    broker_url, _client = idle_broker(9)
    server = start_api(tmp_path, {}, broker_url)
    try:
        for n in range(3):
            httpx.get(server.url + "/api/v1/tools", headers={"X-API-Key": f"fleet_11111111_y{n}"}, timeout=30)
        metrics = httpx.get(server.url + "/metrics", headers=bearer(keys["read"]), timeout=30)
    finally:
        server.stop()
    counted = re.findall(r'^fleet_api_auth_failures_total\{reason="unknown"\} (\S+)$', metrics.text, re.MULTILINE)
    assert counted and float(counted[0]) >= 3


forwarded = st.one_of(
    st.ip_addresses().map(str),
    st.lists(st.ip_addresses().map(str), min_size=2, max_size=4).map(", ".join),
    st.text(alphabet="0123456789abcdef.:, unknown", min_size=1, max_size=40).map(str.strip).filter(bool),
)


def _empty_database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'nokeys.db'}"
    upgrade(url)
    return url


def test_without_trusted_proxies_x_forwarded_for_cannot_dodge_the_per_address_limit(tmp_path: Path) -> None:
    # Given an open API (no keys) limited to 3 requests per address, trusting no proxy (the default)
    broker_url, client = idle_broker(10)
    server = start_api(tmp_path, {"rate_limit": 3}, broker_url, FLEET_DATABASE_URL=_empty_database(tmp_path))
    try:

        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(addresses=st.lists(forwarded, min_size=6, max_size=6))
        def limited(addresses: list[str]) -> None:
            for key in client.scan_iter("fleet:ratelimit:*"):
                client.delete(key)
            # When six requests claim six forwarded addresses
            codes = [
                httpx.get(server.url + "/api/v1/tools", headers={"X-Forwarded-For": a}, timeout=30).status_code
                for a in addresses
            ]
            # Then they are counted as the one address that connected
            assert codes == [200, 200, 200, 429, 429, 429], (addresses, codes)

        limited()
    finally:
        server.stop()


def test_a_configured_proxy_is_believed_and_its_clients_are_counted_apart(tmp_path: Path) -> None:
    # Given an open API limited to 3 requests per address, behind a proxy on loopback
    broker_url, _client = idle_broker(11)
    gateway = {"rate_limit": 3, "trusted_proxies": ["127.0.0.1"]}
    server = start_api(tmp_path, gateway, broker_url, FLEET_DATABASE_URL=_empty_database(tmp_path))
    try:
        # When the proxy forwards six clients, then one client four times
        spread = [f"203.0.113.{n}" for n in range(6)]
        codes = [httpx.get(server.url + "/api/v1/tools", headers={"X-Forwarded-For": a}).status_code for a in spread]
        same = [httpx.get(server.url + "/api/v1/tools", headers={"X-Forwarded-For": "198.51.100.7"}) for _ in range(4)]
    finally:
        server.stop()
    # Then each client has its own count
    assert codes == [200] * 6
    assert [a.status_code for a in same] == [200, 200, 200, 429]
