"""grid as `make up` runs it (port 8003, its database, its relay, its consumers) with the rest of
the stack: the demo's Huaihai Road grids drawn; a resident's phone complaint with a location,
filed at intake (:8001), becomes an incident in the grid it lies in (over Kafka); the street's
centre dispatches it to urban management, whose system (the demo's, on Kafka) takes the task and
answers; the grid worker checks on site and closes it; statistics (:8005) counts it closed."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest
from demo_parts import demo_part

from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.settings import PlatformSettings

from civicgrid_grid.application.incidents import incident_id_for_complaint

pytestmark = pytest.mark.integration

INTAKE, GRID, STATISTICS = "http://127.0.0.1:8001", "http://127.0.0.1:8003", "http://127.0.0.1:8005"
STREET, COMMUNITY = "320104001", "320104001001"


until = demo_part("52_grid_worker_day").until  # the demo's wait: a value, or a timeout error


def bearer(role: str, jurisdiction, **claims) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


async def test_a_complaint_becomes_a_grid_incident_closed_through_urban_managements_system():
    registry = demo_part("50_grid_registry")
    system_part = demo_part("51_grid_urban_management_system")
    community = registry.load()["communities"][0]
    grid = community["grids"][0]
    ring = grid["polygon"]["coordinates"][0]
    lon, lat = (ring[0][0] + ring[2][0]) / 2, (ring[0][1] + ring[2][1]) / 2
    centre = bearer("street_reviewer", STREET, subject="e2e-centre")
    worker = bearer("grid_worker", grid["code"], subject=grid["lead"])
    leader = bearer("leader", "320104", subject="e2e-leader")
    async with httpx.AsyncClient(timeout=30) as http:
        for url in (INTAKE, GRID, STATISTICS):
            try:
                await http.get(f"{url}/healthz")
            except httpx.ConnectError:
                pytest.fail(f"the local stack has nothing on {url}; run `make up`", pytrace=False)
        await registry.draw_community(SimpleNamespace(http=http, say=print), community)
        system = system_part.UrbanManagementSystem(PlatformSettings(service_name="e2e"), http,
                                                   group_id="urban-management-system-e2e", say=print)
        responder = asyncio.create_task(system.run())
        try:
            await system.wait_ready()
            r = await http.post(f"{INTAKE}/v1/complaints", headers=bearer("window_clerk", STREET), json={
                "category": "municipal_works", "channel": "phone", "urgency": "general", "jurisdiction": COMMUNITY,
                "location": {"address": "户部街 12 号门口", "lat": lat, "long": lon},
                "description": "路面塌陷一个坑", "anonymous": True})
            assert r.status_code == 201, r.text
            incident = incident_id_for_complaint(r.json()["id"])

            async def filed():
                r = await http.get(f"{GRID}/v1/incidents/{incident}", headers=centre)
                return r.json() if r.status_code == 200 else None

            found = await until(filed, "intake's complaint to become a grid incident")
            assert found["grid"] == grid["code"] and found["source"] == "resident_complaint"
            for step, body in (("create", {}), ("dispatch", {"handler": {"kind": "department",
                                                                         "code": "urban_management"}})):
                r = await http.post(f"{GRID}/v1/incidents/{incident}/{step}", headers=centre, json=body)
                assert r.status_code == 200, r.text

            async def fed_back():
                return (await filed())["state"] == "fed_back"

            await until(fed_back, "urban management's system to answer its task on Kafka")
            assert [t["incident_id"] for t in system.tasks] == [incident]
            assert "户部街 12 号" not in str(system.tasks[0])  # the task names no address a resident gave
            r = await http.post(f"{GRID}/v1/incidents/{incident}/verify", headers=worker,
                                json={"passed": True, "client_id": f"e2e-{incident}"})
            assert r.status_code == 200 and r.json()["state"] == "closed", r.text
        finally:
            system.stop()
            await responder

        async def counted():
            r = await http.get(f"{STATISTICS}/v1/kpis/grid", headers=leader,
                               params={"jurisdiction": grid["code"], "group_by": "grid"})
            assert r.status_code == 200, r.text
            totals = r.json()["totals"]
            return totals if totals["incidents_closed"] >= 1 else None

        totals = await until(counted, "statistics to count the closed incident")
        assert totals["incidents_reported"] >= 1
