"""The evening peak of daily reports (有事报事，无事报平安): a 50,000-grid city against ONE grid
process, on loopback. `make load` runs it; results in load-tests/results/grid_evening_peak.json.

1. The city: grid_city.py's generated 50,000 grids (1,000 communities of 50, ten districts of
   Nanjing's codes), --grids N for fewer.
2. The registry, on a database of its own (grid_peak_<hex>, dropped at the end unless
   --keep-db): seeded through the application's unit of work in this process, one command a
   community (grid_seed.py says why: through the API 50,000 grids are 51,000 requests whose
   cost grows with each community's size; the bulk path writes the same events and rows).
3. One grid worker's token per grid (role grid_worker, the grid as its jurisdiction), minted
   before anything is timed.
4. The grid process as `make up` runs it, `python -m civicgrid_grid.entrypoints.main` under
   uvicorn, with CIVICGRID_PG_DATABASE (the database above), CIVICGRID_HTTP_PORT (--port, 8103),
   CIVICGRID_CONSUME=false (no shared topics read), CIVICGRID_OUTBOX_RELAY=false (the outbox is
   filled as in production, but 50,000 made-up reports are not published on the stack's shared
   topics, where the statistics service would count them; --relay to include the relay's cost)
   and CIVICGRID_TIMERS=false (the day's missing-report check would otherwise fire at 17:00
   China time in the middle of a run and flag every grid not yet reported). Its log goes to a
   file in the temporary directory.
5. Warm-up: GET /v1/grids/locate until the process has loaded its 50,000-polygon locator.
6. The load: an asyncio/httpx generator in this process, --concurrency connections (16) kept
   alive, each sending the next grid's report (POST /v1/grids/{grid}/daily-reports, all safe,
   for today in China, or the last working day before it, with that grid's token) as soon as
   its previous one is answered (closed loop: the process's capacity), or with --rate R at R
   reports a second (open loop: latency then counts from each report's scheduled time). One
   report per grid; it stops after --reports (all grids) or --duration seconds (600).
7. Measured: sustained reports/s (answered / load time, and per 10 s window), latency p50, p90,
   p99 and max, errors (any answer but 201 recorded, or a transport error: must be 0, else the
   exit status is 1), the grid process's RSS (before, peak, after) and CPU (seconds and cores
   used), the CPU of the PostgreSQL backends serving its database, the generator's own CPU;
   then the database is checked to hold one event and one view row per answered report.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import asyncpg
import httpx
import psutil

from civicgrid_common.calendar.working_days import local_date
from civicgrid_common.settings import PlatformSettings

from civicgrid_grid.config import GridSettings
from civicgrid_grid.domain.reports import SUBMITTED
from civicgrid_grid.entrypoints.main import build_app

from grid_city import DEFAULT_GRIDS, generate_city
from grid_seed import last_working_day, seed_registry, worker_tokens

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "grid_evening_peak.json"
WINDOW = 10.0  # seconds of a throughput window


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


async def create_database(name: str) -> None:
    admin = await asyncpg.connect(PlatformSettings().dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(PlatformSettings().dsn("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def seed(database: str, city) -> tuple[int, float, date]:
    """The registry through the application (in this process); the day the reports are for."""
    settings = GridSettings(pg_database=database, outbox_relay=False, consume=False, timers=False, gc_freeze=False)
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        now = datetime.now(timezone.utc)
        started = time.perf_counter()
        seeded = await seed_registry(app, city, at=now)
        seconds = time.perf_counter() - started
        day = last_working_day(await app.state.field_work.calendar(), local_date(now))
    return seeded, seconds, day


def start_grid(database: str, port: int, relay: bool, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "CIVICGRID_PG_DATABASE": database, "CIVICGRID_HTTP_PORT": str(port),
           "CIVICGRID_HTTP_HOST": "127.0.0.1", "CIVICGRID_CONSUME": "false",
           "CIVICGRID_OUTBOX_RELAY": "true" if relay else "false", "CIVICGRID_TIMERS": "false"}
    log = open(log_path, "wb")
    return subprocess.Popen([sys.executable, "-m", "civicgrid_grid.entrypoints.main"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


async def wait_healthy(client: httpx.AsyncClient, proc: subprocess.Popen, timeout: float = 90) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the grid process ended with status {proc.returncode} before answering")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.25)
    raise RuntimeError(f"the grid process did not answer /healthz within {timeout:.0f} s")


def backends_of(database: str) -> list[psutil.Process]:
    """The PostgreSQL backends connected to `database` (their title: 'postgres: user db host ...')."""
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            title = " ".join(p.info["cmdline"] or [])
            if title.startswith("postgres:") and f" {database} " in f"{title} ":
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


async def load(client: httpx.AsyncClient, work: list[tuple[str, str]], day: date, *, concurrency: int,
               duration: float, rate: float | None, grid: psutil.Process, database: str) -> dict:
    queue = list(reversed(work))
    latencies: list[float] = []
    done_at: list[float] = []
    errors: list[str] = []
    error_count = 0
    issued = 0
    rss_peak = grid.memory_info().rss
    rss_before = rss_peak
    stop = asyncio.Event()

    async def sampler() -> None:
        nonlocal rss_peak
        while not stop.is_set():
            try:
                rss_peak = max(rss_peak, grid.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass

    started = time.perf_counter()
    deadline = started + duration

    async def user() -> None:
        nonlocal error_count, issued
        while queue and time.perf_counter() < deadline:
            code, token = queue.pop()
            index, issued = issued, issued + 1
            if rate:
                scheduled = started + index / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = scheduled
            else:
                t0 = time.perf_counter()
            try:
                r = await client.post(f"/v1/grids/{code}/daily-reports", headers={"Authorization": f"Bearer {token}"},
                                      json={"date": day.isoformat(), "all_safe": True, "incidents": [],
                                            "client_id": f"r-{code}-{day.isoformat()}"})
                ok = r.status_code == 201 and r.json().get("recorded") is True
                why = None if ok else f"{code}: {r.status_code} {r.text[:300]}"
            except httpx.HTTPError as exc:
                ok, why = False, f"{code}: {type(exc).__name__}: {exc}"
            t1 = time.perf_counter()
            if ok:
                latencies.append(t1 - t0)
                done_at.append(t1 - started)
            else:
                error_count += 1
                if len(errors) < 10:
                    errors.append(why)

    me = psutil.Process()
    backends = backends_of(database)
    grid_cpu0, my_cpu0, db_cpu0 = cpu_seconds([grid]), cpu_seconds([me]), cpu_seconds(backends)
    machine0 = psutil.cpu_times()
    sampling = asyncio.create_task(sampler())
    await asyncio.gather(*(user() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    stop.set()
    await sampling
    grid_cpu = sum(cpu_seconds([grid]).values()) - sum(grid_cpu0.values())
    my_cpu = sum(cpu_seconds([me]).values()) - sum(my_cpu0.values())
    backends_after = backends_of(database)
    db_now = cpu_seconds(backends_after)
    db_cpu = sum(v - db_cpu0.get(pid, 0.0) for pid, v in db_now.items())
    machine1 = psutil.cpu_times()
    busy = lambda t: t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)  # noqa: E731
    machine_busy = busy(machine1) - busy(machine0)

    windows: list[int] = [0] * (int(seconds // WINDOW) + 1)
    for t in done_at:
        windows[min(int(t // WINDOW), len(windows) - 1)] += 1
    full = [n / WINDOW for n in windows[:int(seconds // WINDOW)]]  # whole windows only
    ordered = sorted(latencies)
    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    return {
        "reports_sent": issued,
        "reports_recorded": len(latencies),
        "errors": error_count,
        "error_samples": errors,
        "unsent": len(queue),
        "seconds": round(seconds, 2),
        "sustained_reports_per_s": round(len(latencies) / seconds, 1),
        "window_reports_per_s": {"window_s": WINDOW, "min": round(min(full), 1) if full else None,
                                 "max": round(max(full), 1) if full else None,
                                 "each": [round(x, 1) for x in full]},
        "latency_ms": {"p50": ms(percentile(ordered, 0.50)), "p90": ms(percentile(ordered, 0.90)),
                       "p99": ms(percentile(ordered, 0.99)), "max": ms(ordered[-1]) if ordered else None,
                       "from": "each report's scheduled time" if rate else "each report's send"},
        "grid_process": {
            "pid": grid.pid,
            "rss_mb_before": round(rss_before / 2**20, 1),
            "rss_mb_peak": round(rss_peak / 2**20, 1),
            "rss_mb_after": round(grid.memory_info().rss / 2**20, 1),
            "cpu_seconds": round(grid_cpu, 2),
            "cpu_cores_used": round(grid_cpu / seconds, 2),
            "cpu_ms_per_report": round(grid_cpu * 1000 / max(1, len(latencies)), 2),
        },
        "postgres_backends_of_its_database": {"count": len(backends_after), "cpu_seconds": round(db_cpu, 2),
                                              "cpu_cores_used": round(db_cpu / seconds, 2),
                                              "cpu_ms_per_report": round(db_cpu * 1000 / max(1, len(latencies)), 2)},
        "generator": {"cpu_seconds": round(my_cpu, 2), "cpu_cores_used": round(my_cpu / seconds, 2)},
        "machine": {"cpus": psutil.cpu_count(), "cpu_cores_busy": round(machine_busy / seconds, 2)},
    }


async def scenario(a: argparse.Namespace, city, tokens: list[str], minted_in: float) -> dict:
    database = f"grid_peak_{uuid.uuid4().hex[:12]}"
    log_path = Path(tempfile.gettempdir()) / f"{database}.log"
    await create_database(database)
    proc = None
    try:
        print(f"seeding {len(city):,} grids into database {database} ...", flush=True)
        seeded, seed_seconds, day = await seed(database, city)
        print(f"  {seeded:,} grids in {seed_seconds:.1f} s; the reports are for {day} (China)", flush=True)
        proc = start_grid(database, a.port, a.relay, log_path)
        grid = psutil.Process(proc.pid)
        limits = httpx.Limits(max_connections=a.concurrency, max_keepalive_connections=a.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.port}", limits=limits,
                                     timeout=httpx.Timeout(60.0)) as client:
            up = await wait_healthy(client, proc)
            # Warm-up: the first locate loads the locator's map of every grid.
            code, token = next(iter(city.grids)), tokens[0]
            polygon = city.grids[code]
            point = polygon.representative_point()
            t0 = time.perf_counter()
            for _ in range(20):
                r = await client.get("/v1/grids/locate", params={"lat": point.y, "lon": point.x},
                                     headers={"Authorization": f"Bearer {token}"})
                if r.status_code != 200 or r.json()["grid"] != code:
                    raise RuntimeError(f"warm-up locate: {r.status_code} {r.text[:300]}")
            warm = time.perf_counter() - t0
            print(f"  grid process up in {up:.1f} s (pid {proc.pid}, log {log_path}); warmed up in {warm:.1f} s",
                  flush=True)
            work = list(zip(city.grids, tokens))[:a.reports]
            mode = f"{a.rate:g} reports/s" if a.rate else f"closed loop, {a.concurrency} concurrent"
            print(f"load: {len(work):,} reports ({mode}), at most {a.duration:.0f} s ...", flush=True)
            measured = await load(client, work, day, concurrency=a.concurrency, duration=a.duration,
                                  rate=a.rate, grid=grid, database=database)
        pool = await asyncpg.connect(PlatformSettings().dsn(database))
        try:
            events = await pool.fetchval("SELECT count(*) FROM events WHERE type = $1", SUBMITTED)
            rows = await pool.fetchval(
                "SELECT count(*) FROM daily_report_view WHERE day = $1 AND submitted_at IS NOT NULL", day)
            outbox = await pool.fetchval("SELECT count(*) FROM outbox")
        finally:
            await pool.close()
        measured["checked"] = {"submitted_events": events, "view_rows": rows,
                               "agrees": events == rows == measured["reports_recorded"], "outbox_rows": outbox}
        if not measured["checked"]["agrees"]:
            measured["errors"] += 1
            measured["error_samples"].append(f"the database holds {events} events and {rows} rows for "
                                             f"{measured['reports_recorded']} recorded reports")
        return {
            "scenario": "grid_evening_peak",
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "setup": {
                "grids": len(city), "communities": len(city.communities()), "report_day": day.isoformat(),
                "seeded_in_s": round(seed_seconds, 1), "seeding": "application unit of work, one command a community",
                "tokens_minted_in_s": round(minted_in, 1), "grid_up_in_s": round(up, 1),
                "warm_up_s": round(warm, 1), "concurrency": a.concurrency, "rate": a.rate,
                "duration_limit_s": a.duration, "report_limit": a.reports,
                "grid_process": {"relay": a.relay, "consume": False, "timers": False, "port": a.port,
                                 "database": database},
                "generator": "asyncio + httpx, keep-alive connections, one report per grid, one token each",
            },
            "results": measured,
        }
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not a.keep_db:
            await drop_database(database)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grids", type=int, default=int(os.environ.get("GRID_PEAK_GRIDS", DEFAULT_GRIDS)))
    p.add_argument("--reports", type=int, default=int(os.environ.get("GRID_PEAK_REPORTS", "0")) or None,
                   help="at most this many reports, one per grid (default: every grid)")
    p.add_argument("--duration", type=float, default=float(os.environ.get("GRID_PEAK_DURATION", "600")),
                   help="at most this many seconds of load (default 600)")
    p.add_argument("--concurrency", type=int, default=int(os.environ.get("GRID_PEAK_CONCURRENCY", "16")))
    p.add_argument("--rate", type=float, default=None, help="open loop: reports a second (default: closed loop)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRID_PEAK_PORT", "8103")))
    p.add_argument("--relay", action="store_true", help="run the outbox relay (publishes on the stack's topics)")
    p.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()
    a.reports = min(a.reports or a.grids, a.grids)
    if not port_is_free(a.port):
        p.error(f"port {a.port} is taken on 127.0.0.1: --port N")
    city = generate_city(a.grids)
    print(f"minting {len(city):,} grid workers' tokens ...", flush=True)
    t0 = time.perf_counter()
    tokens = worker_tokens(list(city.grids))
    minted_in = time.perf_counter() - t0
    print(f"  in {minted_in:.1f} s", flush=True)
    result = asyncio.run(scenario(a, city, tokens, minted_in))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    r = result["results"]
    g, lat = r["grid_process"], r["latency_ms"]
    print(f"\n{r['reports_recorded']:,} reports in {r['seconds']:.1f} s: {r['sustained_reports_per_s']:.1f} reports/s "
          f"sustained (10 s windows {r['window_reports_per_s']['min']} to {r['window_reports_per_s']['max']}); "
          f"p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, max {lat['max']} ms; "
          f"errors {r['errors']}")
    print(f"grid process: RSS {g['rss_mb_before']} MB before, {g['rss_mb_peak']} MB peak; CPU {g['cpu_seconds']} s "
          f"({g['cpu_cores_used']} cores, {g['cpu_ms_per_report']} ms a report); PostgreSQL backends "
          f"{r['postgres_backends_of_its_database']['cpu_cores_used']} cores; generator "
          f"{r['generator']['cpu_cores_used']} cores; machine {r['machine']['cpu_cores_busy']} of "
          f"{r['machine']['cpus']} cores busy")
    if r["errors"]:
        print("errors:\n  " + "\n  ".join(r["error_samples"]), file=sys.stderr)
    print(f"written to {a.out}")
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
