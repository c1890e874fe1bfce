"""`agent up`: the whole fleet on one machine as child processes, stopped cleanly on Ctrl-C."""

from __future__ import annotations

import ctypes
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from worker import console, prometheus_env, redis_server
from worker.application import get_app
from worker.errors import BrokerUnavailable
from worker.fleet_status import forget_services, register_services, workers_online
from worker.migrate import upgrade
from worker.redis_client import get_redis
from worker.restart_policy import RestartPolicy, explain
from worker.settings import Settings, mask_url

log = logging.getLogger("fleet.runner")

COLOURS = ["36", "32", "35", "33", "34", "96", "92", "95"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Longer than the worker's soft shutdown (20 s) so tasks in flight finish or are requeued first.
STOP_GRACE_S = 40.0
# How long Flower's start waits for the workers to answer (its first inspection finds them then).
WORKERS_READY_S = 60.0
# Lines of a child's output kept to say why it exited.
TAIL_LINES = 5


@dataclass
class Child:
    """One supervised process: its name, command, when it was restarted and when it is due to be."""

    name: str
    command: list[str]
    colour: str
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)  # monotonic times
    restart_at: float | None = None  # set while it waits to be started again
    started_at: float = 0.0
    env: dict[str, str] | None = None  # the fleet's environment when None
    pump: threading.Thread | None = field(default=None, repr=False)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES), repr=False)


def _die_with_parent() -> None:
    # Linux prctl(PR_SET_PDEATHSIG, SIGTERM): a child never outlives a killed `agent up`.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)


@dataclass
class FleetOptions:
    """What `agent up` starts."""

    workers: int = 1
    concurrency: int = 1
    queues: str = "agents,ledger,reports"
    beat: bool = True
    flower: bool = True
    api: bool = True
    api_port: int = 8000
    flower_port: int = 5555
    var_dir: Path = Path("var")
    verbose: bool = False  # print every line of every process, not only start-up, warnings and errors


