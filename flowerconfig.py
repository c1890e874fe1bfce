"""Flower's settings (`celery -A worker flower` reads this file from the working folder)."""

from __future__ import annotations

from worker.errors import SettingsError
from worker.flower_auth import protect_metrics
from worker.settings import get_settings

_settings = get_settings()
if _settings.flower_auth is None:
    # Flower shows task arguments and can revoke tasks: it never runs without authentication.
    raise SettingsError("FLEET_FLOWER_AUTH must be set (user:password): Flower never runs unauthenticated")

basic_auth = [_settings.flower_auth.get_secret_value()]
# /metrics needs those credentials too (Flower exempts it); /healthcheck stays open and says only "OK".
protect_metrics()
# Persistent mode keeps task history across Flower restarts.
persistent = True
db = "var/flower.db"
state_save_interval = 60_000  # ms
port = 5555
address = "127.0.0.1"
# Bounded memory: Flower keeps at most this many tasks.
max_tasks = 50_000
purge_offline_workers = 300
