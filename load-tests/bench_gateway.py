"""gateway_ratio_vs_direct: intake's read and write routes through the gateway over the same
calls straight to intake, the most requests a second each sustains, in one run.

Processes, as `make up` runs them (uvicorn, `python -m ...entrypoints.main`), on loopback:
- intake on a database of its own (made fresh, dropped after), CIVICGRID_OUTBOX_RELAY=false and
  CIVICGRID_APPROVAL_CONSUMER=false (its writes fill the outbox as in production; none of them
  reaches the stack's shared topics);
- the gateway in front of it, CIVICGRID_UPSTREAMS naming that intake only, its rate limits
  raised out of the way (the load comes from one address and one principal; the limits' own
  counting still runs on every request).
Work: a closed loop of GATEWAY_BENCH_CONCURRENCY (16) keep-alive connections from this process
(httpx), each sending its next request as soon as the last is answered, for
GATEWAY_BENCH_SECONDS (10) after 2 s of warm-up, against one base URL at a time, the two taking
turns in GATEWAY_BENCH_ROUNDS (5) slices each (run one after the other, ten seconds each, the
same code measured 0.68 to 0.93 as the machine's other work came and went): three reads
(GET /v1/complaints/{id} of a complaint filed before, GET /v1/affairs) for each write
(POST /v1/complaints, a clerk's phone complaint: an event, its outbox row and its view row),
all with a window clerk's token. Any answer but 200/201 fails the run.
Ours: those requests through the gateway (`/api/intake/...`); peer: the same, straight to intake.
Also reported: p50 and p99 of each, and the gateway's added p99 latency.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from civicgrid_common.identity.tokens import mint_local_token

from console_size import console_size
from harness import Result, fresh_database

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = int(os.environ.get("GATEWAY_BENCH_CONCURRENCY", "16"))
SECONDS = float(os.environ.get("GATEWAY_BENCH_SECONDS", "10"))
WARM_UP_SECONDS = 2.0
ROUNDS = int(os.environ.get("GATEWAY_BENCH_ROUNDS", "5"))  # the timed span cut into slices, the two in turn
STREET, COMMUNITY = "320104001", "320104001001"
COMPLAINT = {"category": "environmental_protection", "channel": "phone", "urgency": "general",
             "jurisdiction": COMMUNITY, "location": {"address": "淮海路 30 号", "lat": 32.0312, "long": 118.7895},
             "description": "餐馆油烟直排，影响居民", "anonymous": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(module: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    out = log.open("wb")
    return subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env={**os.environ, **env},
                            stdout=out, stderr=subprocess.STDOUT)


async def _healthy(base: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{base} exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{base} not ready after {timeout:.0f} s: {log.read_text()[-2000:]}")


async def _load(base: str, prefix: str, headers: dict[str, str], complaint_id: str, *, seconds: float,
                warm_up: float) -> tuple[int, list[float]]:
    """Requests answered within `seconds` after `warm_up` seconds, and their latencies (s)."""
    body = json.dumps(COMPLAINT, ensure_ascii=False).encode()
    plan = [("GET", f"{prefix}/v1/complaints/{complaint_id}", None), ("GET", f"{prefix}/v1/affairs", None),
            ("GET", f"{prefix}/v1/complaints/{complaint_id}", None), ("POST", f"{prefix}/v1/complaints", body)]
    latencies: list[float] = []
    answered = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        timed_from, until = started + warm_up, started + warm_up + seconds

        async def connection(offset: int) -> None:
            nonlocal answered
            i = offset
            while (now := time.perf_counter()) < until:
                method, path, content = plan[i % len(plan)]
                i += 1
                r = await client.request(method, path, content=content,
                                         headers={"Content-Type": "application/json"} if content else None)
                if r.status_code not in (200, 201):
                    raise AssertionError(f"{method} {base}{path}: {r.status_code} {r.text[:300]}")
                done = time.perf_counter()
                if now >= timed_from and done <= until:
                    answered += 1
                    latencies.append(done - now)

        await asyncio.gather(*(connection(k) for k in range(CONCURRENCY)))
    return answered, latencies


async def _alternating(targets: dict[str, tuple[str, str]], headers: dict[str, str],
                       complaint_id: str) -> dict[str, tuple[float, list[float]]]:
    """Each target (name -> base URL, path prefix) loaded in turn, ROUNDS slices of SECONDS/ROUNDS
    each (after one warm-up each), so that whatever else the machine does meanwhile falls on both
    alike: requests a second over its slices, and the latencies."""
    answered = {name: 0 for name in targets}
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    for round_ in range(ROUNDS):
        for name, (base, prefix) in targets.items():
            n, times = await _load(base, prefix, headers, complaint_id, seconds=SECONDS / ROUNDS,
                                   warm_up=WARM_UP_SECONDS if round_ == 0 else 0.2)
            answered[name] += n
            latencies[name] += times
    return {name: (answered[name] / SECONDS, latencies[name]) for name in targets}


async def run() -> Result:
    clerk = {"Authorization": f"Bearer {mint_local_token('window_clerk', STREET, subject='bench-clerk')}"}
    logs = Path(tempfile.mkdtemp(prefix="bench_gateway_"))
    intake_port, gateway_port = _free_port(), _free_port()
    intake_base, gateway_base = f"http://127.0.0.1:{intake_port}", f"http://127.0.0.1:{gateway_port}"
    async with fresh_database() as s:
        procs = []
        try:
            procs.append(intake := _start("civicgrid_intake.entrypoints.main", {
                "CIVICGRID_PG_DATABASE": s.pg_database, "CIVICGRID_HTTP_HOST": "127.0.0.1",
                "CIVICGRID_HTTP_PORT": str(intake_port), "CIVICGRID_OUTBOX_RELAY": "false",
                "CIVICGRID_APPROVAL_CONSUMER": "false"}, logs / "intake.log"))
            procs.append(gateway := _start("civicgrid_gateway.entrypoints.main", {
                "CIVICGRID_HTTP_HOST": "127.0.0.1", "CIVICGRID_HTTP_PORT": str(gateway_port),
                "CIVICGRID_UPSTREAMS": json.dumps({"intake": intake_base}),
                "CIVICGRID_RATE_LIMIT_PER_ADDRESS": "1000000/second",
                "CIVICGRID_RATE_LIMIT_PER_PRINCIPAL": "1000000/second"}, logs / "gateway.log"))
            await _healthy(intake_base, intake, logs / "intake.log")
            await _healthy(gateway_base, gateway, logs / "gateway.log")
            async with httpx.AsyncClient(base_url=intake_base, headers=clerk) as client:
                r = await client.post("/v1/complaints", json=COMPLAINT)
                assert r.status_code == 201, r.text
                complaint_id = r.json()["id"]
            loaded = await _alternating({"direct": (intake_base, ""), "gateway": (gateway_base, "/api/intake")},
                                        clerk, complaint_id)
            (direct, direct_latencies), (through, gateway_latencies) = loaded["direct"], loaded["gateway"]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    # p50 and p99 (statistics.quantiles' 50th and 99th of its 99 cut points), in ms
    ms = {name: tuple(statistics.quantiles(v, n=100)[k - 1] * 1000 for k in (50, 99))
          for name, v in (("direct", direct_latencies), ("gateway", gateway_latencies))}
    added = ms["gateway"][1] - ms["direct"][1]
    console = console_size()
    print(f"  console: first load {console.first_load_gzip_bytes:,} bytes of JavaScript gzipped, the whole build "
          f"{console.whole_build_gzip_bytes:,}", flush=True)
    print(f"  gateway: through the gateway {through:,.0f} req/s (p50 {ms['gateway'][0]:.1f} ms, p99 "
          f"{ms['gateway'][1]:.1f} ms), straight to intake {direct:,.0f} req/s (p50 {ms['direct'][0]:.1f} ms, "
          f"p99 {ms['direct'][1]:.1f} ms); ratio {through / direct:.3f}; the gateway adds {added:.1f} ms at p99",
          flush=True)
    return Result(
        name="gateway_ratio_vs_direct",
        ours=through,
        peer=direct,
        unit="req/s",
        ours_label="intake's routes through the gateway (token checked, rate limits counted, pooled and streamed)",
        peer_label="the same requests straight to intake",
        work=(f"{CONCURRENCY} keep-alive connections in a closed loop for {SECONDS:.0f} s each, in {ROUNDS} "
              "alternating slices, 3 reads "
              "(GET /v1/complaints/{id}, GET /v1/affairs) to 1 write (POST /v1/complaints); p99 "
              f"{ms['gateway'][1]:.1f} ms through the gateway vs {ms['direct'][1]:.1f} ms direct "
              f"(+{added:.1f} ms); intake and the gateway as separate uvicorn processes on loopback; the console "
              f"the gateway serves: {console.first_load_gzip_bytes:,} bytes of JavaScript (gzip) on a first load, "
              f"{console.whole_build_gzip_bytes:,} in the whole build (each screen loaded when opened)"),
    )


if __name__ == "__main__":
    result = asyncio.run(run())
    print(f"{result.name}: {result.ratio:.3f}")
