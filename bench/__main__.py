"""`make bench`: the baseline, then every benchmark module with a `run(ctx)`, as one table.

Each module `bench/<name>.py` defines `run(ctx: BenchContext) -> list[Row]`, using `ctx.baseline`
(measured first, in the same run) for its ratios. The table is printed and written to docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import pkgutil
import platform
import time
import traceback

from bench.common import ROOT, Row, private_environment, render

NOT_BENCHMARKS = {
    "__main__",
    "common",
    "bare",
    "bare_monitored",
    "bare_signals",
    "bare_telemetry",
    "baseline",
    "scaling_costs",
    "legacy_app",
    "legacy_transport",
}
# Cheap first; the long ones last, so a stopped run has the most rows.
ORDER = ["ledger", "transport", "agents", "overhead", "reports", "scaling", "memory"]
START, END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"


def _modules() -> list[str]:
    import bench

    names = [info.name for info in pkgutil.iter_modules(bench.__path__) if info.name not in NOT_BENCHMARKS]
    return sorted(names, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))


def write_report(table: str, stamp: str) -> None:
    """Put the table between the markers of docs/PERFORMANCE.md, keeping the findings around it."""
    path = ROOT / "docs" / "PERFORMANCE.md"
    block = f"{START}\n{stamp}\n\n{table}\n{END}"
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :]
    else:
        text = (
            "# Performance\n\n`make bench` writes the table below; every ratio is against the bare Celery "
            f"baseline of the same run.\n\n{block}\n\n![scaling](scaling.png)\n"
        )
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)


def main() -> int:
    """Run everything and write the table; a benchmark that errors is reported and the rest go on."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks for the baseline throughput")
    parser.add_argument("--only", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a few minutes, noisier figures")
    args = parser.parse_args()
    rows: list[Row] = []
    failed: list[str] = []
    started = time.perf_counter()
    with private_environment() as ctx:
        from bench import baseline

        ctx.quick = args.quick
        load = os.getloadavg()
        rows += baseline.measure(ctx, tasks=5_000 if args.quick else args.tasks)
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
    end_load = os.getloadavg()
    stamp = (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()}, "
        f"{os.cpu_count()} cores){' with --quick' if args.quick else ''} in {time.perf_counter() - started:.0f} s; "
        f"load average {load[0]:.1f} at the start, {end_load[0]:.1f} at the end."
        + (f" Failed: {', '.join(failed)}." if failed else "")
    )
    print(stamp)
    write_report(table, stamp)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
