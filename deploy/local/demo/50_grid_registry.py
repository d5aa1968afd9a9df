"""grid's part of the demo, first scene: the district's admin draws the responsibility grids of
Huaihai Road street (淮海路街道, 320104001) from grid_huaihai.json beside this file: the
boundaries of its three communities, each cut into grids numbered west to east, north to south
(one of them a unit grid, a market), and each grid's workers with its lead.

A grid's households outside the norm of 250-500 is allowed, with a warning recorded on its
event: the demo shows the one grid that has it. Run again on the same stack, every grid that
exists already is skipped (checked with GET first; a 422 grid_exists from a race counts as
done too), and workers already assigned as the file says are left alone.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from civicgrid_common.identity.tokens import mint_local_token

GRID = os.environ.get("CIVICGRID_DEMO_GRID_URL", "http://127.0.0.1:8003")
DATA = Path(__file__).resolve().parent / "grid_huaihai.json"
ADMIN = {"Authorization": f"Bearer {mint_local_token('admin', '320104', subject='admin-qinhuai', name='区网格中心 管理员')}"}


def load() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


async def ok(response, what: str):
    if response.status_code >= 300:
        raise RuntimeError(f"{what}: {response.status_code} {response.text}")
    return response.json() if response.content else None


def grid_body(g: dict) -> dict:
    return {k: v for k, v in g.items() if k not in ("workers", "lead")}


async def draw_community(ctx, community: dict) -> tuple[int, int, list]:
    """Returns (grids defined now, grids there already, warnings recorded now)."""
    http, code = ctx.http, community["code"]
    existing = await ok(await http.get(f"{GRID}/v1/communities/{code}/grids", params={"include_retired": "true"},
                                       headers=ADMIN), f"GET grids of {code}")
    there = {g["code"]: g for g in existing}
    missing = [g for g in community["grids"] if g["code"] not in there]
    if missing:  # a new community, or one drawn only in part: the boundary first (it leaves no grid out)
        await ok(await http.put(f"{GRID}/v1/communities/{code}/boundary", json={"polygon": community["boundary"]},
                                headers=ADMIN), f"PUT boundary of {code}")
    defined, warnings = 0, []
    for g in missing:
        r = await http.post(f"{GRID}/v1/communities/{code}/grids", json=grid_body(g), headers=ADMIN)
        if r.status_code == 422 and r.json().get("code") in ("grid_exists", "grid_code_retired"):
            continue  # drawn meanwhile (or retired since): nothing to do
        answer = await ok(r, f"POST grid {g['code']}")
        defined += 1
        warnings += [(g, w) for w in answer["warnings"]]
    for g in community["grids"]:
        current = there.get(g["code"]) or await ok(await http.get(f"{GRID}/v1/grids/{g['code']}", headers=ADMIN),
                                                   f"GET grid {g['code']}")
        if not current.get("active", True):
            continue
        wanted = [g["lead"]] + [w for w in g["workers"] if w != g["lead"]]
        if current.get("workers") != wanted:
            await ok(await http.put(f"{GRID}/v1/grids/{g['code']}/workers",
                                    json={"workers": g["workers"], "lead": g["lead"]}, headers=ADMIN),
                     f"PUT workers of {g['code']}")
    return defined, len(community["grids"]) - len(missing), warnings


async def run(ctx) -> None:
    data = load()
    street = data["street"]
    ctx.say(f"the district's admin draws {street['name']} ({street['code']}): "
            f"{len(data['communities'])} communities, {sum(len(c['grids']) for c in data['communities'])} grids")
    for community in data["communities"]:
        defined, skipped, warnings = await draw_community(ctx, community)
        grids = await ok(await ctx.http.get(f"{GRID}/v1/communities/{community['code']}/grids", headers=ADMIN),
                         "GET grids")
        households = sum(g["households"] for g in grids)
        done = f"{defined} defined now" + (f", {skipped} there already (skipped)" if skipped else "")
        ctx.say(f"  {community['code']} {community['name']}: {len(grids)} grids ({done}), {households} households")
        for g in grids:
            kind = f"unit grid ({g['unit_type']})" if g["kind"] == "unit" else f"{g['households']:>3} households"
            ctx.say(f"    {g['code']} {g['name']:<8} {kind:<18} workers {', '.join(g['workers'])} "
                    f"(lead {g['workers'][0]})")
        for g, w in warnings:
            ctx.say(f"    warning recorded on {g['code']}'s grid_defined event: {w['code']}: {w['detail']}")
        if skipped and not defined:
            outside = [g for g in community["grids"] if g["kind"] == "residential"
                       and not 250 <= g["households"] <= 500]
            for g in outside:
                ctx.say(f"    ({g['code']} has {g['households']} households: its households_outside_norm warning "
                        "was recorded when it was first drawn)")
    r = await ctx.http.get(f"{GRID}/v1/grids/locate", params={"lat": 32.0368, "lon": 118.7821}, headers=ADMIN)
    ctx.say(f"  locate (32.0368N, 118.7821E): {(await ok(r, 'locate'))['grid']}")
    r = await ctx.http.get(f"{GRID}/v1/grids/locate", params={"lat": 32.0600, "lon": 118.8200}, headers=ADMIN)
    ctx.say(f"  locate (32.0600N, 118.8200E), beyond the street: {r.status_code} {r.json().get('code')}")
    ctx.facts["grid_data"] = data
