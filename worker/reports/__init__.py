"""The reports' adapters: their Celery tasks, the run of a report (evidence, store, files), schedules and tables.

The pure report logic lives in the top-level `beat` package; everything here reaches a broker, Redis or SQL.
"""
