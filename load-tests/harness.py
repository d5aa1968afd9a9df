"""Shared plumbing for the benchmarks: fresh databases and topics, timing, the result table.

Every benchmark runs ours and a peer doing the same work in the same run on the same
server, and reports the ratio ours/peer (above 1: we are faster). Absolute rates are printed
too, but only the ratio means something across machines.
"""
from __future__ import annotations

import asyncio
import json
import platform
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from civicgrid_common.settings import PlatformSettings

RESULTS = Path(__file__).resolve().parent / "results"
FIXTURE_CONTRACTS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "contracts"


@dataclass
class Result:
    name: str
    ours: float
    peer: float
    unit: str
    ours_label: str
    peer_label: str
    work: str
    run_ratios: tuple[float, ...] = ()  # every run's ratio, when the benchmark ran several times

    @property
    def ratio(self) -> float:
        return self.ours / self.peer if self.peer else float("nan")


class Timer:
    """Wall-clock seconds, and this process's CPU seconds (all its threads) over the same span."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self._cpu_start = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self._cpu_start


class AsgiCaller:
    """Calls an ASGI app the way an ASGI server hands it a request: one scope, one body
    message, the response messages collected. A benchmark of a service's HTTP path uses it
    so that the service's own work is what is timed: an in-process HTTP client (httpx's
    ASGITransport) spends 0.5-0.9 ms of this process's CPU a request building and parsing
    its own request and response objects, as much as the whole bare peer; a real client
    spends that in another process. What it leaves out is the server's HTTP/1.1 parsing."""

    def __init__(self, app, host: str = "bench") -> None:
        self.app = app
        self.host = host.encode()

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        raw_headers = [(b"host", self.host), (b"content-length", str(len(body)).encode())]
        if body:
            raw_headers.append((b"content-type", b"application/json"))
        raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "headers": raw_headers, "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", 80), "state": {}}
        delivered = False
        finished = asyncio.Event()
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()  # as a server does: a disconnect only once the response is out
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    finished.set()

        await self.app(scope, receive, send)
        finished.set()
        return status, b"".join(chunks)


def settings(**overrides) -> PlatformSettings:
    return PlatformSettings(service_name="bench", **overrides)


@asynccontextmanager
async def fresh_database():
    base = settings()
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base.dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield settings(pg_database=name)
    finally:
        admin = await asyncpg.connect(base.dsn("postgres"))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def fresh_topic(partitions: int = 3):
    base = settings()
    name = f"bench.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=base.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, partitions, 1)])
    try:
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


def memo_of_about(size: int) -> str:
    """Text of about `size` UTF-8 bytes (mixed Chinese and ASCII, as real case notes are)."""
    unit = "居民申请低保材料齐全 application materials complete; "
    text = ""
    while len(text.encode()) < size:
        text += unit
    while len(text.encode()) > size:
        text = text[:-1]
    return text


def median_run(runs: list[Result]) -> Result:
    ordered = sorted(runs, key=lambda r: r.ratio)
    chosen = ordered[len(ordered) // 2]
    return replace(chosen, run_ratios=tuple(round(r.ratio, 3) for r in runs))


def write_results(results: list[Result]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "latest.json"
    out.write_text(
        json.dumps(
            {
                "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
                "results": [asdict(r) | {"ratio": round(r.ratio, 3)} for r in results],
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    return out


def print_table(results: list[Result]) -> None:
    head = f"{'benchmark':<44}{'ratio':>8}  {'ours':>12}  {'peer':>12}  unit"
    print(head)
    print("-" * len(head))
    for r in results:
        spread = f"  runs: {', '.join(f'{x:.2f}' for x in r.run_ratios)}" if len(r.run_ratios) > 1 else ""
        print(f"{r.name:<44}{r.ratio:>8.2f}  {r.ours:>12.1f}  {r.peer:>12.1f}  {r.unit}{spread}")
    for r in results:
        print(f"  {r.name}: ours = {r.ours_label}; peer = {r.peer_label}; work = {r.work}")


async def raw_consume_rate(s: PlatformSettings, topics: list[str], expected: int) -> float:
    """The peer of the rebuild benchmarks: a bare aiokafka consumer, assigned to the same
    partitions as a projection runner, reading from the beginning to the end offsets and only
    decoding each record into a CloudEvent. Events per second."""
    from civicgrid_common.cloudevents import from_kafka_message
    from civicgrid_common.projections.runner import assigned_consumer, topic_partitions

    tps = await topic_partitions(s, topics)
    consumer = await assigned_consumer(s, tps)
    try:
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen = 0
        with Timer() as t:
            while seen < sum(ends.values()):
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for records in batch.values():
                    for r in records:
                        from_kafka_message(r.headers, r.key, r.value)
                        seen += 1
        assert seen == expected, f"peer read {seen} events, expected {expected}"
    finally:
        await consumer.stop()
    return seen / t.seconds
