"""`make demo`: a scripted day of the demo district (Qinhuai, 320104), through the public APIs.

Each service adds its part as deploy/local/demo/NN_<part>.py with `async def run(ctx)`; the
parts run in file-name order against the running local stack and print what happened.
"""
from __future__ import annotations

import asyncio
import importlib.util
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from civicgrid_common.settings import PlatformSettings

PARTS = Path(__file__).resolve().parent / "demo"


@dataclass
class DemoContext:
    settings: PlatformSettings
    http: httpx.AsyncClient
    facts: dict = field(default_factory=dict)  # what one part hands to the next
    # When this run began: the stack keeps every earlier run's events, so a part that shows
    # figures tells this run's apart from what was there before (make clean starts afresh).
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def say(self, line: str) -> None:
        print(line, flush=True)


async def main() -> int:
    parts = sorted(PARTS.glob("[0-9][0-9]_*.py"))
    async with httpx.AsyncClient(timeout=30) as http:
        ctx = DemoContext(PlatformSettings(service_name="demo"), http)
        for path in parts:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            print(f"\n== {path.stem[3:].replace('_', ' ')} ==", flush=True)
            await module.run(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
