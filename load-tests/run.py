"""`make bench`: every benchmark side by side with its peer; a table, and results/latest.json."""
from __future__ import annotations

import argparse
import asyncio
import sys

from harness import median_run, print_table, write_results

import bench_eventstore
import bench_gateway
import bench_grid_locate
import bench_grid_report
import bench_notifications_fanout
import bench_rebuild
import bench_relay
import bench_statistics

BENCHES = {
    "eventstore": bench_eventstore.run,
    "relay": bench_relay.run,
    "rebuild": bench_rebuild.run,
    "statistics": bench_statistics.run,
    "grid_locate": bench_grid_locate.run,
    "grid_report": bench_grid_report.run,
    "notifications_fanout": bench_notifications_fanout.run,
    "gateway": bench_gateway.run,
}
# Runs per benchmark when --repeat is not given. Statistics at its full million events takes
# tens of minutes a run: once by default (a smaller STATISTICS_BENCH_EVENTS=N runs 3 times).
DEFAULT_REPEAT = 3
REPEAT = {"statistics": lambda: 1 if bench_statistics.bench_events() >= bench_statistics.FULL else DEFAULT_REPEAT}


def repeat_of(name: str, repeat: int | None) -> int:
    default = REPEAT.get(name)
    return max(1, repeat if repeat is not None else default() if default else DEFAULT_REPEAT)


async def main(selected: list[str], repeat_option: int | None) -> int:
    results = []
    for name in selected:
        runs = []
        repeat = repeat_of(name, repeat_option)
        if repeat_option is None and repeat != DEFAULT_REPEAT:
            print(f"{name}: {repeat} run(s) by default at this size, not {DEFAULT_REPEAT} "
                  "(--repeat N to change)", flush=True)
        for i in range(repeat):
            print(f"running {name} ({i + 1}/{repeat}) ...", flush=True)
            runs.append(await BENCHES[name]())
        # On a small shared machine one run is noisy: report the run with the median ratio
        # and keep every run's ratio beside it.
        results.append(median_run(runs))
    print()
    print_table(results)
    out = write_results(results)
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("only", nargs="*", help=f"run only these, of: {', '.join(BENCHES)}")
    p.add_argument("--repeat", type=int, default=None,
                   help=f"runs per benchmark, the median ratio is reported (default {DEFAULT_REPEAT}; "
                        "statistics at its full million events: 1)")
    a = p.parse_args()
    unknown = set(a.only) - set(BENCHES)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    sys.exit(asyncio.run(main(a.only or list(BENCHES), a.repeat)))
