"""grid_report_ratio_vs_append: the grid service's whole HTTP path of a daily report over bare
event-store appends of the same events, same server, same concurrency.

Work: N grids of the generated city (grid_city.py: the first GRID_REPORT_BENCH_GRIDS=2000, in
40 communities of 50) seeded into the registry through the application's unit of work
(grid_seed.py: one command a community, the same events the API writes; not timed), then ONE
all-safe daily report per grid for the same day, from 8 concurrent writers, each report sent
with its grid's own grid-worker token (pre-minted, not timed).
Ours: the app of `build_app(GridSettings(...), clock=...)` on a fresh database (no relay, no
consumers, no timers: nothing leaves the process), called in-process as an ASGI server calls it
(harness.AsgiCaller: one scope and one body message a request, bodies and headers made before
the clock starts; an in-process HTTP client would spend as much CPU on its own request and
response objects as the whole peer, and a real client does that in another process):
`POST /v1/grids/{grid}/daily-reports`: the request body validated, the
token verified (RS256) and the grid checked against its jurisdictions, the grid looked up in
the locator, the calendar loaded, the unit of work (its transaction, the `DailyReport` stream
looked for, the aggregate's rules), `EventStore.append` (schema check, hash chain, outbox row)
and the `daily_report_view` projector in the same transaction, the 201 response serialised.
The clock is fixed at 18:00 China time on Wednesday 2026-03-04, a working day, and the reports
are for that day.
Peer: `EventStore.append` of the same events (type `grid.daily_report.submitted.v1`, the very
data ours stored, read back from ours' database) to the same fresh streams (expected version
0) on its own fresh database, with the service's contracts and topics: what the event store
does for a report when nothing else is around it.
Both warm up first on 100 reports of the day before (other streams), then are timed over the
N reports. Reports per second each; the ratio ours / peer. For comparison the run also sends
the same reports through httpx.ASGITransport (a third fresh database) and prints that rate.

`python load-tests/bench_grid_report.py --profile` runs ours once under cProfile and prints
where its time goes (GRID_REPORT_BENCH_GRIDS=N for another size).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import httpx

from civicgrid_common.calendar.working_days import CHINA_TZ
from civicgrid_common.db import create_pool
from civicgrid_common.events import NewEvent
from civicgrid_common.eventstore import EventStore

from civicgrid_grid.config import GridSettings
from civicgrid_grid.domain.reports import SUBMITTED, DailyReport
from civicgrid_grid.entrypoints.main import build_app

from grid_city import City, generate_city
from grid_seed import seed_registry, worker_tokens
from harness import AsgiCaller, Result, Timer, fresh_database

GRIDS = int(os.environ.get("GRID_REPORT_BENCH_GRIDS", "2000"))
WRITERS = 8
WARM_UP = 100
NOW = datetime(2026, 3, 4, 18, 0, tzinfo=CHINA_TZ).astimezone(timezone.utc)  # a Wednesday, 18:00 China time
DAY = date(2026, 3, 4)
WARM_UP_DAY = date(2026, 3, 3)  # the day before, also a working day: other streams, reports marked late
SEEDED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA_TZ).astimezone(timezone.utc)

_prepared: tuple[City, list[str]] | None = None


def prepared() -> tuple[City, list[str]]:
    """The city and one token per grid, made once a process (not timed)."""
    global _prepared
    if _prepared is None:
        city = generate_city(GRIDS)
        _prepared = (city, worker_tokens(list(city.grids)))
    return _prepared


def body(code: str, day: date) -> dict:
    return {"date": day.isoformat(), "all_safe": True, "incidents": [], "client_id": f"r-{code}-{day.isoformat()}"}


async def _send_all(client: AsgiCaller | httpx.AsyncClient, work: list[tuple[str, str]], day: date,
                    writers: int) -> None:
    """Every report of `work` for `day`, from `writers` concurrent writers; each must be recorded.
    The bodies and headers are made before the first is sent: the client's work is not timed."""
    requests = [(f"/v1/grids/{code}/daily-reports", json.dumps(body(code, day)).encode(),
                 {"Authorization": f"Bearer {token}"}) for code, token in work]
    queue = list(reversed(requests))

    async def writer() -> None:
        while queue:
            path, content, headers = queue.pop()
            if isinstance(client, AsgiCaller):
                status, answer = await client.request("POST", path, content, headers)
            else:
                r = await client.post(path, content=content, headers={**headers, "Content-Type": "application/json"})
                status, answer = r.status_code, r.content
            if status != 201 or json.loads(answer)["recorded"] is not True:
                raise AssertionError(f"report to {path}: {status} {answer[:300]!r}")

    await asyncio.gather(*(writer() for _ in range(writers)))


