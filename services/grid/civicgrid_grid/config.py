"""grid's settings: the platform's (CIVICGRID_* environment variables) plus its own."""
from __future__ import annotations

from pydantic import Field

from civicgrid_common.settings import PlatformSettings


class GridSettings(PlatformSettings):
    service_name: str = "grid"
    http_port: int = 8003
    # Photos up to 8 MiB (adapters/photos.py) come in one request body; JSON bodies are bounded
    # member by member besides.
    max_request_bytes: int = 8 * 1024 * 1024 + 4096
    # The district grid serves (Qinhuai on the local stack); its working days are intake's calendar.
    district: str = "320104"
    # Seed the district's classification table (digital urban management's classes) on first start.
    seed_classification: bool = True
    outbox_relay: bool = True
    # Consume intake's complaints, approval's access decisions, the departments' results, the calendar.
    consume: bool = True
    intake_complaints_topic: str = "civicgrid.intake.complaints"
    approval_access_topic: str = "civicgrid.approval.access"
    department_result_topics: list[str] = ["civicgrid.departments.urban_management.results"]
    consumer_group: str = "grid"
    dead_letter_topic: str = "civicgrid.deadletter"
    # The hour (China time, 0-23) of each working day at which grids without a daily report are
    # flagged (grid.report_missing); notifications remind the workers before it.
    report_check_hour: int = Field(17, ge=0, le=23)
    # A limit's warning when this share of its time has passed.
    warning_share: float = Field(0.8, gt=0, lt=1)
    timers: bool = True
    timer_poll_seconds: float = 5.0
    # How long the working-day calendar read from grid's copy is reused (seconds): overrides are
    # set days ahead of the days they change.
    calendar_cache_seconds: float = Field(5.0, ge=0, le=300)
    # How stale a plain locate may be after another replica changed the registry (seconds).
    locate_refresh_seconds: float = Field(1.0, ge=0, le=60)
