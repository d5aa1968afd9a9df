"""intake's part of the demo, first scene: the window clerk of Huaihai Road street opens the
affairs catalogue of the district (seeded on intake's first start)."""
from __future__ import annotations

from civicgrid_common.identity.tokens import mint_local_token

INTAKE = "http://127.0.0.1:8001"


def bearer(role: str, jurisdiction: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction)}"}


async def run(ctx) -> None:
    clerk = bearer("window_clerk", "320104001")
    r = await ctx.http.get(f"{INTAKE}/v1/affairs", headers=clerk)
    r.raise_for_status()
    affairs = r.json()
    ctx.say(f"  the clerk at the Huaihai Road window sees {len(affairs)} affairs of Qinhuai district:")
    for a in affairs:
        ctx.say(f"    {a['code']:<44} v{a['version']}  {a['level']:<9} {a['time_limit_working_days']:>3} working days  "
                f"{a['department']:<26} {a['name_zh']}")
    r = await ctx.http.get(f"{INTAKE}/v1/affairs", headers={})
    ctx.say(f"  without a token the same call gets {r.status_code} {r.headers.get('content-type')}")
    ctx.facts["affairs"] = {a["code"]: a for a in affairs}