class Fleet:
    """Starts the broker if needed, migrates, runs every process, and stops them in order."""

    def __init__(
        self,
        settings: Settings,
        options: FleetOptions,
        out: IO[str] | None = None,
        announce: Callable[[], list[str]] | None = None,
        policy: RestartPolicy | None = None,
    ) -> None:
        self.settings = settings
        # Lines to print once the database is ready (the gateway's development key).
        self.announce = announce
        self.options = options
        self.out = out or sys.stdout
        self.children: list[Child] = []
        self.redis: redis_server.RedisServer | None = None
        self.env = dict(os.environ)
        self.policy = policy or RestartPolicy()
        self._stopping = threading.Event()
        self._print_lock = threading.Lock()
        self.colour = self.out.isatty()

    def say(self, name: str, line: str, colour: str = "1") -> None:
        """Print one prefixed line, coloured on a terminal."""
        prefix = f"{name:>9} | "
        if self.colour:
            prefix = f"\033[{colour}m{prefix}\033[0m"
        with self._print_lock:
            self.out.write(prefix + line + "\n")
            self.out.flush()

    def ensure_broker(self) -> None:
        """Use the Redis that answers; start the bundled one when a local URL has no server."""
        url, shown = self.settings.broker_url, mask_url(self.settings.broker_url)
        if redis_server.answers(url):
            if redis_server.credentials_refused(url):
                raise BrokerUnavailable(f"the broker at {shown} refused the user and password of FLEET_BROKER_URL")
            self.say("fleet", f"broker answers at {shown}")
            return
        host = urlsplit(url).hostname or ""
        # A bundled Redis stands in for a plain local one only: never for Sentinels or a TLS server.
        if host not in LOCAL_HOSTS or not url.startswith("redis://"):
            raise BrokerUnavailable(f"no broker answers at {shown}; start Redis there or set FLEET_BROKER_URL")
        data_dir = self.options.var_dir / f"redis-{redis_server.port_of(url)}"
        # The URL's credentials, if any, become the bundled server's: the fleet connects as it always does.
        username, password = redis_server.credentials_of(url)
        self.redis = redis_server.RedisServer(
            port=redis_server.port_of(url), data_dir=data_dir, username=username, password=password
        ).start()
        self.say("fleet", f"no broker answered: started bundled Redis on {shown} (data in {data_dir})")

    def ensure_database(self) -> None:
        """Apply every migration before any process touches the database."""
        upgrade(self.settings.database_url)
        self.say("fleet", f"database ready: {mask_url(self.settings.database_url)}")

    def ensure_flower_auth(self) -> str:
        """Flower's credentials: FLEET_FLOWER_AUTH, or a generated pair for this run."""
        if self.settings.flower_auth is not None:
            return self.settings.flower_auth.get_secret_value()
        auth = f"admin:{secrets.token_urlsafe(12)}"
        self.env["FLEET_FLOWER_AUTH"] = auth
        return auth

    def plan(self) -> list[Child]:
        """The child processes to run, in start order."""
        celery = [sys.executable, "-m", "celery", "-A", "worker"]
        children = []
        for index in range(1, self.options.workers + 1):
            command = [
                *celery,
                "worker",
                "-Q",
                self.options.queues,
                "-c",
                str(self.options.concurrency),
                "-n",
                f"worker{index}@%h",
                "--loglevel",
                self.settings.log_level,
            ]
            children.append(Child(f"worker{index}", command, COLOURS[(index - 1) % len(COLOURS)]))
        if self.options.beat:
            # The schedule's state lives in Redis (worker.beat_scheduler): no schedule file.
            children.append(Child("beat", [*celery, "beat", "--loglevel", "INFO"], "93"))
        if self.options.api:
            api = [sys.executable, "-m", "gateway.cli", "api", "--port", str(self.options.api_port)]
            children.append(Child("api", api, "97"))
        if self.options.flower:
            # Flower's own metrics stay in its memory, served at its /metrics, as when it is started by hand.
            env = {k: v for k, v in self.env.items() if k != prometheus_env.ENV}
            children.append(Child("flower", [*celery, "flower", f"--port={self.options.flower_port}"], "94", env=env))
        return children

    def spawn(self, child: Child) -> None:
        """Start one child with its output pumped through our prefix."""
        child.process = subprocess.Popen(
            child.command,
            env=child.env if child.env is not None else self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()
        child.pump = threading.Thread(target=self._pump, args=(child, child.process), daemon=True)
        child.pump.start()

    def _pump(self, child: Child, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            child.tail.append(line)
            if self.options.verbose or console.for_terminal(line):
                self.say(child.name, line, child.colour)

    def start(self) -> None:
        """Broker, database, then every process."""
        self.options.var_dir.mkdir(parents=True, exist_ok=True)
        self.ensure_broker()
        self.ensure_database()
        auth = self.ensure_flower_auth()
        # Every child writes its metrics to this folder, whatever it imported first (worker/prometheus_env.py).
        self.env[prometheus_env.ENV] = str(prometheus_env.ensure_multiproc_dir())
        self.children = self.plan()
        for child in self.children:
            if child.name == "flower":
                self.wait_for_workers()
            self.spawn(child)
        self.register_services()
        if self.options.flower:
            user, _, password = auth.partition(":")
            self.say("fleet", f"Flower: http://127.0.0.1:{self.options.flower_port}  user {user}  password {password}")
        if self.options.api:
            self.say("fleet", f"API: http://127.0.0.1:{self.options.api_port}/docs")
            self.say("fleet", f"console: http://127.0.0.1:{self.options.api_port}/console")
            for line in self.announce() if self.announce else []:
                self.say("fleet", line)
        quiet = "" if self.options.verbose else "; per-event lines there only, --verbose prints them here"
        self.say("fleet", f"logs: {self.settings.log_dir}/{quiet}  (Ctrl-C stops everything)")

    def wait_for_workers(self) -> None:
        """Until every worker answers a ping (bounded): Flower started earlier warns that none answers."""
        app = get_app()

        deadline = time.monotonic() + WORKERS_READY_S
        workers = [c for c in self.children if c.name.startswith("worker") and c.process is not None]
        while not self._stopping.is_set() and time.monotonic() < deadline:
            if any(c.process is not None and c.process.poll() is not None for c in workers):
                return  # a worker exited: the supervisor says so; Flower need not wait for it
            try:
                if len(workers_online(app, timeout=1.0)) >= len(workers):
                    return
            except (OSError, KombuOperationalError) as exc:
                self.say("fleet", f"workers not reachable ({exc}); starting Flower anyway")
                return
        self.say("fleet", f"workers did not all answer within {WORKERS_READY_S:.0f}s; starting Flower anyway")

    def service_urls(self) -> dict[str, str]:
        """What this fleet serves, for the briefing and the report (`reports.flower_url`/`api_url` win)."""
        urls = {}
        if self.options.flower:
            urls["flower"] = f"http://127.0.0.1:{self.options.flower_port}/healthcheck"
        if self.options.api:
            urls["api"] = f"http://127.0.0.1:{self.options.api_port}/health/live"
        return urls

    def register_services(self, forget: bool = False) -> None:
        """Record (or, at stop, forget) the service URLs in the broker, where every process reads them."""
        try:
            if forget:
                forget_services(get_redis())
            else:
                register_services(get_redis(), self.service_urls())
        except (RedisError, OSError) as exc:
            self.say("fleet", f"warning: service URLs not recorded in the broker: {exc}")

    def supervise(self) -> None:
        """Restart each child that exits, on its own schedule (worker/restart_policy.py), until asked to stop."""
        while not self._stopping.wait(0.5):
            for child in self.children:
                self._tend(child, time.monotonic())

    def _tend(self, child: Child, now: float) -> None:
        assert child.process is not None
        if child.restart_at is None:
            code = child.process.poll()
            if code is None:
                return
            decision = self.policy.decide(child.restarts, now)
            child.restart_at = now + decision.delay_s
            if child.pump is not None:
                child.pump.join(timeout=2)  # its last lines, printed below
            self.say("fleet", explain(child.name, code, decision, self.policy))
            for line in child.tail:
                self.say("fleet", f"  {child.name} said: {line}")
        elif now >= child.restart_at and not self._stopping.is_set():
            child.restarts.append(now)
            child.restart_at = None
            child.tail.clear()
            self.spawn(child)

    def request_stop(self, *_: object) -> None:
        """Signal handler: leave the supervision loop."""
        self._stopping.set()

    def stop(self) -> None:
        """Warm shutdown of every child (SIGTERM), then SIGKILL after the grace period; Redis last."""
        self._stopping.set()
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            self.say("fleet", f"stopping {child.name}")
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("fleet", f"{child.name} did not stop in {STOP_GRACE_S:.0f}s; killing it")
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=2)
        if self.children:
            self.register_services(forget=True)
        if self.redis is not None:
            self.redis.stop()
            self.say("fleet", "bundled Redis stopped")
        self.say("fleet", "all processes stopped")

    def run(self) -> None:
        """Start, supervise until Ctrl-C or SIGTERM, stop."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            self.start()
            self.supervise()
        finally:
            self.stop()
