"""`make bench`: every benchmark side by side with its peer; a table, and results/latest.json."""
from __future__ import annotations

import argparse
import asyncio
import sys

from harness import print_table, write_results

import bench_eventstore
import bench_rebuild
import bench_relay

BENCHES = {
    "eventstore": bench_eventstore.run,
    "relay": bench_relay.run,
    "rebuild": bench_rebuild.run,
}


async def main(selected: list[str]) -> int:
    results = []
    for name in selected:
        print(f"running {name} ...", flush=True)
        results.append(await BENCHES[name]())
    print()
    print_table(results)
    out = write_results(results)
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("only", nargs="*", help=f"run only these, of: {', '.join(BENCHES)}")
    a = p.parse_args()
    unknown = set(a.only) - set(BENCHES)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    sys.exit(asyncio.run(main(a.only or list(BENCHES))))
