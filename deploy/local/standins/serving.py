"""What the stand-ins share: serving a Starlette app on 127.0.0.1 (for a test on a free port, or
for the local stack on its own port from the command line) and the JSON-lines log of what a
stand-in took.

A stand-in run as a file (`python deploy/local/standins/<name>.py`, as localstack.py's
STANDINS start them) puts deploy/local on sys.path first, so that `standins.serving` imports
as it does under pytest (pytest.ini's pythonpath).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import Any, Callable, Sequence

import uvicorn
from starlette.applications import Starlette


@contextlib.asynccontextmanager
async def serving(app, lifespan: str = "off", port: int = 0):
    """`app` served by uvicorn on 127.0.0.1:`port` (any free one by default; its base URL); a
    failed start is raised here."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, lifespan=lifespan, log_config=None, access_log=False,
                                           timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def fake_serving(fake, path: str = ""):
    """A stand-in object (its `app()`, `url`, `release`) served on 127.0.0.1:0, its `url` set to
    the base URL + `path`; its hanging answers released at the end."""
    async with serving(fake.app()) as url:
        fake.url = url + path
        try:
            yield fake
        finally:
            fake.release.set()


def append_line(path: Path, line: dict[str, Any]) -> None:
    """One JSON object as a line at the end of `path` (its folder made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")


def run_standin(description: str, default_port: int, app_logging_to: Callable[[Path], Starlette],
                argv: Sequence[str] | None = None) -> None:
    """A stand-in's command line: `--port` (on 127.0.0.1 only) and `--log` (the JSON lines of what
    it takes), then serve `app_logging_to(log)` until stopped."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--log", type=Path, required=True, help="where each message taken is kept (JSON lines)")
    args = parser.parse_args(argv)
    uvicorn.run(app_logging_to(args.log), host="127.0.0.1", port=args.port, log_config=None, access_log=False)
