"""intake's settings: the platform's (CIVICGRID_* environment variables) plus its own."""
from __future__ import annotations

from civicgrid_common.settings import PlatformSettings


class IntakeSettings(PlatformSettings):
    service_name: str = "intake"
    http_port: int = 8001
    # The district whose affairs catalogue this intake serves (Qinhuai on the local stack).
    district: str = "320104"
    # Seed the catalogue with the demo district's affairs on first start (the local stack).
    seed_catalogue: bool = True
    # Publish the outbox to Kafka from this process (off only in tests that must not write
    # to the shared topics of the local stack).
    outbox_relay: bool = True
