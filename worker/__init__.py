"""The fleet's Celery app, settings, persistence, logging and process runner.

Importing `worker` or any module in it builds nothing: `worker.app` (what `celery -A worker` loads) is built by
`worker.application.create_app()` at its first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    app: Celery


def __getattr__(name: str) -> Any:
    if name == "app":
        # Imported here: `import worker.settings` (the API, the CLI) must not load Celery's runtime with it.
        from worker.application import get_app

        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
