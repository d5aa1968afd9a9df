"""Email over SMTP (aiosmtplib): one message per delivery, a plain-text part and an HTML
alternative, built with the standard library's `email` package.

- `Message-ID: <delivery_id@civicgrid>`: every attempt of one delivery carries the same id, so
  a duplicate (an attempt that was accepted but whose answer was lost) is recognisable; it is
  also the `provider_id` of a sent result.
- `Auto-Submitted: auto-generated` (RFC 3834), so that vacation responders stay silent.
- Outcomes: accepted -> sent; an SMTP 4xx reply, a connection or TLS failure, a timeout ->
  retry; a 5xx reply -> failed, except a recipient refused as unknown (550/551/553, or the
  enhanced codes 5.1.x / 5.2.1 of a bad or disabled mailbox) -> gone. A failed login is a
  retry: it is the service's configuration, not this message, that is wrong.

The recipient's address is personal data: it is never logged and never in `error` (which is
made of reply codes only, since a server's reply text often repeats the address).
"""
from __future__ import annotations

import logging
import re
import ssl
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Callable

import aiosmtplib

from civicgrid_notifications.adapters.channels import Outgoing, SendResult

log = logging.getLogger(__name__)

MESSAGE_ID_DOMAIN = "civicgrid"
_ATEXT_SAFE = re.compile(r"[A-Za-z0-9_-]")
_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+")
_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
# A recipient refused with these enhanced codes no longer exists (RFC 3463): bad mailbox (5.1.1),
# bad domain (5.1.2), bad address syntax (5.1.3), mailbox moved (5.1.6), no mail taken (5.1.10),
# mailbox disabled (5.2.1).
_GONE_ENHANCED = {"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"}
_GONE_CODES = {550, 551, 553}  # at RCPT, without an enhanced code: mailbox unavailable / not local / name not allowed


def message_id_for(delivery_id: str) -> str:
    """`<delivery_id@civicgrid>`; a character that may not stand in a Message-ID's left part
    (anything but letters, digits, `_` and `-`) is written `=XX` per UTF-8 byte, so two
    delivery ids never share a Message-ID."""
    left = "".join(c if _ATEXT_SAFE.fullmatch(c) else "".join(f"={b:02X}" for b in c.encode("utf-8"))
                   for c in delivery_id)
    return f"<{left or '=00'}@{MESSAGE_ID_DOMAIN}>"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _enhanced_code(reply: str | None) -> str | None:
    match = _ENHANCED.match(reply or "")
    return ".".join(match.groups()) if match else None


def _reply_result(code: int, reply: str | None, *, at_recipient: bool, what: str) -> SendResult:
    """The outcome of an SMTP reply refusing the message (error: codes only, never the text)."""
    enhanced = _enhanced_code(reply)
    codes = f"{code} {enhanced}" if enhanced else f"{code}"
    if 400 <= code < 500:
        return SendResult("retry", status_code=code, error=f"smtp {codes}: {what} deferred")
    if at_recipient and 500 <= code < 600 and (
            (enhanced in _GONE_ENHANCED) if enhanced else code in _GONE_CODES):
        return SendResult("gone", status_code=code, error=f"smtp {codes}: recipient unknown")
    if 500 <= code < 600:
        return SendResult("failed", status_code=code, error=f"smtp {codes}: {what} refused")
    return SendResult("retry", status_code=code, error=f"smtp {codes}: unexpected reply to the {what}")


