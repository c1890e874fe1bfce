"""`make bench`: the baseline, then every benchmark module with a `run(ctx)`, as one table.

Each module `bench/<name>.py` defines `run(ctx: BenchContext) -> list[Row]`, using `ctx.baseline`
(measured first, in the same run) for its ratios. The table is printed and written to docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import pkgutil
import platform
import traceback

from bench.common import ROOT, Row, private_environment, render

NOT_BENCHMARKS = {"__main__", "common", "bare", "baseline"}


def _modules() -> list[str]:
    import bench

    return sorted(info.name for info in pkgutil.iter_modules(bench.__path__) if info.name not in NOT_BENCHMARKS)


def main() -> int:
    """Run everything and write the table; a benchmark that errors is reported and the rest go on."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks for the baseline throughput")
    parser.add_argument("--only", nargs="*", help="benchmark modules to run (default: all)")
    args = parser.parse_args()
    rows: list[Row] = []
    failed: list[str] = []
    with private_environment() as ctx:
        from bench import baseline

        rows += baseline.measure(ctx, tasks=args.tasks)
        for name in args.only or _modules():
            module = importlib.import_module(f"bench.{name}")
            if not hasattr(module, "run"):
                continue
            try:
                rows += module.run(ctx)
            except Exception:  # noqa: BLE001  (one broken benchmark must not hide the others' figures)
                failed.append(name)
                traceback.print_exc()
    table = render(rows)
    print(table)
    stamp = f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()})."
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "PERFORMANCE.md").write_text(
        "# Performance\n\n`make bench` writes this table; every ratio is against the bare Celery baseline of "
        f"the same run.\n\n{stamp}\n\n{table}\n"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
