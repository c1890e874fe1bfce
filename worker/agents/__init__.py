"""The agents' adapters: their Celery tasks and canvas, the ports wired to the fleet, their SQL stores and tables.

The pure stages and tools live in the top-level `agents` package; everything here reaches a broker, Redis or SQL.
"""
