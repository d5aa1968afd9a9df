"""Dead letters: the original record plus `x-dlq-*` headers saying where it came from and why.

The dead-letter topic (`civicgrid.deadletter` in contracts/asyncapi.yaml) keeps the original
key, value and headers untouched, so an operator can inspect a dead letter and, once the cause
is fixed, produce it back to its original topic as it was.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

DLQ_PREFIX = "x-dlq-"
# A Kafka header has no size limit of its own, but a whole record does; a stack of nested
# exception messages must not make the dead letter itself unproducible.
MAX_ERROR_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class FailedRecord:
    """Where a record was and what it held, as read from Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def error_headers(
    record: FailedRecord,
    *,
    consumer_group: str,
    error: BaseException,
    attempts: int,
    failed_at: datetime | None = None,
) -> list[tuple[str, bytes]]:
    when = (failed_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    message = str(error) or repr(error)
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        message = message[: MAX_ERROR_MESSAGE_CHARS - 1] + "…"
    fields = {
        "original-topic": record.topic,
        "original-partition": str(record.partition),
        "original-offset": str(record.offset),
        "consumer-group": consumer_group,
        "error-type": f"{type(error).__module__}.{type(error).__qualname__}",
        "error-message": message,
        "attempts": str(attempts),
        "failed-at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return [(DLQ_PREFIX + name, value.encode("utf-8")) for name, value in fields.items()]


def dead_letter_headers(
    record: FailedRecord,
    *,
    consumer_group: str,
    error: BaseException,
    attempts: int,
    failed_at: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """The original headers (minus stale x-dlq-* ones from an earlier trip) plus fresh ones."""
    kept = [(n, v) for n, v in record.headers if not n.lower().startswith(DLQ_PREFIX)]
    return kept + error_headers(
        record, consumer_group=consumer_group, error=error, attempts=attempts, failed_at=failed_at
    )


def read_dlq_headers(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """The x-dlq-* headers of a dead letter as {name without prefix: text}."""
    return {
        n[len(DLQ_PREFIX):]: v.decode("utf-8")
        for n, v in headers
        if n.lower().startswith(DLQ_PREFIX)
    }


@dataclass(frozen=True)
class DeadLetter:
    """A record of the dead-letter topic, as an operator reads it: what it was, where it came
    from, which consumer gave up on it and why."""

    event_type: str  # the record's ce_type ("?" if it was no CloudEvent)
    source: str  # its ce_source
    original_topic: str
    consumer_group: str
    error_type: str
    error_message: str
    failed_at: str
    offset: int  # on the dead-letter topic


async def read_dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Every record the dead-letter topic holds now, oldest first (reads without a group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, n) for n in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[DeadLetter] = []

        async def unread() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        while await unread():
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    headers = {k: v.decode("utf-8", errors="replace") for k, v in record.headers or ()}
                    why = read_dlq_headers(record.headers or ())
                    found.append(DeadLetter(
                        event_type=headers.get("ce_type", "?"), source=headers.get("ce_source", "?"),
                        original_topic=why.get("original-topic", "?"), consumer_group=why.get("consumer-group", "?"),
                        error_type=why.get("error-type", "?"), error_message=why.get("error-message", "?"),
                        failed_at=why.get("failed-at", "?"), offset=record.offset))
        return sorted(found, key=lambda d: d.failed_at)
    finally:
        await consumer.stop()
