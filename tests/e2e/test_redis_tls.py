"""A Redis that speaks only TLS and wants a client certificate: the fleet connects with the documented settings."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import AGENT, ROOT, WorkerProcess, documented_env, wait_for
from worker.redis_server import find_binary, free_port

pytestmark = pytest.mark.e2e


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=fleet-test-ca", cwd=folder)  # fmt: skip
    (folder / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", "ext", cwd=folder)  # fmt: skip
    # An unrelated CA, to check that the server's certificate is really verified.
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt",
             "-days", "2", "-subj", "/CN=other-ca", cwd=folder)  # fmt: skip


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates (apt-get install openssl)")
    certs = tmp_path / "certs"
    certs.mkdir()
    _certificates(certs)
    port = free_port()
    server = subprocess.Popen(
        [find_binary(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key"),
         "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    yield port, certs
    server.kill()
    server.wait(10)


def test_the_fleet_works_over_tls_with_a_client_certificate_and_refuses_a_server_it_cannot_verify(
    tls_redis: tuple[int, Path], tmp_path: Path
) -> None:
    port, certs = tls_redis
    env = documented_env(
        broker_url=f"rediss://127.0.0.1:{port}/0",
        redis_ca_cert=str(certs / "ca.crt"),
        redis_client_cert=str(certs / "client.crt"),
        redis_client_key=str(certs / "client.key"),
        database_url=f"sqlite:///{tmp_path / 'fleet.db'}",
        log_dir=str(tmp_path / "log"),
        report_dir=str(tmp_path / "reports"),
    )

    def agent(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AGENT, *args], cwd=ROOT, env={**env, **(extra or {})}, capture_output=True, text=True, timeout=300
        )

    assert agent("db", "upgrade").returncode == 0
    # Given a worker started as documented, with only the FLEET_* variables of a TLS Redis
    worker = WorkerProcess("ledger", name="tls", environ=env, log_path=tmp_path / "worker.out").start()
    try:
        # Then `agent status` reaches it over TLS and sees the worker
        status = wait_for(lambda: (r := agent("status")).returncode == 0 and r, timeout=120, interval=1)
        assert "rediss://127.0.0.1" in status.stdout and "tls@" in status.stdout
        # And ledger events go through and come back
        events = tmp_path / "events.jsonl"
        events.write_text(agent("ledger", "generate", "--events", "20", "--faults", "0", "--seed", "5").stdout)
        submitted = agent("ledger", "submit", str(events), "--wait", "--json", "--timeout", "60")
        assert submitted.returncode == 0, submitted.stderr
        # When the CA given is not the one that signed the server's certificate
        refused = agent("status", extra={"FLEET_REDIS_CA_CERT": str(certs / "other.crt")})
        # Then the command fails in one line, naming the broker, with the exit code of an unavailable broker
        assert refused.returncode == 3 and "Traceback" not in refused.stderr
        assert "error:" in refused.stderr or "broker" in refused.stdout
    finally:
        worker.stop()
