"""The HTTP API (FastAPI): `agent api` serves `create_app()` with uvicorn."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    """The API application with every route registered."""
    api = FastAPI(title="Agent Fleet", version="0.1.0")

    @api.get("/health/live", tags=["health"])
    def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    return api