class SmtpSender:
    """The channel adapter of "email": one SMTP connection per message (aiosmtplib.send).

    `use_tls`: TLS from the start (port 465); `start_tls`: None upgrades when the server offers
    STARTTLS, True requires it, False never; `username`/`password`: SMTP AUTH; `timeout`:
    seconds per SMTP step. `tls_context` replaces the system's CA store, `local_hostname` the
    name said in EHLO (by default the machine's), `wall_clock` the Date header's clock."""

    channel = "email"

    def __init__(self, host: str, port: int, *, sender_address: str, use_tls: bool = False,
                 start_tls: bool | None = None, username: str | None = None, password: str | None = None,
                 timeout: float = 15, tls_context: ssl.SSLContext | None = None, local_hostname: str | None = None,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.host = host
        self.port = port
        self.sender_address = sender_address
        self.use_tls = use_tls
        self.start_tls = start_tls
        self.username = username
        self._password = password
        self.timeout = timeout
        self.tls_context = tls_context
        self.local_hostname = local_hostname
        self._wall_clock = wall_clock

    def __repr__(self) -> str:
        return f"SmtpSender(host={self.host!r}, port={self.port!r})"

    def build_message(self, message: Outgoing) -> EmailMessage:
        """The email of `message`: fields `subject`, `text` (required) and `html` (optional).
        Raises ValueError for missing fields or an unusable address."""
        fields = message.fields
        subject, text, html = fields.get("subject"), fields.get("text"), fields.get("html")
        if not subject or not isinstance(subject, str):
            raise ValueError("the email has no subject")
        if not text or not isinstance(text, str):
            raise ValueError("the email has no text part")
        if html is not None and not isinstance(html, str):
            raise ValueError("the email's html part is not text")
        if not isinstance(message.address, str) or not _ADDRESS.fullmatch(message.address):
            raise ValueError("the recipient is not an email address")
        email = EmailMessage()
        email["Subject"] = _one_line(subject)
        email["From"] = self.sender_address
        email["To"] = message.address
        email["Date"] = format_datetime(self._wall_clock())
        email["Message-ID"] = message_id_for(message.delivery_id)
        email["Auto-Submitted"] = "auto-generated"
        email["X-Auto-Response-Suppress"] = "All"  # Exchange's flavour of the same request
        email.set_content(text)
        if html:
            email.add_alternative(html, subtype="html")
        return email

    async def send(self, message: Outgoing) -> SendResult:
        started = time.perf_counter()
        if message.channel != self.channel:
            return self._done(message, started, SendResult("failed", error=f"the email adapter got a {message.channel} message"))
        try:
            email = self.build_message(message)
        except ValueError as exc:  # our own messages above, or the email package refusing a header
            reason = str(exc) if str(exc).startswith("the ") else "a header is not valid"
            return self._done(message, started, SendResult("failed", error=f"cannot build the email: {reason}"))
        message_id = email["Message-ID"]
        try:
            errors, _reply = await aiosmtplib.send(
                email, sender=self.sender_address, recipients=[message.address], hostname=self.host, port=self.port,
                use_tls=self.use_tls, start_tls=self.start_tls, username=self.username, password=self._password,
                timeout=self.timeout, tls_context=self.tls_context, local_hostname=self.local_hostname)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            result = (_reply_result(refused.code, refused.message, at_recipient=True, what="recipient")
                      if refused else SendResult("failed", error="smtp: recipient refused"))
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            result = SendResult("retry", status_code=getattr(exc, "code", None),
                                error=f"smtp connection failed ({type(exc).__name__})")
        except aiosmtplib.SMTPAuthenticationError as exc:
            result = SendResult("retry", status_code=exc.code, error=f"smtp {exc.code}: authentication failed")
        except aiosmtplib.SMTPSenderRefused as exc:
            result = _reply_result(exc.code, exc.message, at_recipient=False, what="sender")
        except aiosmtplib.SMTPDataError as exc:
            result = _reply_result(exc.code, exc.message, at_recipient=False, what="message")
        except aiosmtplib.SMTPResponseException as exc:
            result = _reply_result(exc.code, exc.message, at_recipient=False, what="session")
        except aiosmtplib.SMTPException as exc:  # STARTTLS or AUTH not offered, and the like: configuration
            result = SendResult("retry", error=f"smtp: {type(exc).__name__}")
        except (OSError, ssl.SSLError) as exc:
            result = SendResult("retry", error=f"smtp connection failed ({type(exc).__name__})")
        else:
            if errors:  # one recipient only, so not reached in practice: the refusal raises above
                refused_reply = next(iter(errors.values()))
                result = _reply_result(refused_reply.code, refused_reply.message, at_recipient=True, what="recipient")
            else:
                result = SendResult("sent", provider_id=message_id, status_code=250)
        return self._done(message, started, result)

    def _done(self, message: Outgoing, started: float, result: SendResult) -> SendResult:
        result = SendResult(result.outcome, provider_id=result.provider_id, status_code=result.status_code,
                            retry_after=result.retry_after, error=result.error,
                            latency_ms=round((time.perf_counter() - started) * 1000, 3))
        # Never the address, the subject or the text: personal data.
        log.info("email %s: %s%s", message.delivery_id, result.outcome,
                 f" ({result.error})" if result.error else "",
                 extra={"delivery_id": message.delivery_id, "channel": "email", "outcome": result.outcome,
                        "status_code": result.status_code, "latency_ms": result.latency_ms})
        return result

    async def close(self) -> None:
        """Nothing to close: each message has its own connection."""