async def ours(writers: int = WRITERS, profile: bool = False,
               client: str = "asgi") -> tuple[Timer, list[tuple[str, dict, dict]], str]:
    """The timed span of the HTTP path; the stored reports (stream, data, metadata) for the peer.
    `client`: "asgi" calls the app as an ASGI server would (harness.AsgiCaller), "httpx" through
    httpx.ASGITransport, whose own CPU then counts against ours."""
    city, tokens = prepared()
    work = list(zip(city.grids, tokens))
    async with fresh_database() as s:
        settings = GridSettings(pg_database=s.pg_database, outbox_relay=False, consume=False, timers=False)
        app = build_app(settings, clock=lambda: NOW)
        async with app.router.lifespan_context(app):
            with Timer() as seeding:
                seeded = await seed_registry(app, city, at=SEEDED_AT)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://grid") as http:
                caller = AsgiCaller(app, host="grid") if client == "asgi" else http
                await _send_all(caller, work[:WARM_UP], WARM_UP_DAY, writers)
                profiler = None
                if profile:
                    import cProfile
                    profiler = cProfile.Profile()
                    profiler.enable()
                with Timer() as t:
                    await _send_all(caller, work, DAY, writers)
                if profiler is not None:
                    profiler.disable()
                    _print_profile(profiler)
            rows = await app.state.pool.fetch(
                "SELECT stream_id, data, metadata FROM events WHERE type = $1 AND data->>'date' = $2 ORDER BY position",
                SUBMITTED, DAY.isoformat())
            projected = await app.state.pool.fetchval(
                "SELECT count(*) FROM daily_report_view WHERE day = $1 AND submitted_at IS NOT NULL", DAY)
    if len(rows) != len(work) or projected != len(work):
        raise AssertionError(f"{len(work)} reports sent, {len(rows)} events stored, {projected} rows projected")
    reports = [(r["stream_id"], _json(r["data"]), {k: v for k, v in _json(r["metadata"]).items() if k != "traceparent"})
               for r in rows]
    stats = f"{seeded:,} grids seeded in {seeding.seconds:.1f} s through the application's unit of work"
    return t, reports, stats


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


async def peer(reports: list[tuple[str, dict, dict]], writers: int = WRITERS) -> Timer:
    async with fresh_database() as s:
        settings = GridSettings(pg_database=s.pg_database)
        pool = await create_pool(settings)
        try:
            store = EventStore.for_service(pool, settings)
            await store.install()

            async def append_all(items: list[tuple[str, dict, dict]]) -> None:
                queue = list(reversed(items))

                async def writer() -> None:
                    while queue:
                        stream, data, metadata = queue.pop()
                        await store.append(stream, DailyReport.stream_type, 0, [NewEvent(SUBMITTED, data, metadata)])

                await asyncio.gather(*(writer() for _ in range(writers)))

            warm = [(DailyReport.stream_for(d["grid"], WARM_UP_DAY), {**d, "date": WARM_UP_DAY.isoformat(),
                                                                      "client_id": d["client_id"] + "-w"}, m)
                    for _, d, m in reports[:WARM_UP]]
            await append_all(warm)
            with Timer() as t:
                await append_all(reports)
            stored = await pool.fetchval("SELECT count(*) FROM events WHERE type = $1", SUBMITTED)
        finally:
            await pool.close()
    if stored != len(reports) + len(warm):
        raise AssertionError(f"peer stored {stored} events, expected {len(reports) + len(warm)}")
    return t


def _cpu_ms(t: Timer, n: int) -> float:
    return t.cpu_seconds / n * 1000


async def run() -> Result:
    t_ours, reports, stats = await ours()
    t_peer = await peer(reports)
    t_httpx, _, _ = await ours(client="httpx")
    n = len(reports)
    o, p, h = n / t_ours.seconds, n / t_peer.seconds, n / t_httpx.seconds
    # CPU of this process per report beside the rates: the machine's I/O wait moves the rates
    # from run to run; the CPU each side spends moves far less and says where the gap is.
    cpu = f"CPU {_cpu_ms(t_ours, n):.2f} vs {_cpu_ms(t_peer, n):.2f} ms/report"
    print(f"  grid_report: ours {o:,.0f} reports/s, bare append {p:,.0f} reports/s, ratio {o / p:.3f}; {cpu}; "
          f"{stats}", flush=True)
    print(f"  grid_report through httpx.ASGITransport (the client's CPU in this process too): {h:,.0f} reports/s, "
          f"ratio {h / p:.3f}; CPU {_cpu_ms(t_httpx, n):.2f} ms/report", flush=True)
    return Result(
        name="grid_report_ratio_vs_append",
        ours=o,
        peer=p,
        unit="reports/s",
        ours_label=("grid's POST /v1/grids/{grid}/daily-reports called in-process as an ASGI server calls it (token, "
                    "validation, locator, calendar, unit of work, DailyReport, append with outbox row, projector)"),
        peer_label="civicgrid EventStore.append of the same daily_report.submitted events to fresh streams",
        work=(f"{len(reports):,} all-safe reports, one per grid of {GRIDS:,} generated grids, one token each, "
              f"{WRITERS} concurrent writers, after {WARM_UP} warm-up reports; this process's {cpu}; {stats}"),
    )


def _print_profile(profiler) -> None:
    import io
    import pstats

    dump = os.environ.get("GRID_REPORT_PROFILE_OUT")
    if dump:
        profiler.dump_stats(dump)
        print(f"profile written to {dump} (python -m pstats {dump})")
    stats = pstats.Stats(profiler)
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats(key).print_stats(35)
        print(f"\n--- ours, by {key} ---\n{out.getvalue()}", flush=True)
    # Own time summed by where the code lives: a library, our packages, the standard library.
    by_place: dict[str, float] = {}
    total = 0.0
    for (path, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        total += tottime
        if "site-packages/" in path:
            place = path.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "civicgrid_" in path:
            place = "civicgrid_" + path.split("civicgrid_", 1)[1].split("/", 1)[0]
        elif path == "~":
            place = f"builtin {name}" if any(w in name for w in ("send", "recv", "poll", "stat")) else "builtins"
        else:
            place = "stdlib " + Path(path).stem
        by_place[place] = by_place.get(place, 0.0) + tottime
    print("--- ours, own time by place ---")
    for place, seconds in sorted(by_place.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {seconds:7.3f} s  {seconds / total:6.1%}  {place}")


if __name__ == "__main__":
    if "--profile" in sys.argv[1:]:
        timed, stored, _ = asyncio.run(ours(profile=True))
        print(f"ours under cProfile: {len(stored) / timed.seconds:,.0f} reports/s")
    else:
        result = asyncio.run(run())
        print(f"{result.name}: {result.ratio:.3f}")
