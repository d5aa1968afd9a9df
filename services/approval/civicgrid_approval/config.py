"""approval's settings: the platform's (CIVICGRID_* environment variables) plus its own."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from civicgrid_common.settings import PlatformSettings


class ApprovalSettings(PlatformSettings):
    service_name: str = "approval"
    http_port: int = 8002
    # The district approval serves (Qinhuai on the local stack): access applications are for its
    # communities, and its working-day calendar is intake's (applied from civicgrid.intake.calendar).
    district: str = "320104"
    # Load the seeded workflow definitions as version 1 of each workflow on first start.
    seed_workflows: bool = True
    # Publish the outbox to Kafka from this process (off in tests that must not write to the
    # local stack's shared topics).
    outbox_relay: bool = True
    # Consume intake's cases and the department systems' opinions (off in API tests).
    consume: bool = True
    intake_cases_topic: str = "civicgrid.intake.cases"
    department_opinion_topics: list[str] = ["civicgrid.departments.civil_affairs.opinions",
                                            "civicgrid.departments.public_security.opinions"]
    consumer_group: str = "approval"
    # Where the consumers put what they cannot or must not apply (a rejected department opinion).
    dead_letter_topic: str = "civicgrid.deadletter"
    # The seal keys' master key file (32 bytes base64url), CIVICGRID_SEAL_MASTER_KEY_FILE;
    # unset: the local stack's .local/keys/approval-seal-master.key (made if missing); outside
    # the local stack (CIVICGRID_ENVIRONMENT other than local) unset refuses to start.
    seal_master_key_file: Path | None = None
    # A deadline warning when this share of a task's time limit has passed.
    warning_share: float = Field(0.8, gt=0, lt=1)
    # Run the timer worker in this process (tests fire timers themselves: app.state.timers.fire_due()).
    timers: bool = True
    # How often the timer worker looks for due timers (seconds).
    timer_poll_seconds: float = 5.0
