"""The ledger's adapters: its Celery tasks, its processing service, its SQL store and tables.

The pure rules live in the top-level `ledger` package; everything here reaches a broker, Redis or SQL.
"""
