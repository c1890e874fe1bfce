"""How an `agent` command ends when it cannot do what was asked: one line on stderr and its exit code.

The exit codes (docs/operations.md): 0 success, 1 the work ran and found problems, 2 bad arguments (the
command was fed the wrong thing), 3 the broker, database or workers are unavailable, or the settings invalid.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from typing import Any

import typer

# click's exceptions, or the copy of click that typer vendors since 0.2x: the module typer takes them from.
_click = importlib.import_module(typer.BadParameter.__module__)
ClickException: type[Exception] = _click.ClickException
UsageError: type[Exception] = _click.UsageError
# Raised for a bare `agent` or `agent ledger` (click >= 8.2) after nothing was printed: it shows the help.
NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(filter(None, [getattr(_click, "NoArgsIsHelpError", None)]))
ABORTS: tuple[type[Exception], ...] = (typer.Abort, getattr(_click, "Abort", typer.Abort))

EXIT_OK = 0
EXIT_FAILED = 1  # the work ran and found problems (rejected events, failed runs)
EXIT_USAGE = 2  # bad arguments: a wrong value, an unknown id, an action the run's state does not allow
EXIT_UNAVAILABLE = 3  # broker, database or workers unreachable; bad settings
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it


def one_line(text: str) -> str:
    """`text` on one line (pydantic and SQL drivers write several)."""
    return " ".join(text.split())


def _usage(exc: Any) -> tuple[int, str]:
    message = str(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return int(exc.exit_code), message


def _validation(exc: Any) -> tuple[int, str]:
    what = re.sub(r"(?<!^)(?=[A-Z])", " ", str(exc.title)).lower()  # WorkflowRequest -> workflow request
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())
    return EXIT_USAGE, f"invalid {what}: {problems}"


def _infrastructure(exc: BaseException) -> tuple[int, str] | None:
    """Broker, result backend or database that stopped answering: the operator's to fix, not the command's."""
    from celery.exceptions import TimeoutError as ResultTimeout
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, ResultTimeout):
        return EXIT_UNAVAILABLE, f"no result in time ({exc}): is a worker consuming the queue? (agent status)"
    if isinstance(exc, BrokerError | RedisConnectionError | RedisTimeout | ConnectionError):
        return EXIT_UNAVAILABLE, f"broker unavailable: {exc} (agent status; FLEET_BROKER_URL)"
    if isinstance(exc, DBAPIError):
        # The driver's own message, not the statement (which may hold data).
        return EXIT_UNAVAILABLE, f"database error: {exc.orig} (agent status; agent db upgrade)"
    return None


def _domain(exc: BaseException) -> tuple[int, str] | None:
    """The fleet's and the domains' errors, through the API's table: a 4xx is the caller's, a 5xx the fleet's."""
    from gateway.problems import CONFIG_ERRORS, classify

    status, code = classify(exc)
    if code == "internal_error":
        return None  # a bug: its traceback is what a developer needs
    config_error = type(exc) in CONFIG_ERRORS
    return (EXIT_UNAVAILABLE if status >= 500 or config_error else EXIT_USAGE), str(exc)


def outcome(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the line to print for an error a user can cause or fix; None for a bug."""
    from pydantic import ValidationError

    if isinstance(exc, ABORTS):
        return EXIT_FAILED, "aborted"
    if isinstance(exc, ClickException):
        return _usage(exc)
    if isinstance(exc, ValidationError):
        return _validation(exc)
    found = _infrastructure(exc)
    if found is not None:
        return found
    if isinstance(exc, OSError) and exc.filename is not None:
        return EXIT_USAGE, f"{exc.strerror or exc}: {exc.filename}"
    return _domain(exc)


def require_broker() -> None:
    """Fail at once, with the exit code of an unavailable broker, when the broker or result backend is down.

    Celery would otherwise retry the connection for a long while before a traceback.
    """
    from worker.errors import BrokerUnavailable
    from worker.redis_server import answers
    from worker.settings import get_settings, mask_url

    settings = get_settings()
    for what, url in (("broker", settings.broker_url), ("result backend", settings.backend_url)):
        if url.startswith(("redis://", "rediss://")) and not answers(url, timeout=2.0):
            raise BrokerUnavailable(
                f"no {what} answers at {mask_url(url)}: start the fleet (make run) or check the URL"
            )


def run(app: Callable[..., Any]) -> int:
    """Run the CLI; every error a user can cause or fix ends as one line on stderr and its exit code."""
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if isinstance(exc, NO_ARGS_IS_HELP):
            exc.show()  # type: ignore[attr-defined]
            return int(exc.exit_code)  # type: ignore[attr-defined]
        found = outcome(exc)
        if found is None:
            raise
        typer.secho(f"error: {one_line(found[1])}", err=True, fg=typer.colors.RED)
        return found[0]
    return code if isinstance(code, int) else EXIT_OK


def exit_with(app: Callable[..., Any]) -> None:
    """The console script's body: run the CLI and exit with its code."""
    sys.exit(run(app))
