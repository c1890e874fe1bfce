"""`agent keys create|list|revoke`: API keys of the HTTP API; registered by gateway.cli."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from gateway.keys import SCOPES, UnknownScope
from gateway.services import keys as key_service

keys_app = typer.Typer(help="API keys of the HTTP API (stored hashed; the token is shown once).", no_args_is_help=True)


def _named(value: str) -> str:
    if not value.strip():
        raise typer.BadParameter("give the key a name: who or what it is for")
    return value


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.", callback=_named)],
    scope: Annotated[list[str], typer.Option(help=f"Repeatable: {', '.join(SCOPES)}.")],
    rate_limit: Annotated[int | None, typer.Option(min=1, help="Requests per window for this key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key and print its token once."""
    try:
        info, token = key_service.create_key(name, scope, rate_limit)
    except UnknownScope as exc:
        raise typer.BadParameter(str(exc), param_hint="--scope") from None
    if as_json:
        typer.echo(json.dumps({**asdict(info), "token": token}, default=str))
        return
    typer.echo(f"created key {info.key_id} ({info.name}) with scopes {', '.join(info.scopes)}")
    typer.echo(f"token (shown once, store it now): {token}")


@keys_app.command("list")
def list_(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (ids, names, scopes; never tokens)."""
    from gateway.services.agents import key_spending

    keys = key_service.list_keys(include_revoked)
    spending = key_spending([k.key_id for k in keys])
    if as_json:
        typer.echo(json.dumps([{**asdict(k), "usage_today": spending[k.key_id]} for k in keys], default=str))
        return
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        limit = f" limit={key.rate_limit}" if key.rate_limit else ""
        typer.echo(
            f"{key.key_id}  {key.name:<24} {','.join(key.scopes):<28} {state}{limit}  {_usage(spending[key.key_id])}"
        )


def _usage(spent: dict[str, object]) -> str:
    """`today 150/1000 tokens, cost 0.12/1`: the spending, against the budget when there is one."""
    tokens = f"{spent['tokens_today']}" + (f"/{spent['tokens_per_day']}" if spent["tokens_per_day"] is not None else "")
    cost = f"{spent['cost_today']:g}" + (f"/{spent['cost_per_day']:g}" if spent["cost_per_day"] is not None else "")
    return f"today {tokens} tokens, cost {cost}" + (" OVER BUDGET" if spent["over_budget"] else "")


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id, as `agent keys list` shows it.")]) -> None:
    """Revoke a key: it stops working within the API's key cache delay (5 s by default)."""
    info = key_service.revoke_key(key_id)
    typer.echo(f"revoked key {info.key_id} ({info.name})")


def register(app: typer.Typer) -> None:
    """Add `agent keys` to the `agent` CLI."""
    app.add_typer(keys_app, name="keys")
