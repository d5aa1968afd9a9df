"""Event-loop lag: how long a callback held the loop, exported on /metrics, and who held it.

One asyncio loop serves every request, consumer and timer of a service, so a callback that
computes for a second (a request-controlled range walked day by day, a huge JSON document)
stalls all of them: requests queue, Kafka heartbeats are missed and the group rebalances. A
small task asks to wake every `interval`; how late it wakes is the time some callback held the
loop. The worst lag since the service began serving is a gauge (what an alert watches), every
sample goes into a histogram (what a dashboard plots).

A lag says that the loop was held, not by what. A watcher thread sees the task's heartbeat go
stale while the loop is still held and logs the stack of the loop's thread then, once per stall
longer than `log_after`: the line an operator needs to find the culprit.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from typing import AsyncIterator

from prometheus_client import Gauge, Histogram

LAG = Histogram(
    "civicgrid_event_loop_lag_seconds",
    "How late the event loop woke a timer due every 20 ms: the time a callback held the loop",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
WORST = Gauge("civicgrid_event_loop_lag_max_seconds", "The worst event-loop lag since the service began serving")
log = logging.getLogger("civicgrid.web.loop_lag")


class LoopLagMonitor:
    # The gauge is the process's worst: several apps may share a process (tests).
    worst_in_process = 0.0

    def __init__(self, interval: float = 0.02, log_after: float = 0.1) -> None:
        self.interval = interval
        self.log_after = log_after
        self.worst = 0.0
        self._beat = time.monotonic()
        self._loop_thread: int | None = None
        self._counting_since = 0.0  # loop time; a sample that began before it is not counted

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        while True:
            before = loop.time()
            self._beat = time.monotonic()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - before - self.interval)
            if before < self._counting_since:
                continue  # it waited through start-up work, done before serving
            LAG.observe(lag)
            if lag > self.worst:
                self.worst = lag
            if lag > LoopLagMonitor.worst_in_process:
                LoopLagMonitor.worst_in_process = lag
                WORST.set(lag)

    def serving(self) -> None:
        """Start counting from now: the start-up's own work (schemas, seeds) runs before the
        service takes requests, so the gauge reports the loop as its clients see it."""
        self.worst = 0.0
        LoopLagMonitor.worst_in_process = 0.0
        WORST.set(0.0)
        with contextlib.suppress(RuntimeError):  # outside a running loop: count from the next sample
            self._counting_since = asyncio.get_running_loop().time()

    def _watch(self, stop: threading.Event) -> None:
        reported = None
        while not stop.wait(self.log_after / 4):
            beat, thread = self._beat, self._loop_thread
            held = time.monotonic() - beat - self.interval
            if thread is None or held < self.log_after or beat == reported:
                continue
            frame = sys._current_frames().get(thread)
            if frame is None:
                continue
            reported = beat
            stack = "".join(traceback.format_stack(frame, limit=25))
            log.warning("the event loop has been held for %.0f ms so far, by:\n%s", held * 1000, stack)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["LoopLagMonitor"]:
        task = asyncio.create_task(self.run(), name="event-loop-lag")
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(stop,), name="event-loop-stall-watch", daemon=True)
        watcher.start()
        try:
            yield self
        finally:
            stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
