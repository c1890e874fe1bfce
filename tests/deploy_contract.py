"""What a deployment file may name, checked against the code: commands, options, settings, probe paths.

Shared by the docker-compose and the Kubernetes tests, so both hold the same line.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import typer

from worker.constants import QUEUES
from worker.settings import Settings

# Variables a container may set besides the fleet's settings, each read by a library we run.
FOREIGN_VARIABLES = {"MPLCONFIGDIR", "PROMETHEUS_MULTIPROC_DIR", "REDISCLI_AUTH"}


def setting_names() -> set[str]:
    """Every FLEET_* variable the settings object reads."""
    return {f"FLEET_{name.upper()}" for name in Settings.model_fields if name != "yaml_config"}


def unknown_variables(names: set[str]) -> set[str]:
    """The names that are neither a fleet setting nor a known library's variable."""
    return {name for name in names if name not in setting_names() and name not in FOREIGN_VARIABLES}


def api_paths() -> set[str]:
    """Every path the HTTP API serves."""
    from gateway.api import ROUTERS

    return {getattr(route, "path", "") for router in ROUTERS for route in router.routes}


def flower_paths() -> set[str]:
    """Flower's URL patterns without their regex anchors."""
    from flower.urls import handlers

    patterns = [spec.regex.pattern if hasattr(spec, "regex") else spec[0] for spec in handlers]
    return {pattern.rstrip("$") for pattern in patterns}


def command_problems(argv: list[str]) -> list[str]:
    """Why a container command would not start the fleet process it means to (empty: it would)."""
    if argv[:2] == ["sh", "-c"]:
        words = shlex.split(argv[2].replace("$HOSTNAME", "pod-0").replace("$$HOSTNAME", "pod-0"))
        return command_problems(words)
    if argv[0] == "celery":
        return _celery_problems(argv)
    if argv[0] == "agent":
        return _agent_problems(argv)
    return [f"{argv[0]}: not a fleet entry point"]


def _celery_problems(argv: list[str]) -> list[str]:
    from celery.bin.celery import celery

    if argv[1:3] not in (["-A", "worker"], ["--app", "worker"]):
        return [f"{argv}: celery must load the app with -A worker"]
    sub = argv[3]
    if sub not in celery.commands:
        return [f"celery {sub}: no such command"]
    if sub == "flower":
        import flower.options  # noqa: F401  (defines Flower's tornado options)
        from tornado.options import options

        known = {f"--{name}" for name in options._options}
    else:
        known = {opt for param in celery.commands[sub].params for opt in [*param.opts, *param.secondary_opts]}
    problems = [
        f"celery {sub} {arg}: no such option"
        for arg in argv[4:]
        if arg.startswith("-") and arg.split("=")[0] not in known
    ]
    for flag in ("-Q", "--queues"):
        if flag in argv:
            unknown = set(argv[argv.index(flag) + 1].split(",")) - set(QUEUES)
            problems += [f"celery {sub}: unknown queues {sorted(unknown)}"] if unknown else []
    return problems


def _agent_problems(argv: list[str]) -> list[str]:
    from gateway.cli import app

    command: Any = typer.main.get_command(app)
    words = argv[1:]
    path = ["agent"]
    while hasattr(command, "commands") and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    if hasattr(command, "commands"):
        return [f"{' '.join(argv)}: no such command"]
    try:
        command.make_context(" ".join(path), list(words), resilient_parsing=False)
    except Exception as exc:  # click's usage errors: the message is the finding
        return [f"{' '.join(argv)}: {exc}"]
    return []


def option_value(argv: list[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` in a command, else None."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def queues_of(argv: list[str]) -> set[str]:
    """The queues a `celery worker` command consumes."""
    value = option_value(argv, "-Q") or option_value(argv, "--queues") or ""
    return set(value.split(",")) - {""}


def seconds(duration: str | int) -> int:
    """A compose duration (`12m`, `1h30s`) or a number of seconds."""
    if isinstance(duration, int):
        return duration
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", duration))
