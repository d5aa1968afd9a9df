"""The end of approval's part of the demo: the civil affairs system (part 40) stops listening."""
from __future__ import annotations

import asyncio


async def run(ctx) -> None:
    system, task = ctx.facts.pop("civil_affairs_system", (None, None))
    if system is None:
        return
    system.stop()
    await asyncio.wait_for(task, timeout=30)
    ctx.say(f"the civil affairs system answered {len(system.answered)} task(s) and stopped")
