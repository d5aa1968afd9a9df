"""The end of grid's part of the demo: the urban management system (part 51) stops listening."""
from __future__ import annotations

import asyncio


async def run(ctx) -> None:
    system, task = ctx.facts.pop("urban_management_system", (None, None))
    if system is None:
        return
    system.stop()
    await asyncio.wait_for(task, timeout=30)
    ctx.say(f"the urban management system took {len(system.tasks)} task(s), answered {len(system.answered)} "
            "and stopped")
