"""Where the fleet's Redis is, read from one URL: a server (`redis://`, `rediss://` over TLS) or Sentinels.

Celery's conventions: `sentinel://h1:26379;sentinel://h2:26379/0` names the Sentinels (the master's name comes
from FLEET_SENTINEL_MASTER); a password in the URL is the data nodes' password. Every Redis client of the fleet
(broker, results, RedBeat, rate limits, streams, telemetry, `agent status`) is built from what this module reads.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SENTINEL_SCHEME = "sentinel"


@dataclass(frozen=True)
class SentinelTarget:
    """The Sentinels of one URL, and the credentials and database of the master they name."""

    nodes: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None


def is_sentinel(url: str) -> bool:
    """True for a `sentinel://` URL (one or several, `;`-separated)."""
    return url.partition("://")[0] == SENTINEL_SCHEME


def parse_sentinel(url: str) -> SentinelTarget:
    """The Sentinel nodes, database and data-node credentials of a `sentinel://` URL; ValueError if malformed."""
    nodes: list[tuple[str, int]] = []
    db = 0
    username = password = None
    for part in filter(None, (piece.strip() for piece in url.split(";"))):
        parts = urlsplit(part)
        if parts.scheme != SENTINEL_SCHEME:
            raise ValueError(f"every part of a Sentinel URL must start with sentinel://, got {parts.scheme!r}://")
        if not parts.hostname:
            raise ValueError("a sentinel:// part names no host")
        try:
            port = parts.port or 26379
        except ValueError as exc:
            raise ValueError(f"a sentinel:// part has a bad port: {exc}") from None
        nodes.append((parts.hostname, port))
        username = username or (unquote(parts.username) if parts.username else None)
        password = password or (unquote(parts.password) if parts.password else None)
        path = parts.path.strip("/")
        if path:
            if not path.isdigit():
                raise ValueError(f"the database after the last sentinel must be a number, got {path!r}")
            db = int(path)
    if not nodes:
        raise ValueError("a sentinel:// URL names no Sentinel")
    return SentinelTarget(tuple(nodes), db, username, password)


def tls_options(ca_cert: Path | None, client_cert: Path | None, client_key: Path | None) -> dict[str, Any]:
    """redis-py / kombu / Celery SSL options: the server's certificate checked, against `ca_cert` when given."""
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if ca_cert is not None:
        options["ssl_ca_certs"] = str(ca_cert)
    if client_cert is not None:
        options["ssl_certfile"] = str(client_cert)
    if client_key is not None:
        options["ssl_keyfile"] = str(client_key)
    return options


def mask(url: str) -> str:
    """The URL (each part of a Sentinel list) with its password replaced by ***."""
    return ";".join(_mask_one(part) for part in url.split(";"))


def _mask_one(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
