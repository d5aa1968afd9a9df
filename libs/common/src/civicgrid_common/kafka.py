"""Kafka clients configured explicitly for civicgrid's guarantees.

aiokafka's producer defaults to acks=1 without idempotence: a leader failover can then lose
or duplicate records. Every producer here is idempotent with acks=all, so retries neither
lose nor duplicate nor reorder within a partition. Consumers never auto-commit: offsets are
committed only after the effect is durable in PostgreSQL.
"""
from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from civicgrid_common.settings import PlatformSettings


def producer_config(settings: PlatformSettings, **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=1_048_576,
        request_timeout_ms=30_000,
        retry_backoff_ms=200,
    )
    cfg.update(overrides)
    return cfg


def consumer_config(settings: PlatformSettings, group_id: str | None, **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.client_id,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=500,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        max_poll_interval_ms=300_000,
        retry_backoff_ms=200,
    )
    cfg.update(overrides)
    return cfg


def make_producer(settings: PlatformSettings, **overrides: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**producer_config(settings, **overrides))


def make_consumer(
    settings: PlatformSettings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **consumer_config(settings, group_id, **overrides))
