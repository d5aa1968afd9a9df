"""The local stack's SMTP server (aiosmtpd): it takes every message and keeps it as a file, so
a developer or a test reads what the service sent without a mail provider.

Each message becomes `<UTC timestamp>-<sha256 prefix>.eml` in the directory: the RFC 5322 bytes
as received, after two header lines with the SMTP envelope (`X-Civicgrid-Envelope-From`,
`X-Civicgrid-Envelope-To`), which a Bcc or a mailing list would otherwise hide. The hash is of
the message as received (without those two lines). Files are written under a temporary name
and renamed, so a reader never sees half a message. Messages over `data_size_limit` (10 MiB by
default) are refused with 552.

    python -m civicgrid_notifications.adapters.mailbox --dir .local/mail --port 1025

Local use only: it relays nothing, authenticates no one and takes mail for any address.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import signal
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)

DEFAULT_DATA_SIZE_LIMIT = 10 * 1024 * 1024
ENVELOPE_FROM = "X-Civicgrid-Envelope-From"
ENVELOPE_TO = "X-Civicgrid-Envelope-To"
SERVER_HOSTNAME = "civicgrid-mailbox"  # said in the greeting (not the machine's FQDN: no DNS lookup at start)


def _header_value(value: str) -> bytes:
    return " ".join(str(value).split()).encode("utf-8")


def keep_message(directory: Path, content: bytes, *, mail_from: str | None, rcpt_tos: Sequence[str],
                 now: datetime | None = None) -> Path:
    """Write one received message into `directory` (atomically) and return its path."""
    now = now or datetime.now(timezone.utc)
    digest = hashlib.sha256(content).hexdigest()
    name = f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%S%fZ}-{digest[:16]}.eml"
    envelope = (ENVELOPE_FROM.encode() + b": " + _header_value(mail_from or "<>") + b"\r\n"
                + ENVELOPE_TO.encode() + b": " + _header_value(", ".join(rcpt_tos)) + b"\r\n")
    final = directory / name
    temporary = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "wb") as file:
            file.write(envelope)
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final


class MailboxHandler:
    """The aiosmtpd handler: keeps each message (`handle_DATA`); subclass to refuse some
    recipients (`handle_RCPT`) in tests."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or b""
        try:
            path = keep_message(self.directory, content, mail_from=envelope.mail_from, rcpt_tos=envelope.rcpt_tos)
        except OSError as exc:
            log.error("mailbox: could not keep a message (%s)", type(exc).__name__)
            return "451 4.3.0 Could not keep the message; try again later"
        log.info("mailbox: kept %s (%d bytes)", path.name, len(content))  # the file name only: no address
        return f"250 2.0.0 Ok: kept as {path.name}"


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to listen on port 0: it triggers its server by
    connecting to `self.port`, which must be the bound port by then."""

    def _trigger_server(self) -> None:
        if self.server is not None and self.server.sockets:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class LocalMailbox:
    """An SMTP server on `host:port` (port 0: a free one, see `.port` after `start`) that keeps
    what it receives in `directory`. It runs in a thread of its own (aiosmtpd's Controller);
    `start` and `stop` are awaitable and do not block the caller's event loop."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0, *,
                 data_size_limit: int = DEFAULT_DATA_SIZE_LIMIT, handler: Any = None,
                 ready_timeout: float = 10.0) -> None:
        self.directory = Path(directory)
        self.host = host
        self._port = port
        self.data_size_limit = data_size_limit
        self.handler = handler if handler is not None else MailboxHandler(self.directory)
        self.ready_timeout = ready_timeout
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the bound one once started)."""
        return self._controller.port if self._controller is not None else self._port

    @property
    def running(self) -> bool:
        return self._controller is not None

    async def start(self) -> "LocalMailbox":
        if self._controller is not None:
            raise RuntimeError("the mailbox is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        # aiosmtpd's logger writes every envelope address at INFO and the message itself at DEBUG.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        controller = _Controller(self.handler, hostname=self.host, port=self._port, server_hostname=SERVER_HOSTNAME,
                                 data_size_limit=self.data_size_limit, ready_timeout=self.ready_timeout)
        await asyncio.to_thread(controller.start)
        self._controller = controller
        return self

    async def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            await asyncio.to_thread(controller.stop)

    async def __aenter__(self) -> "LocalMailbox":
        return await self.start()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    def messages(self) -> list[Path]:
        """The kept messages, oldest first."""
        return sorted(self.directory.glob("*.eml"))


async def _serve(directory: Path, host: str, port: int, data_size_limit: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    mailbox = LocalMailbox(directory, host, port, data_size_limit=data_size_limit)
    await mailbox.start()
    print(f"civicgrid mailbox listening on {mailbox.host}:{mailbox.port}, keeping mail in {directory}", flush=True)
    try:
        await stop.wait()
    finally:
        await mailbox.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m civicgrid_notifications.adapters.mailbox",
                                     description="The local stack's SMTP server: keeps each message as an .eml file.")
    parser.add_argument("--dir", type=Path, default=Path(".local/mail"), help="where to keep the messages")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1025, help="the port to listen on (0: a free one; default 1025)")
    parser.add_argument("--max-size", type=int, default=DEFAULT_DATA_SIZE_LIMIT,
                        help="the largest message taken, in bytes (default 10 MiB)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_serve(args.dir, args.host, args.port, args.max_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
