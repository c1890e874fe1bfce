"""Every process the tests start, as an operator starts it: worker, beat, API, PostgreSQL (Redis: worker.redis_server).

Each is the documented command; `documented_env` gives a child only what an operator's shell would (PATH, HOME
and the FLEET_* variables named), so a test cannot pass because pytest's own environment held something.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from worker.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
AGENT = str(Path(sys.executable).parent / "agent")

__all__ = ["AGENT", "ApiServer", "BeatProcess", "FleetProcess", "PostgresServer", "RedisServer", "WorkerProcess",
           "documented_env", "wait_for"]  # fmt: skip


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll until the condition returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def exit_or_fail(
    process: subprocess.Popen[Any], timeout: float, what: str, output: Callable[[], str], kill: Callable[[], None]
) -> int:
    """The exit code once it exits; one that hangs past the timeout is killed and the test fails with its output.

    SIGUSR1 first: a Celery worker writes every thread's stack to its output, which says where it hung.
    """
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            kill()
    raise AssertionError(f"{what} did not exit within {timeout} s:\n{output()}")


def documented_env(**settings: str) -> dict[str, str]:
    """PATH, HOME and the given settings as FLEET_* variables (`broker_url=...` -> FLEET_BROKER_URL), nothing else."""
    env = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    env.update({f"FLEET_{name.upper()}": value for name, value in settings.items()})
    return env


class FleetProcess:
    """A documented command of the fleet as a child process, its output in a log file."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.command, self.env, self.log_path = command, env, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> FleetProcess:
        """Start it in a session of its own (a kill reaches its children)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=out, start_new_session=True
            )
        return self

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """Everything it printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        """The last lines it printed."""
        return "\n".join(self.output().splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        """Send a signal to the main process."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL the whole process group, as the kernel's OOM killer or a lost host would."""
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def wait_exit(self, timeout: float) -> int:
        """Its exit code; one that hangs past the timeout fails the test with its threads and output (exit_or_fail)."""
        assert self.process is not None
        return exit_or_fail(self.process, timeout, " ".join(self.command[2:6]), lambda: self.tail(200), self.kill)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a warm shutdown), then kill if it does not exit in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


class BeatProcess(FleetProcess):
    """`celery -A worker beat`, as an operator starts one on each machine."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__([sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel", "INFO"], env, log_path)


class WorkerProcess(FleetProcess):
    """`celery -A worker worker` as a child process, the way an operator starts it."""

    def __init__(
        self,
        queues: str = "agents,ledger,reports",
        concurrency: int = 1,
        pool: str = "prefork",
        name: str | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        extra: list[str] | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        """`env` adds to the test session's environment; `environ` replaces it (see documented_env)."""
        self.name = name or f"test-{uuid.uuid4().hex[:6]}"
        self.queues = queues
        self.command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker",
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "-P",
            pool,
            "-n",
            f"{self.name}@%h",
            "--without-mingle",
            "--without-gossip",
            *(extra or []),
        ]
        super().__init__(
            self.command,
            environ if environ is not None else {**os.environ, **(env or {})},
            log_path or Path(os.environ["FLEET_LOG_DIR"]) / f"{self.name}.out",
        )

    @property
    def hostname(self) -> str:
        """The node name Celery reports, as `celery inspect` shows it."""
        import socket

        return f"{self.name}@{socket.gethostname()}"

    def start(self, app: Any = None, timeout: float = 60.0) -> WorkerProcess:
        """Start and wait until it answers fleet.ping on its first queue."""
        super().start()
        if app is not None:
            self.wait_ready(app, timeout)
        return self

    def wait_ready(self, app: Any, timeout: float = 60.0) -> None:
        """Block until fleet.ping sent to each of its queues comes back from this worker."""
        for queue in self.queues.split(","):
            deadline = time.monotonic() + timeout
            result = app.send_task("fleet.ping", queue=queue, priority=0)
            while not result.ready():
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"worker exited with {self.process.returncode}: {self.tail()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"worker did not answer on {queue}: {self.tail()}")
                time.sleep(0.05)
        # Another worker on the same queue may have answered those pings: this one answers its own name too.
        deadline = time.monotonic() + timeout
        while not app.control.ping(destination=[self.hostname], timeout=0.5):
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {self.hostname} does not answer: {self.tail()}")


class PostgresServer:
    """A private PostgreSQL cluster (initdb, pg_ctl) on a free port, one password-protected role; stoppable.

    The server refuses to run as root: when the tests run as root its commands run as the `postgres` user.
    """

    ROLE = "fleet"

    def __init__(self, folder: Path, port: int, password: str) -> None:
        self.folder, self.port, self.password = folder, port, password
        self.data = folder / "data"
        self.bin = self.find_binaries()

    @staticmethod
    def find_binaries() -> Path:
        """The folder holding initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
        on_path = shutil.which("initdb")
        candidates = [Path(on_path).resolve().parent] if on_path else []
        versions = Path("/usr/lib/postgresql").glob("*/bin")  # Debian's layout: 15/bin, 16/bin
        candidates += sorted(
            versions, key=lambda p: [int(n) for n in p.parent.name.split(".") if n.isdigit()], reverse=True
        )
        for folder in candidates:
            if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
                return folder
        raise FileNotFoundError(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin"
        )

    def _run(self, *command: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stdout}{done.stderr}")

    def url(self, database: str = "postgres") -> str:
        """The URL of a database of this cluster, with the role's password."""
        return f"postgresql://{self.ROLE}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def init(self) -> PostgresServer:
        """Create the cluster: scram-sha-256 authentication for every connection, the role's password set."""
        self.folder.mkdir(parents=True, exist_ok=True)
        password_file = self.folder / "password"
        password_file.write_text(self.password)
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            for path in (self.folder, password_file):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run(f"{self.bin}/initdb", "-D", str(self.data), "-U", self.ROLE, "--auth=scram-sha-256",
                  f"--pwfile={password_file}", "-E", "UTF8", "--no-sync")  # fmt: skip
        password_file.unlink()
        return self

    def start(self) -> PostgresServer:
        """Start the server and wait until it accepts connections (`pg_ctl -w`)."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(f"{self.bin}/pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"),
                  "-w", "start")  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop the server at once (`-m fast`: open connections are terminated, as in an outage)."""
        self._run(f"{self.bin}/pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


class ApiServer:
    """A running `agent api` subprocess and the URL it answers on."""

    def __init__(
        self, config_path: Path, log_path: Path, env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "FLEET_CONFIG": str(config_path), **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiServer:
        """Start uvicorn and wait until /health/live answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [AGENT, "api", "--port", str(self.port), *self.extra], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        wait_for(self._live, timeout=120, what=f"agent api on {self.url}: {self.tail()}")
        return self

    def _live(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"agent api exited with {self.process.returncode}: {self.tail()}")
        try:
            return httpx.get(self.url + "/health/live", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def tail(self, lines: int = 30) -> str:
        """The last lines uvicorn and the API logged."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn shuts down gracefully)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
