"""statistics' settings: the platform's (CIVICGRID_* environment variables) plus its own."""
from __future__ import annotations

from pathlib import Path

from civicgrid_common.settings import PlatformSettings


class StatisticsSettings(PlatformSettings):
    service_name: str = "statistics"
    http_port: int = 8005
    # The topics whose events become facts (intake's cases and complaints, approval's moves, the
    # grid's incidents, daily reports, disputes and community work, notifications' deliveries); a
    # rebuild replays the same.
    topics: list[str] = ["civicgrid.intake.cases", "civicgrid.intake.complaints", "civicgrid.approval.approvals",
                         "civicgrid.grid.incidents", "civicgrid.grid.reports", "civicgrid.grid.disputes",
                         "civicgrid.grid.community_work", "civicgrid.notifications.deliveries"]
    # The faust application id: it is the Kafka consumer group of the workers.
    faust_app_id: str = "civicgrid-statistics"
    # Where faust keeps its local files (it keeps no figures: there are no faust tables).
    faust_datadir: Path | None = None
    # How long the group waits for a silent worker before giving its partitions to the others.
    faust_session_timeout: float = 60.0
    # Window alerts: N complaints of one category in one community within M minutes; N overdue
    # approval tasks in one community within M minutes. Published on alerts_topic.
    alert_complaint_threshold: int = 5
    alert_complaint_window_minutes: int = 60
    alert_overdue_threshold: int = 3
    alert_overdue_window_minutes: int = 1440
    alerts_topic: str = "civicgrid.statistics.alerts"
    # Apply the district's calendar (intake's topic) to statistics' copy, from the API process.
    consume_calendar: bool = True
    consumer_group: str = "statistics"
    dead_letter_topic: str = "civicgrid.deadletter"
    # Publish statistics' outbox (its alerts) to Kafka from the API process.
    outbox_relay: bool = True
    # Start the faust worker as a child process of the API process (the local stack); in
    # Kubernetes the workers run as their own Deployment and this is off.
    run_worker: bool = True
