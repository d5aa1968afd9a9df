"""Consumer runtime: effectively-once handling on aiokafka consumer groups.

    consumer = EventConsumer(settings, pool, topics=["civicgrid.intake.cases"],
                             group_id="notifications", handler=handle,
                             dead_letter_topic=DEAD_LETTER_TOPIC)
    await consumer.run()      # until consumer.stop()

See runtime.py for the guarantees, watchdog.py for stall recovery.
"""
from civicgrid_common.consumer.backoff import Backoff
from civicgrid_common.consumer.deadletter import (
    DeadLetter, FailedRecord, dead_letter_headers, read_dead_letters, read_dlq_headers,
)
from civicgrid_common.consumer.runtime import DEAD_LETTER_TOPIC, EventConsumer, Handler, PoisonEvent
from civicgrid_common.consumer.watchdog import Observation, StallDetector

__all__ = [
    "Backoff", "DEAD_LETTER_TOPIC", "DeadLetter", "EventConsumer", "FailedRecord", "Handler", "Observation",
    "PoisonEvent", "StallDetector", "dead_letter_headers", "read_dead_letters", "read_dlq_headers",
]
