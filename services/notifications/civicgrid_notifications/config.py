"""notifications' settings: the platform's (CIVICGRID_* environment variables) plus its own."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from civicgrid_common.settings import PlatformSettings

from civicgrid_notifications.domain.quiet_hours import QuietHours

# The retry schedule of a delivery, seconds after the first attempt failed (issue 12's default):
# immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; each pause jittered by ±20 %.
DEFAULT_RETRY_SCHEDULE = [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


class NotificationsSettings(PlatformSettings):
    service_name: str = "notifications"
    http_port: int = 8004
    # The district whose rule book this instance keeps (Qinhuai on the local stack).
    district: str = "320104"
    # Seed the district's rule book with the demo district's rules on first start.
    seed_rules: bool = True
    outbox_relay: bool = True
    consume: bool = True
    # The topics whose events may tell someone something; each rule names an event type of one.
    source_topics: list[str] = [
        "civicgrid.intake.cases",
        "civicgrid.approval.approvals",
        "civicgrid.departments.civil_affairs.tasks",
        "civicgrid.departments.public_security.tasks",
        "civicgrid.departments.urban_management.tasks",
        "civicgrid.grid.reports",
        "civicgrid.grid.incidents",
        "civicgrid.statistics.alerts",
    ]
    # The durable timers that compile people's digests at the end of each period.
    timers: bool = True
    timer_poll_seconds: float = 5.0
    consumer_group: str = "notifications"
    dead_letter_topic: str = "civicgrid.deadletter"
    # Deliveries that leave the process (webhooks): the sender's loop.
    send: bool = True
    send_poll_seconds: float = Field(1.0, gt=0, le=60)
    send_batch: int = Field(20, ge=1, le=500)
    # Sends in flight at once: network-bound, so many; an endpoint that hangs holds one until its
    # timeout (load-tests/webhook_fanout.py: 1,000 endpoints, 50 hanging: the healthy ones'
    # first attempts waited 95 s at p99 with 8, 4.7 s with 100).
    send_concurrency: int = Field(100, ge=1, le=1000)
    # A delivery being sent whose process died is tried again after this long; the receiver
    # sees the same webhook-id and can drop the repeat.
    send_lease_seconds: float = Field(60.0, ge=5, le=3600)
    retry_schedule: list[float] = Field(default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE), min_length=1,
                                        max_length=20)
    webhook_timeout_seconds: float = Field(15.0, gt=0, le=60)
    # CIVICGRID_WEBHOOK_SECRETS_KEY_FILE: the key departments' webhook secrets are sealed under
    # (adapters/endpoints.py). Unset: the local stack's .local/keys/notifications-webhook-secrets.key
    # (made if missing); outside the local stack unset refuses to start.
    webhook_secrets_key_file: Path | None = None
    # Held open by consoles and phones: how often the live inbox stream says it is alive.
    inbox_stream_keepalive_seconds: float = Field(15.0, ge=1, le=120)
    # intake's contact API: the number of a case's applicant, asked for at send time.
    intake_url: str = "http://127.0.0.1:8001"
    # SMS over Aliyun's SendSms (adapters/sms.py): unset, SMS deliveries wait (retried) with that
    # said in their error. The local stack points them at its own server of SendSms' shape.
    sms_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    sms_access_key_id: str | None = None
    sms_access_key_secret: SecretStr | None = None
    sms_daily_limit: int = Field(10, ge=1, le=1000)  # messages per number and China day
    # Email to applicants over SMTP (adapters/email.py): unset host, email deliveries wait
    # (retried) with that said in their error. `starttls` on the submission port 587, `tls` on
    # 465, `none` only for a server on this host (the local stack's mailbox on :1025).
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "noreply@civicgrid.invalid"
    # WeChat subscribe messages of the district's mini program (adapters/wechat.py): unset app
    # id, WeChat deliveries wait (retried). The local stack points at its own server of the API.
    wechat_endpoint: str = "https://api.weixin.qq.com"
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    # Quiet hours (China time): a non-urgent SMS or WeChat message is held back until they end;
    # "" for none.
    quiet_hours: str = "22:00-08:00"
    # The same message to the same person on the same channel within this many seconds, from
    # whichever event, is told once; 0 for never.
    dedup_window_seconds: float = Field(600.0, ge=0, le=86400)

    @field_validator("smtp_security")
    @classmethod
    def _plain_smtp_on_this_host_only(cls, value: str, info) -> str:
        host = info.data.get("smtp_host")
        if value == "none" and host not in (None, "127.0.0.1", "localhost", "::1"):
            raise ValueError("mail to applicants leaves over TLS: smtp_security none is for a server on this host")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        QuietHours.parse(value)  # HH:MM-HH:MM or empty, said at start-up
        return value
