"""intake's settings: the platform's (CIVICGRID_* environment variables) plus its own."""
from __future__ import annotations

from pathlib import Path

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
    # Approval's outcomes (concluded, supplement requested): consumed from this topic by this
    # consumer group; poison events go to the dead-letter topic. Off only in tests that must not
    # join the local stack's consumer group.
    approval_consumer: bool = True
    approval_topic: str = "civicgrid.approval.approvals"
    approval_consumer_group: str = "intake-approval-outcomes"
    approval_dead_letter_topic: str = "civicgrid.deadletter"
    # The personal-data keyring (AES-GCM keys, blind-index and pseudonym keys) as a JSON file,
    # CIVICGRID_PERSONAL_DATA_KEYRING; unset: the local stack's .local/keys ring (made if missing);
    # outside the local stack (CIVICGRID_ENVIRONMENT other than local) unset refuses to start.
    personal_data_keyring: Path | None = None
    # Open311 GeoReport v2 (/open311/v2) of the district: the api_keys that may POST requests
    # (the local stack's demo key; elsewhere set CIVICGRID_OPEN311_API_KEYS='["<key>", ...]'),
    # the jurisdiction_id aliases besides the district code, and what discovery announces.
    open311_api_keys: list[str] = ["demo-open311-key"]
    open311_jurisdiction_aliases: list[str] = ["qinhuai.nanjing.gov.cn"]
    open311_public_url: str = "http://127.0.0.1:8001/open311/v2"
    open311_changeset: str = "2026-03-01T00:00:00+08:00"
    open311_contact: str = "秦淮区 12345 政务服务便民热线 Qinhuai District 12345 hotline"
    open311_key_service: str = "api_key: apply to the district's data office (区数据局)"
