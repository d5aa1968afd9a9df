"""A service's process, the same in every service: its bootstrap wires it, the platform starts
and stops what it runs in the background, in one order, with one protocol.

    # <service>/bootstrap.py: the composition root
    async def bootstrap(settings) -> Wired:
        pool = await open_database(settings)
        ...
        return Wired(pool=pool, state={"cases": cases}, runners=[relay, consumer], close=pool.close)

    # <service>/entrypoints/main.py: thin
    app = create_app(settings, title=..., lifespan=service_lifespan(lambda: bootstrap(settings)))

`service_lifespan` puts the wired objects on app.state (routes find them there), starts every
runner as a task, and on shutdown stops them in reverse order (each is given its time to finish
what it holds), then closes what the bootstrap opened. A runner is anything with `run()` (until
stopped) and `stop()`: the outbox relay, event consumers, the timer worker, a child process.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import subprocess
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Protocol, Sequence

import asyncpg
from fastapi import FastAPI

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 20.0


class Runner(Protocol):
    """Something a service runs in the background for its whole life."""

    name: str

    async def run(self) -> None:
        """Work until stop() (a failure inside is the runner's to retry; run returns on stop)."""

    def stop(self) -> Awaitable[None] | None:
        """Ask run() to return: sync or async."""


@dataclass
class Wired:
    """What a bootstrap returns: the database pool (idempotency keys and health checks use it),
    what routes read from app.state, the runners, and how to close what was opened."""

    pool: asyncpg.Pool | None
    state: Mapping[str, Any] = field(default_factory=dict)
    runners: Sequence[Runner] = ()
    close: Callable[[], Awaitable[None]] | None = None


def service_lifespan(bootstrap: Callable[[], Awaitable[Wired]]) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        wired = await bootstrap()
        try:
            app.state.pool = wired.pool
            for name, value in wired.state.items():
                setattr(app.state, name, value)
            async with running(wired.runners):
                yield
        finally:
            if wired.close is not None:
                await wired.close()

    return lifespan


@asynccontextmanager
async def running(runners: Sequence[Runner]) -> AsyncIterator[None]:
    """Every runner's run() as a task for the life of the block; stopped in reverse order."""
    tasks = [asyncio.create_task(r.run(), name=f"runner-{r.name}") for r in runners]
    try:
        yield
    finally:
        for runner, task in reversed(list(zip(runners, tasks))):
            with contextlib.suppress(Exception):
                stopped = runner.stop()
                if inspect.isawaitable(stopped):
                    await stopped
            try:
                await asyncio.wait_for(task, timeout=STOP_TIMEOUT_SECONDS)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                log.warning("runner %s did not stop within %.0f s; cancelled", runner.name, STOP_TIMEOUT_SECONDS)
            except Exception:  # noqa: BLE001 - a runner's failure at shutdown must not hide the others'
                log.exception("runner %s failed while stopping", runner.name)


class ChildProcess:
    """A runner that is a child process of the service (e.g. statistics' faust worker on the
    local stack): started by run() and started again if it ends on its own (after a pause that
    grows to a minute), sent SIGTERM by stop() and killed if it will not end in time."""

    def __init__(self, name: str, argv: Sequence[str], *, restart_delay: float = 1.0) -> None:
        self.name = name
        self.argv = list(argv)
        self.restart_delay = restart_delay
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        delay = self.restart_delay
        while not self._stopping.is_set():
            self._process = subprocess.Popen(self.argv)
            while self._process.poll() is None and not self._stopping.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=1.0)
            if self._stopping.is_set():
                return
            self.restarts += 1
            log.error("child process %s ended with status %s; starting it again in %.0f s",
                      self.name, self._process.returncode, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(60.0, delay * 2)

    async def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
